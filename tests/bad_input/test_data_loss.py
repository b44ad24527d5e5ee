"""The bad-input corpus, data loss and integrity: nothing of the user's is replaced or deleted,
concurrent writers never mix or fail, interrupted work leaves nothing half-written behind, a
weights tag never means a file in the current folder, and a file that is not what it claims is
refused."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
import torch

import sotazoo
from sotazoo.errors import SotazooError, UnknownNameError, WeightsError
from sotazoo.site import build as site_build

from .harness import Case, CliError, check, cli


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    """A fresh current folder for the case (tags must not depend on what lies in it)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _users_folder(root: Path) -> Path:
    d = root / "notes"
    (d / "photos").mkdir(parents=True)
    (d / "thesis.txt").write_text("four years of work")
    (d / "photos" / "cat.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return d


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _refused_and_intact(run, target: Path) -> callable:
    """A case's `run`: `run()` must raise, and `target` (file or folder) be byte for byte as
    before. A changed target is returned, not raised: the destructive outcome is `silent`."""

    def case():
        before = _snapshot(target) if target.is_dir() else target.read_bytes()
        error = result = None
        try:
            result = run()
        except BaseException as e:  # noqa: BLE001 - re-raised below unless the target changed
            error = e
        after = _snapshot(target) if target.is_dir() else target.is_file() and target.read_bytes()
        if after != before:
            return f"{target} was replaced or changed ({error or result!r:.80})"
        if error is not None:
            raise error
        return result

    return case


def _case(name: str, root: Path) -> Case:
    """The site case `name`, over a user's folder and file made in `root` (the current folder)."""
    folder = _users_folder(root)
    notes = root / "notes.txt"
    notes.write_text("my notes")
    cases = [
        Case("site-build-over-a-users-folder",
             _refused_and_intact(lambda: site_build.build_site(folder, progress=False), folder),
             "did not build.*new or empty folder"),
        Case("site-build-cli-over-a-users-folder",
             _refused_and_intact(cli("site", "build", "--out", str(folder)), folder),
             "did not build", CliError),
        Case("serve-over-a-users-folder",
             _refused_and_intact(cli("serve", "--site", str(folder), "--port", "0"), folder),
             "did not build", CliError),
        Case("site-build-onto-a-file",
             _refused_and_intact(lambda: site_build.build_site(notes, progress=False), notes),
             "not a folder"),
        Case("serve-onto-a-file",
             _refused_and_intact(cli("serve", "--site", str(notes), "--port", "0"), notes),
             "not a folder", CliError),
        Case("site-build-into-the-current-folder",
             _refused_and_intact(cli("site", "build", "--out", "."), root),
             "current folder", CliError),
        Case("site-build-into-a-parent-of-the-current-folder",
             _refused_and_intact(cli("site", "build", "--out", str(root.parent)), root),
             "current folder", CliError),
    ]  # fmt: skip
    return next(c for c in cases if c.id == name)


SITE_CASES = [
    "site-build-over-a-users-folder",
    "site-build-cli-over-a-users-folder",
    "serve-over-a-users-folder",
    "site-build-onto-a-file",
    "serve-onto-a-file",
    "site-build-into-the-current-folder",
    "site-build-into-a-parent-of-the-current-folder",
]


@pytest.mark.parametrize("name", SITE_CASES)
def test_destructive_site_paths_are_refused(name, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    check(_case(name, work))


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_tag_is_never_a_file_of_the_current_folder(cwd, kind):
    """`./sotazoo` (a stray file, or the checkout itself when run from its parent) must not be
    loaded in place of the packaged, sha256-checked weights of the tag `sotazoo`."""
    if kind == "file":
        torch.save({"junk": torch.zeros(1)}, cwd / "sotazoo")
    else:
        (cwd / "sotazoo").mkdir()
    model = sotazoo.create_model("seresnet_mini", weights="sotazoo")
    packaged = sotazoo.create_model("seresnet_mini", weights="seresnet_mini.sotazoo")
    for a, b in zip(model.state_dict().values(), packaged.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # A bare word that is not a tag is an error that points at the file, not a silent load.
    (cwd / "mine").write_bytes(b"")
    with pytest.raises(UnknownNameError, match="not|unknown.*pass ./mine"):
        sotazoo.create_model("seresnet_mini", weights="mine")
    with pytest.raises(WeightsError, match="cannot read"):  # ./mine is read as the file it is
        sotazoo.create_model("seresnet_mini", weights="./mine")


def test_a_tag_in_sample_and_site_is_not_a_path(cwd):
    (cwd / "sotazoo").mkdir()
    check(Case("sample-with-a-folder-named-like-the-tag",
               cli("sample", "sagan_mini", "--out", str(cwd / "g.png"), "--seeds", "0-1"),
               expect="ok"))  # fmt: skip
    assert (cwd / "g.png").stat().st_size > 0


def _hammer(write, n: int, workers: int = 8) -> list[BaseException]:
    errors: list[BaseException] = []

    def work(i):
        try:
            write(i)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for chunk in range(0, n, workers):
        for t in threads[chunk : chunk + workers]:
            t.start()
        for t in threads[chunk : chunk + workers]:
            t.join()
    return errors


def test_concurrent_atomic_writes_never_fail_or_mix(tmp_path):
    """300 writers of one JSON file and of one safetensors file (the audit saw 5 of 300 fail
    with a shared `.part` name): every write succeeds, the survivor is one whole write, and no
    temporary file is left."""
    from safetensors.torch import load_file

    from sotazoo.fileio import write_json_atomic
    from sotazoo.weights import save_safetensors

    target = tmp_path / "r.json"
    assert _hammer(lambda i: write_json_atomic({"writer": i, "pad": "x" * 5000}, target), 300) == []
    assert json.loads(target.read_text())["pad"] == "x" * 5000
    st = tmp_path / "w.safetensors"
    errs = _hammer(lambda i: save_safetensors({"w": torch.full((100,), float(i))}, st), 300)
    assert errs == []
    w = load_file(str(st))["w"]
    assert torch.equal(w, torch.full((100,), w[0].item()))  # one writer's tensor, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "w.safetensors"]


def test_an_interrupted_write_leaves_the_old_file(tmp_path):
    from sotazoo.fileio import atomic_path, write_json_atomic

    target = tmp_path / "log.json"
    write_json_atomic({"v": 1}, target)
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text('{"v": 2, "trunc')
        raise KeyboardInterrupt
    assert json.loads(target.read_text()) == {"v": 1} and os.listdir(tmp_path) == ["log.json"]


def test_killed_writers_leftovers_are_removed(tmp_path):
    from sotazoo.fileio import remove_orphans

    target = tmp_path / "yolov3.weights"
    orphan = tmp_path / ".yolov3.123-abcd.part.weights"
    legacy = tmp_path / "yolov3.weights.xyz.part"
    fresh = tmp_path / ".yolov3.456-beef.part.weights"
    for p in (orphan, legacy, fresh):
        p.write_bytes(b"half")
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    os.utime(legacy, (old, old))
    assert sorted(remove_orphans(target)) == sorted([orphan, legacy])
    assert fresh.exists()  # a live writer's file (recent) is kept


def test_fetch_removes_a_killed_downloads_part_file(tmp_path):
    import hashlib

    from sotazoo.weights import Weights, cache_path, fetch

    src = tmp_path / "w.bin"
    src.write_bytes(b"weights")
    w = Weights(model="seresnet_mini", tag="t", urls=(src.as_uri(),),
                sha256=hashlib.sha256(b"weights").hexdigest(), filename="w.bin", format="pth",
                num_params=0)  # fmt: skip
    dest = cache_path(w)
    dest.parent.mkdir(parents=True)
    orphan = dest.parent / ".w.999-dead.part.bin"
    orphan.write_bytes(b"we")  # a download killed with SIGKILL
    assert fetch(w, progress=False).read_bytes() == b"weights"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["w.bin"]


def _fake_build(pages: int, delay: float = 0.0):
    """A stand-in for the site's pages, so that the build mechanics (marker, lock, swap,
    clean-up) are tested in milliseconds."""

    def build_into(work: Path, *, progress: bool) -> None:
        for i in range(pages):
            (work / f"page{i}.html").write_text(f"page {i}")
            time.sleep(delay)
        (work / "site.json").write_text(json.dumps({"pages": pages}))

    return build_into


def test_concurrent_site_builds_serialise_and_each_leaves_a_whole_site(tmp_path, monkeypatch):
    monkeypatch.setattr(site_build, "_build_into", _fake_build(20, delay=0.005))
    out = tmp_path / "site"
    assert _hammer(lambda i: site_build.build_site(out, progress=False), 6, workers=6) == []
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [site_build.MARKER, "site.json", *(f"page{i}.html" for i in range(20))]
    )
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["site"]


def test_an_interrupted_site_build_leaves_the_old_site_and_no_partial_folder(tmp_path, monkeypatch):
    out = tmp_path / "site"
    monkeypatch.setattr(site_build, "_build_into", _fake_build(3))
    site_build.build_site(out, progress=False)
    before = _snapshot(out)

    def interrupted(work: Path, *, progress: bool) -> None:
        (work / "page0.html").write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setattr(site_build, "_build_into", interrupted)
    with pytest.raises(KeyboardInterrupt):
        site_build.build_site(out, progress=False)
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["site"]


def test_a_killed_site_builds_folder_is_removed_by_the_next_build(tmp_path, monkeypatch):
    monkeypatch.setattr(site_build, "_build_into", _fake_build(2))
    killed = tmp_path / ".site.4242-dead.part"
    killed.mkdir()
    (killed / site_build.MARKER).write_text("sotazoo")
    users = tmp_path / ".site.notes.part"  # looks alike, but not ours: kept
    users.mkdir()
    site_build.build_site(tmp_path / "site", progress=False)
    assert not killed.exists() and users.exists()


def test_the_build_lock_times_out_with_a_clear_error(tmp_path):
    from sotazoo.fileio import file_lock

    lock = tmp_path / "x.lock"
    with file_lock(lock):
        errors = _hammer(lambda i: file_lock(lock, what="the thing", timeout_s=0.2).__enter__(), 1)
    assert len(errors) == 1 and isinstance(errors[0], SotazooError)
    assert "the thing is in use" in str(errors[0])


def test_weight_files_of_the_wrong_kind_are_refused(tmp_path):
    """int32 tensors cast silently into float weights loaded 1,043 of 266,138 parameters
    non-zero; a file of integers is not a checkpoint of this model."""
    model = sotazoo.create_model("seresnet_mini")
    sd = {k: (v * 1000).to(torch.int32) if v.is_floating_point() else v
          for k, v in model.state_dict().items()}  # fmt: skip
    path = tmp_path / "ints.pth"
    torch.save(sd, path)
    check(Case("int32-checkpoint", lambda: sotazoo.create_model("seresnet_mini", weights=path),
               "another kind of number.*int32 into model torch.float32", WeightsError))  # fmt: skip
    half = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save(half, tmp_path / "half.pth")  # half precision is weights all the same: loads
    check(Case("half-checkpoint",
               lambda: sotazoo.create_model("seresnet_mini", weights=tmp_path / "half.pth"),
               expect="ok"))  # fmt: skip
    big = dict(model.state_dict())
    key = next(k for k, v in big.items() if v.dtype == torch.int64)  # num_batches_tracked
    big[key] = torch.tensor(2**40)
    model32 = sotazoo.create_model("seresnet_mini")
    model32.get_buffer(key).data = model32.get_buffer(key).to(torch.int32)
    with pytest.raises(WeightsError, match="another kind of number"):
        from sotazoo.weights import load_into

        load_into(model32, big, "big.pth")  # 2^40 does not fit an int32 buffer
