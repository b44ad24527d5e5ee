"""SENet: parameter counts and multiply-adds against the paper, the timm oracle, the converters,
the SE block on a case computed by hand, bad input, and the reproduction in --quick mode."""

import pytest
import torch

import sotazoo
from sotazoo.bench import count_gmacs, count_params
from sotazoo.cards import load_card
from sotazoo.errors import InputError, WeightsError
from sotazoo.nn import SqueezeExcite
from sotazoo.papers.senet.convert import convert_state_dict, detect_layout

from .oracle import randomise_bn, within
from .shapes_demo import check_shapes_classifier

timm = pytest.importorskip("timm")
CARD = load_card("senet")
VARIANTS = [m for m in CARD.models if not m.laptop]


@pytest.mark.parametrize("entry", VARIANTS, ids=lambda e: e.name)
def test_param_count_matches_the_reference(entry):
    """Checks each variant's count against `params` of the card (its `params_source` says where
    the number comes from: Table 10 of the paper for SE-ResNet-50, the official release's
    PyTorch port for the others), within 0.5%."""
    n = count_params(sotazoo.create_model(entry.name))
    assert abs(n - entry.params) / entry.params <= 0.005, (n, entry.params, entry.params_source)


@pytest.mark.parametrize("entry", [e for e in VARIANTS if e.gflops], ids=lambda e: e.name)
def test_gmacs_match_table_2(entry):
    """Multiply-adds at 224x224 vs Table 2's GFLOPs (3.87, 7.60, 11.32, 4.25, 8.00), within 0.5%:
    flop_counter counts only convolutions and matmuls, so ours are slightly below."""
    got = count_gmacs(sotazoo.create_model(entry.name).eval(), (3, 224, 224))
    assert abs(got - entry.gflops) / entry.gflops <= 0.005, (got, entry.gflops)


def test_se_adds_about_ten_percent_params_and_under_one_percent_flops():
    """Section 4 and Table 10: ~2.5M extra parameters (~10%) and <1% more multiply-adds."""
    se, plain = sotazoo.create_model("seresnet50"), sotazoo.create_model("seresnet50", se="none")
    assert count_params(plain) == 25_557_032  # torchvision/timm resnet50: same count
    extra = count_params(se) - count_params(plain)
    assert 2_400_000 < extra < 2_600_000
    ratio = count_gmacs(se.eval(), (3, 224, 224)) / count_gmacs(plain.eval(), (3, 224, 224))
    assert 1.0 < ratio < 1.01


ORACLES = [(e.name, e.reference.split(":")[1]) for e in VARIANTS]


@pytest.mark.slow
@pytest.mark.parametrize(("ours", "ref"), ORACLES, ids=[o for o, _ in ORACLES])
def test_oracle_timm_legacy(ours, ref):
    """timm's legacy_* (the PyTorch port of the Caffe release) loads into ours; outputs agree."""
    theirs = randomise_bn(timm.create_model(ref))
    sd, overrides, layout = convert_state_dict(theirs.state_dict())
    assert layout == "sotazoo" and overrides == {"num_classes": 1000}
    model = sotazoo.create_model(ours)
    model.load_state_dict(sd, strict=True)
    model.eval()
    size = 224 if ours == "seresnet50" else 96
    x = torch.randn(2, 3, size, size)
    with torch.inference_mode():
        diff = (model(x) - theirs(x)).abs().max().item()
    # Same weights, the same torch ops in the same order, so the same kernels on any CPU and
    # thread count (measured: equal); 1e-5 is ~80 ulps of logits of order 1.
    within(diff, 1e-5, "logits vs timm")


@pytest.mark.slow
@pytest.mark.parametrize("ref", ["seresnet50", "seresnext50_32x4d", "senet154"])
def test_oracle_timm_resnet_layout(ref, tmp_path):
    """timm's ResNet-family SE models (other keys, padded pool, strides on the 3x3) load through
    the converter with the overrides it derives, and compute what timm computes."""
    theirs = randomise_bn(timm.create_model(ref, num_classes=7))
    path = tmp_path / f"{ref}.pth"
    torch.save(theirs.state_dict(), path)
    ours_name = {"senet154": "senet154"}.get(ref, ref)
    model = sotazoo.create_model(ours_name, weights=path)
    assert model.cfg.pool == "pad" and not model.cfg.stride_in_1x1 and model.cfg.num_classes == 7
    x = torch.randn(2, 3, 96, 96)
    with torch.inference_mode():
        diff = (model(x) - theirs(x)).abs().max().item()
    within(diff, 1e-5, "logits vs timm, ResNet layout")  # as above: the same ops and kernels


