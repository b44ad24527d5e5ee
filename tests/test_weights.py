import dataclasses
import hashlib
import json
import pickle
from pathlib import Path

import pytest
import torch

import sotazoo
from sotazoo.errors import WeightsError
from sotazoo.weights import (
    Weights,
    cache_path,
    download,
    fetch,
    home,
    load_into,
    read_state_dict,
    save_safetensors,
    verify,
)


def _entry(tmp_path, payload: bytes, **kw) -> tuple[Weights, str]:
    src = tmp_path / "src" / "tiny-abc.pth"
    src.parent.mkdir()
    src.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    w = Weights(model="seresnet_mini", tag="test", urls=(src.as_uri(),), sha256=kw.pop("sha256", digest),
                filename="tiny-abc.pth", format="pth", num_params=0, **kw)  # fmt: skip
    return w, digest


def test_home_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SOTAZOO_HOME", str(tmp_path / "h"))
    assert home() == tmp_path / "h"
    monkeypatch.delenv("SOTAZOO_HOME")
    assert home().parts[-2:] == (".cache", "sotazoo")


def test_fetch_downloads_into_the_cache_and_verifies(tmp_path):
    w, digest = _entry(tmp_path, b"weights" * 1000)
    path = fetch(w, progress=False)
    assert path == cache_path(w) and path.read_bytes() == b"weights" * 1000
    assert verify(path, digest) == digest
    path.write_bytes(b"tampered")  # altered after download: caught at the next load
    with pytest.raises(WeightsError, match="does not match its sha256"):
        fetch(w, progress=False)


def test_parts_are_fetched_beside_the_checkpoint_each_by_its_own_digest(tmp_path):
    """A checkpoint of several files (AdaIN's decoder and encoder): every part lands in the
    same folder, checked by its own sha256; a tampered part fails the next fetch."""
    from sotazoo.weights import Part

    w, _ = _entry(tmp_path, b"decoder" * 100)
    enc = tmp_path / "src" / "encoder.pth"
    enc.write_bytes(b"encoder" * 100)
    part = Part(filename="encoder.pth", urls=(enc.as_uri(),), sha256=hashlib.sha256(enc.read_bytes()).hexdigest())
    w = dataclasses.replace(w, parts=(part,))
    path = fetch(w, progress=False)
    assert (path.parent / "encoder.pth").read_bytes() == b"encoder" * 100
    (path.parent / "encoder.pth").write_bytes(b"tampered")
    with pytest.raises(WeightsError, match="encoder.pth does not match its sha256"):
        fetch(w, progress=False)
    bad = dataclasses.replace(w, parts=(dataclasses.replace(part, filename="other.pth", sha256="0" * 64),))
    with pytest.raises(WeightsError, match="encoder.pth has sha256 .*, expected 0{64}"):
        fetch(bad, progress=False)
    assert not (path.parent / "other.pth").exists()


def test_only_a_full_digest_pins_a_file(tmp_path):
    """A 32-bit prefix can be matched by a forged file in seconds: `verify` takes only the full
    digest, and `fetch` refuses an entry that has only a prefix, before any download."""
    w, digest = _entry(tmp_path, b"abc", sha256="")
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert verify(p, digest) == digest
    with pytest.raises(WeightsError, match="must be the full 64-hex digest"):
        verify(p, digest[:8])
    md5_only = dataclasses.replace(w, sha256="", md5="0" * 32)
    with pytest.raises(WeightsError, match="only an MD5 .* pass its path"):
        fetch(md5_only, progress=False)
    prefix_only = dataclasses.replace(w, sha256=digest[:8])
    with pytest.raises(WeightsError, match="only the sha256 prefix .* pass its path"):
        fetch(prefix_only, progress=False)
    assert not cache_path(prefix_only).exists()


def test_every_fetchable_entry_is_pinned_by_its_full_digest():
    """Entries with a URL or a packaged file either carry the full digest, or are the few
    third-party files known only by their name's prefix (which `fetch` refuses)."""
    for name in sotazoo.list_models():
        for w in sotazoo.list_weights(name):
            if w.packaged or w.tag == "sotazoo":
                assert w.full_hash, w.name
            elif not w.full_hash:
                prefix = len(w.sha256) == 8 and w.sha256 in w.filename
                md5_only = w.sha256 == "" and len(w.md5) == 32
                assert prefix or md5_only, w.name


def test_wrong_hash_download_leaves_nothing_behind(tmp_path):
    w, _ = _entry(tmp_path, b"payload", sha256="0" * 64)
    with pytest.raises(WeightsError, match="could not download|sha256"):
        fetch(w, progress=False)
    assert not cache_path(w).exists()
    assert list(cache_path(w).parent.glob("*")) == []


def test_offline_error_says_where_to_put_the_file(tmp_path):
    w = Weights(model="m", tag="t", urls=("http://127.0.0.1:9/nothing.pth",), sha256="ab" * 32,
                filename="nothing.pth", format="pth", num_params=0)  # fmt: skip
    with pytest.raises(WeightsError) as e:
        fetch(w, progress=False)
    assert str(cache_path(w)) in str(e.value) and "place it at" in str(e.value)


