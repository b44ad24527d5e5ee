import json
import subprocess
import sys

import pytest

from sotazoo.cli import build_parser, main

COMMANDS = ["list", "info", "status", "verify", "bench", "export", "sample", "predict", "repro", "train",
            "site", "serve"]  # fmt: skip


def test_every_command_has_help(capsys):
    for cmd in [None, *COMMANDS]:
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"] if cmd else ["--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert "usage: sotazoo" in out and len(out) > 200
    parser_cmds = set(build_parser()._subparsers._group_actions[0].choices)
    assert parser_cmds == set(COMMANDS)


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "sotazoo.cli", "--version"], capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert out.stdout.startswith("sotazoo ")


def test_list_groups_papers_by_section(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "Image Classification" in out and "senet" in out and "Object Detection" in out
    assert out.index("Image Data Augmentation") < out.index("Image Classification")


def test_list_models(capsys):
    assert main(["list", "--paper", "senet"]) == 0
    out = capsys.readouterr().out
    assert "seresnet50" in out and "28,100,000" in out


def test_list_cuts_titles_at_a_word(capsys):
    assert main(["list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("edsr "))
    title = line.split("done  ", 1)[1]
    assert title.endswith("…") and len(title) <= 70
    full = "Enhanced Deep Residual Networks for Single Image Super-Resolution (EDSR, MDSR)"
    assert full.startswith(title[:-1]) and full[len(title) - 1] == " "  # cut before a space


def test_list_weights_and_an_empty_match(capsys):
    assert main(["list", "--weights", "edsr_baseline_x4"]) == 0
    out = capsys.readouterr().out
    assert "edsr_baseline_x4.official" in out and "edsr_baseline_x4.sotazoo" in out
    assert "packaged" in out and "download" in out and "weights=" in out
    assert main(["list", "--models", "zz*"]) == 1
    assert "no model matches pattern 'zz*'" in capsys.readouterr().err


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_info_renders_the_card(capsys, lang):
    assert main(["info", "senet", "--lang", lang]) == 0
    out = capsys.readouterr().out
    assert "Squeeze-and-Excitation Networks" in out and "23.29" in out and "Table 2" in out
    assert ("挤压" in out or "通道" in out) if lang == "zh" else "Key ideas" in out
    assert "ImageNet" in out.split("Baselines" if lang == "en" else "对比基线")[1]  # the dataset


def test_unknown_names_exit_nonzero_with_a_suggestion(capsys):
    assert main(["info", "sennet"]) == 1
    assert "did you mean senet" in capsys.readouterr().err
    assert main(["bench", "seresnet5"]) == 1
    err = capsys.readouterr().err
    assert "did you mean seresnet50" in err and "`sotazoo list --models`" in err
    from sotazoo.papers._contract import paper
    from sotazoo.registry import list_papers

    bare = next(p for p in list_papers() if not paper(p).has("repro"))  # a card, no experiment
    assert main(["repro", bare, "--quick"]) == 1
    assert "no reproduction experiment yet" in capsys.readouterr().err


def test_an_unknown_model_fails_before_torch_is_imported():
    code = ("import sys; from sotazoo.cli import main; rc = main(['bench', 'nosuch']); "
            "print(rc, 'torch' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "False"] and "unknown model 'nosuch'" in out.stderr


def test_status_has_eight_columns_for_27_papers(capsys):
    assert main(["status", "--markdown"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 + 27
    assert lines[0].count("|") == 10  # paper + 8 columns


def test_export_prints_the_difference(capsys, tmp_path):
    assert main(["export", "seresnet_mini", "--onnx", str(tmp_path / "m.onnx")]) == 0
    out, err = capsys.readouterr()
    assert "max abs diff" in out and (tmp_path / "m.onnx").is_file()
    assert "WARNING: seresnet_mini has random weights" in err
    argv = ["export", "seresnet_mini", "--weights", "sotazoo", "--onnx", str(tmp_path / "w.onnx")]
    assert main(argv) == 0
    assert "weights: seresnet_mini.sotazoo (sha256 " in capsys.readouterr().err


def test_bench_json(capsys):
    assert main(["bench", "seresnet_mini", "--reps", "2", "--batch", "2", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["ours"]["params"] > 0 and r["ours"]["latency_ms"] > 0 and r["threads"] >= 1
    assert r["reference"] is None


def test_bench_save_records_how_to_make_it_again(tmp_path, monkeypatch):
    monkeypatch.setenv("SOTAZOO_RESULTS", str(tmp_path))
    assert main(["bench", "seresnet_mini", "--reps", "1", "--batch", "2", "--save"]) == 0
    saved = json.loads((tmp_path / "bench" / "seresnet_mini.json").read_text())
    assert saved["command"] == "sotazoo bench seresnet_mini --batch 2 --reps 1 --save"
    assert saved["versions"]["torch"] and saved["git_commit"]


def test_bench_save_refuses_uncommitted_code(tmp_path, monkeypatch, capsys):
    import sotazoo.repro

    monkeypatch.delenv("SOTAZOO_RESULTS", raising=False)
    monkeypatch.setattr(sotazoo.repro, "results_dir", lambda: tmp_path)
    monkeypatch.setattr(sotazoo.repro, "git_commit", lambda: ("0123456789abcdef", True))
    assert main(["bench", "seresnet_mini", "--reps", "1", "--batch", "1", "--save"]) == 1
    assert "uncommitted changes" in capsys.readouterr().err and not (tmp_path / "bench").exists()
    argv = ["bench", "seresnet_mini", "--reps", "1", "--batch", "1", "--save", "--allow-dirty"]
    assert main(argv) == 0
    saved = json.loads((tmp_path / "dirty" / "bench" / "seresnet_mini.json").read_text())
    assert saved["command"].endswith("--save --allow-dirty")


def test_bench_vs_a_reference_shares_weights():
    pytest.importorskip("timm")
    from sotazoo.bench import bench

    r = bench("seresnet50", vs="timm:legacy_seresnet50", reps=1, warmup=0, batch=1, progress=False)
    assert r.weights_shared and r.ours.params == r.reference.params
    # counted multiply-adds of the same layers (an integer / 1e9): equal on any CPU
    assert abs(r.ours.gmacs - r.reference.gmacs) < 1e-6 and r.latency_ratio > 0


def test_bench_rejects_a_bad_reference(capsys):
    assert main(["bench", "seresnet_mini", "--vs", "caffe:foo", "--reps", "1"]) == 1
    err = capsys.readouterr().err
    assert "torchsr:NAME:k=v, opencv:NAME:k=v, monai:NAME:k=v or sotazoo:NAME:k=v" in err


def test_info_marks_unverified_numbers(capsys):
    from sotazoo.cards import load_card
    from sotazoo.registry import list_papers

    pid = next(p for p in list_papers() if not all(c.verified for c in load_card(p).claims))
    assert main(["info", pid]) == 0
    out = capsys.readouterr().out
    assert " *\n" in out and "not checked against the paper's own text" in out
    assert main(["info", "senet"]) == 0  # every SENet number was read in the paper
    assert "not checked" not in capsys.readouterr().out


def test_methods_are_listed_benched_and_shown(tmp_path, monkeypatch, capsys):
    assert main(["list", "--methods"]) == 0
    out = capsys.readouterr().out
    assert all(f"autoaugment_{p}" in out for p in ("imagenet", "cifar10", "svhn"))
    assert main(["info", "autoaugment"]) == 0
    assert "Methods: autoaugment_imagenet" in capsys.readouterr().out
    monkeypatch.setenv("SOTAZOO_RESULTS", str(tmp_path))
    assert main(["bench", "autoaugment_svhn", "--vs", "--reps", "5", "--size", "32", "--save"]) == 0
    saved = json.loads((tmp_path / "bench" / "autoaugment_svhn.json").read_text())
    assert saved["command"] == "sotazoo bench autoaugment_svhn --vs --size 32 --reps 5 --save"
    assert saved["reference"]["name"] == "torchvision:AutoAugment:policy=svhn"
    assert saved["input_size"] == [3, 32, 32] and saved["latency_ratio"] > 0
    assert main(["bench", "autoaugment_svhn", "--batch", "4"]) == 1
    assert "a method: it takes one image at a time" in capsys.readouterr().err