def _cadene_layout_file(tmp_path, fmt="pth"):
    """A synthetic checkpoint in the layout of `se_resnet50-ce0d4300.pth` (pretrainedmodels):
    the keys and shapes of timm's legacy_seresnet50, random values, 1000 classes."""
    sd = randomise_bn(timm.create_model("legacy_seresnet50")).state_dict()
    sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}  # as in the file
    assert "layer0.conv1.weight" in sd and "layer1.0.se_module.fc1.weight" in sd
    path = tmp_path / f"se_resnet50-synthetic.{fmt}"
    if fmt == "pth":
        torch.save(sd, path)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return path, sd


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_convert_pretrainedmodels_layout_from_a_path(tmp_path, fmt):
    path, sd = _cadene_layout_file(tmp_path, fmt)
    model = sotazoo.create_model("seresnet50", weights=path)
    assert not model.training
    assert torch.equal(model.state_dict()["last_linear.weight"], sd["last_linear.weight"])


def test_convert_through_the_official_weights_entry(tmp_path, monkeypatch):
    """`weights="official"` fetches from the entry's URL into the cache, checks the hash, converts.
    The entry's URL is pointed at a synthetic local file of the same layout (no network)."""
    import dataclasses
    import hashlib

    from sotazoo.papers.senet import weights as senet_weights

    path, _ = _cadene_layout_file(tmp_path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    real = next(w for w in senet_weights.WEIGHTS if w.model == "seresnet50")
    assert real.filename == "se_resnet50-ce0d4300.pth" and real.sha256.startswith("ce0d4300")
    fake = dataclasses.replace(real, urls=(path.as_uri(),), sha256=digest)
    monkeypatch.setattr(senet_weights, "WEIGHTS", (fake,))
    model = sotazoo.create_model("seresnet50", weights="official", progress=False)
    assert model.cfg.num_classes == 1000
    cached = sotazoo.weights.cache_path(fake)
    cached.write_bytes(cached.read_bytes()[:-10] + b"0123456789")  # tamper with the cache
    with pytest.raises(WeightsError, match="does not match its sha256: expected"):
        sotazoo.create_model("seresnet50", weights="official")


def test_convert_rejects_unknown_layouts_and_missing_keys(tmp_path):
    with pytest.raises(WeightsError, match="unrecognised SENet checkpoint layout.*'head.w'"):
        detect_layout({"head.w", "body.conv.weight"})
    path, sd = _cadene_layout_file(tmp_path)
    del sd["layer4.2.se_module.fc2.bias"]
    torch.save(sd, path)
    with pytest.raises(
        WeightsError, match="1 missing keys, e.g. \\['layer4.2.se_module.fc2.bias'\\]"
    ):
        sotazoo.create_model("seresnet50", weights=path)
    with pytest.raises(WeightsError, match="needs num_classes=1000 but num_classes=10"):
        sotazoo.create_model("seresnet50", weights=path, num_classes=10)


def test_unknown_weights_tag():
    with pytest.raises(sotazoo.UnknownNameError, match="seresnet50.offical.*seresnet50.official"):
        sotazoo.create_model("seresnet50", weights="offical")


def test_se_block_on_a_case_computed_by_hand():
    """Eq. 2-4 with C = 2, r = 2: z = channel means, s = sigmoid(W2 relu(W1 z + b1) + b2)."""
    se = SqueezeExcite(2, reduction=2)
    with torch.no_grad():
        se.fc1.weight.copy_(torch.tensor([[1.0, -1.0]]).view(1, 2, 1, 1))
        se.fc1.bias.fill_(0.5)
        se.fc2.weight.copy_(torch.tensor([[2.0], [-1.0]]).view(2, 1, 1, 1))
        se.fc2.bias.copy_(torch.tensor([0.0, 1.0]))
    x = torch.tensor([[[[1.0, 3.0]], [[0.0, 2.0]]]])  # channel means 2 and 1
    # hidden = relu(2 - 1 + 0.5) = 1.5; gates = sigmoid(3.0), sigmoid(-0.5)
    gates = torch.sigmoid(torch.tensor([3.0, -0.5]))
    expected = x * gates.view(1, 2, 1, 1)
    assert torch.allclose(se(x), expected, atol=1e-7)  # one sigmoid and product: an ulp at most


def test_se_sits_before_the_identity_addition():
    """With SE gates forced to zero, the standard block outputs relu(shortcut) exactly; SE-POST
    outputs zero: the placement of Table 14 is what the code does."""
    x = torch.randn(1, 256, 8, 8)
    for position, expect in (("standard", torch.relu(x)), ("post", torch.zeros_like(x))):
        block = sotazoo.create_model("seresnet50", se=position).layer1[1].eval()
        with torch.no_grad():
            block.se_module.fc2.bias.fill_(-1e4)  # sigmoid -> 0
        assert torch.allclose(block(x), expect)


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.randn(1, 1, 64, 64), "expected 3 input channels, got 1"),
        (torch.randn(3, 64, 64), r"4-D batch \(B, C, H, W\).*add a batch dimension"),
        (
            torch.randint(0, 255, (1, 3, 64, 64), dtype=torch.uint8),
            "floating-point tensor, got torch.uint8",
        ),
        (torch.full((1, 3, 64, 64), float("nan")), "12288 NaN and 0 infinite"),
        (torch.tensor([[[[float("inf")]]]]).expand(1, 3, 8, 8).clone(), "0 NaN and 192 infinite"),
    ],
    ids=["channels", "rank", "dtype", "nan", "inf"],
)
def test_bad_input_is_a_clear_error(x, match):
    model = sotazoo.create_model("seresnet50", **{"layers": (1, 1, 1, 1)}).eval()
    with pytest.raises(InputError, match=match):
        model(x)