def test_download_is_atomic(tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(b"x" * 5000)
    dest = tmp_path / "cache" / "a.bin"
    download(src.as_uri(), dest, hashlib.sha256(b"x" * 5000).hexdigest(), progress=False)
    assert dest.read_bytes() == b"x" * 5000
    assert [p.name for p in dest.parent.iterdir()] == ["a.bin"]


def test_read_safetensors_and_torch_files(tmp_path):
    sd = {"a": torch.randn(3), "b": torch.zeros(2, 2)}
    digest = save_safetensors(sd, tmp_path / "w.safetensors", note="x")
    assert len(digest) == 64
    got = read_state_dict(tmp_path / "w.safetensors")
    assert torch.equal(got["a"], sd["a"])
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "w.pth")
    got = read_state_dict(tmp_path / "w.pth")  # wrapper and DataParallel prefix removed
    assert set(got) == {"a", "b"}


class _Evil:
    def __reduce__(self):
        return (print, ("pickle ran code",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickles_with_code_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"w": _Evil()}, f)
    with pytest.raises(WeightsError, match="cannot read"):
        read_state_dict(path)


def test_corrupt_and_missing_files(tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"\x00\x01garbage")
    with pytest.raises(WeightsError, match="cannot read .*bad.safetensors as safetensors"):
        read_state_dict(tmp_path / "bad.safetensors")
    (tmp_path / "bad.pth").write_bytes(b"not a zip")
    with pytest.raises(WeightsError, match="cannot read"):
        read_state_dict(tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match="no weight file"):
        read_state_dict(tmp_path / "nope.pth")


def test_load_into_names_missing_unexpected_and_shapes():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    sd = dict(model.state_dict())
    sd.pop("1.bias")
    sd["extra.weight"] = torch.zeros(1)
    sd["0.weight"] = torch.zeros(5, 3)
    with pytest.raises(WeightsError) as e:
        load_into(model, sd, "file.pth")
    msg = str(e.value)
    assert "1 missing keys, e.g. ['1.bias']" in msg
    assert "1 unexpected keys, e.g. ['extra.weight']" in msg
    assert "0.weight: file (5, 3) vs model (4, 3)" in msg


def test_load_into_rejects_nan_weights():
    model = torch.nn.Linear(2, 2)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    sd["weight"][0, 0] = float("nan")
    with pytest.raises(WeightsError, match="NaN or infinite values in \\['weight'\\]"):
        load_into(model, sd, "f")


def test_saved_files_are_byte_stable(tmp_path):
    """The same tensors and metadata give the same bytes, hence the same sha256: the header is
    written with sorted keys (the library's metadata order changes from one process to the
    next), and the file still loads with every tensor and the metadata intact."""
    from safetensors import safe_open

    sd = {"b": torch.arange(6.0).reshape(2, 3), "a": torch.ones(4, dtype=torch.int64)}
    meta = {k: f"value {k}" for k in ("seed", "model", "zeta", "alpha", "mid", "other")}
    digests = {save_safetensors(sd, tmp_path / f"{i}.safetensors", **meta) for i in range(3)}
    assert len(digests) == 1
    raw = (tmp_path / "0.safetensors").read_bytes()
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    assert list(header) == sorted(header) and list(header["__metadata__"]) == sorted(meta)
    with safe_open(str(tmp_path / "0.safetensors"), "pt") as f:
        assert f.metadata() == meta
        assert torch.equal(f.get_tensor("b"), sd["b"]) and torch.equal(f.get_tensor("a"), sd["a"])


# Logs written from a dirty tree that are not retrained yet (each takes 15 to 30 minutes of both
# cores): listed, so the test fails the day one is retrained and not taken off this list.
PENDING_RETRAIN: dict[str, str] = {}
_LOGS = [
    pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=f"retrain: {PENDING_RETRAIN[n]}"))
    if (n := p.name.split(".")[0]) in PENDING_RETRAIN
    else p
    for p in sorted((Path(sotazoo.__file__).parent).rglob("*.sotazoo.log.json"))
]


@pytest.mark.parametrize("log", _LOGS, ids=lambda p: p.name.split(".")[0])
def test_every_shipped_weights_log_names_its_command_and_a_clean_commit(log):
    """A weight we trained is evidence like a result: its log says what made it, from code that
    was committed (issue 17: the logs written from a dirty tree were retrained)."""
    data = json.loads(log.read_text(encoding="utf-8"))
    assert data["command"].startswith(("sotazoo train ", "python -m sotazoo."))
    assert len(data["git_commit"]) == 40 and data["git_dirty"] is False, (
        f"{log.name} was written from uncommitted code: rerun `{data['command']}` from a clean "
        "checkout"
    )
    assert (log.parent / log.name.replace(".log.json", ".safetensors")).is_file()