def test_bad_input_weight_file(tmp_path):
    bad = tmp_path / "w.pth"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(WeightsError, match="cannot read"):
        sotazoo.create_model("seresnet50", weights=bad)
    for missing in ("missing/dir/w.pth", "se_resnet50-ce0d4300.pth"):
        with pytest.raises(WeightsError, match="no weight file at .*tags of 'seresnet50'"):
            sotazoo.create_model("seresnet50", weights=missing)


def test_export_seresnet50_full_size(tmp_path):
    from sotazoo.export import export_onnx

    r = export_onnx(
        randomise_bn(sotazoo.create_model("seresnet50")), (3, 224, 224), tmp_path / "m.onnx"
    )
    assert r.max_rel_diff <= 1e-4  # of max(1, max |output|), sotazoo.export's rule


def test_repro_quick(tmp_path):
    from sotazoo.repro import run_repro, validate_result

    data = run_repro("senet", quick=True, out_dir=tmp_path, progress=False)
    assert data["quick"] and validate_result(data) == []
    assert (tmp_path / "senet.quick.json").is_file() and (tmp_path / "senet.quick.svg").is_file()
    assert [c["id"] for c in data["claims"]] == ["se_resnet50_top1", "se_resnet50_cpu_ms"]
    # counts of our own model are checks of the model, not reproduced claims
    params, flops = data["checks"]
    assert (params["id"], flops["id"]) == ("se_resnet50_params", "se_resnet50_gflops")
    assert params["ok"] and params["measured"] == pytest.approx(28.088, abs=0.01)  # Table 1: 28.1M
    assert flops["ok"]
    assert all(c["verdict"] == "inconclusive" for c in data["claims"])  # one seed decides nothing


@pytest.mark.parametrize("w", sotazoo.list_weights("seresnet50") + sotazoo.list_weights("senet154")
                         + sotazoo.list_weights("seresnet_mini"), ids=lambda w: w.name)  # fmt: skip
def test_convert_entries_declare_the_counted_params(w):
    """Each weights entry's num_params is what the model it loads into really has."""
    assert count_params(sotazoo.create_model(w.model)) == w.num_params


def test_convert_our_demo_weights_match_their_log_and_accuracy():
    """The committed seresnet_mini weights: hash, log and held-out accuracy recomputed."""
    from sotazoo.papers.senet import train

    check_shapes_classifier("seresnet_mini", train)
