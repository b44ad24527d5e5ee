"""`sotazoo.tfcheckpoint`: TensorFlow checkpoints read without TensorFlow, on files that
TensorFlow 2.21 wrote (tests/data/tf_checkpoint/make.py) and the same arrays written by numpy."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from sotazoo import tfcheckpoint
from sotazoo.errors import WeightsError
from sotazoo.tfcheckpoint import crc32c, read_tf_checkpoint, tf_checkpoint_variables

DATA = Path(__file__).parent / "data" / "tf_checkpoint"


def _expected() -> dict[str, np.ndarray]:
    with np.load(DATA / "expected.npz") as f:
        return {k.replace("|", "/"): f[k] for k in f.files}


def test_crc32c_gives_the_published_check_values():
    # the CRC catalogue's check value of CRC-32C, and RFC 3720 (iSCSI) B.4's 32 zero bytes
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"6789", crc32c(b"12345")) == 0xE3069283  # continued over pieces


def test_a_tf1_checkpoint_reads_as_tensorflow_wrote_it():
    """311 tensors over several index blocks: every name, dtype, shape and value as numpy saved
    them (bfloat16 widened to float32: the values TensorFlow read back after rounding)."""
    expected = _expected()
    for where in ("name_based", "name_based/model.ckpt", "name_based/model.ckpt.index",
                  "name_based/model.ckpt.data-00000-of-00001"):  # fmt: skip
        got = read_tf_checkpoint(DATA / where, verify_crc=True)
        assert set(got) == set(expected)
    for name, value in expected.items():
        dtype = np.float32 if name == "bf16/value" else value.dtype
        assert got[name].dtype == dtype and got[name].shape == value.shape, name
        assert np.array_equal(got[name], value), name
    assert got["global_step"].item() == 123456789012  # int64 beyond 32 bits
    listed = tf_checkpoint_variables(DATA / "name_based")
    assert listed["bf16/value"] == ("bfloat16", (5,))
    assert listed["cell_stem_0/1x1/weights"] == ("float32", (1, 1, 3, 8))
    assert listed["empty/vector"] == ("float32", (0, 3))


def test_a_tf2_checkpoint_with_its_string_object_graph():
    expected = _expected()
    got = read_tf_checkpoint(DATA / "object_based", verify_crc=True)
    assert np.array_equal(
        got["kernel/.ATTRIBUTES/VARIABLE_VALUE"], expected["cell_stem_0/1x1/weights"]
    )
    assert got["step/.ATTRIBUTES/VARIABLE_VALUE"].item() == 7
    graph = got["_CHECKPOINTABLE_OBJECT_GRAPH"].item()
    assert isinstance(graph, bytes) and b"kernel" in graph  # a serialized protobuf naming it
    only = read_tf_checkpoint(DATA / "object_based", names=["step/.ATTRIBUTES/VARIABLE_VALUE"])
    assert list(only) == ["step/.ATTRIBUTES/VARIABLE_VALUE"]
    with pytest.raises(WeightsError, match="no tensor named"):
        read_tf_checkpoint(DATA / "object_based", names=["nope"])


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "ckpt"
    shutil.copytree(DATA / "name_based", dst)
    return dst / "model.ckpt"


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_corrupt_files_are_refused_with_the_reason(tmp_path, monkeypatch):
    prefix = _copy(tmp_path)
    data = prefix.with_name("model.ckpt.data-00000-of-00001")
    entries = {e.name: e for e in tfcheckpoint._header_and_entries(prefix)[1]}
    target = entries["final_layer/FC/biases"]
    _flip(data, target.offset + 3)
    with pytest.raises(WeightsError, match="final_layer/FC/biases: its bytes fail their CRC"):
        read_tf_checkpoint(prefix)
    # tensors over the limit are not checked by default (the download's sha256 covers them)
    monkeypatch.setattr(tfcheckpoint, "CRC_LIMIT", 0)
    assert read_tf_checkpoint(prefix)["final_layer/FC/biases"].shape == (11,)
    with pytest.raises(WeightsError, match="fail their CRC"):
        read_tf_checkpoint(prefix, verify_crc=True)

    index = prefix.with_name("model.ckpt.index")
    _flip(index, 100)
    with pytest.raises(WeightsError, match="checksum does not match"):
        read_tf_checkpoint(prefix)
    index.write_bytes(index.read_bytes()[:-1])
    with pytest.raises(WeightsError, match="not a TensorFlow checkpoint index"):
        read_tf_checkpoint(prefix)


def test_missing_and_truncated_shards(tmp_path):
    prefix = _copy(tmp_path)
    data = prefix.with_name("model.ckpt.data-00000-of-00001")
    data.write_bytes(data.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="truncated"):
        read_tf_checkpoint(prefix)
    data.unlink()
    with pytest.raises(WeightsError, match="no such file"):
        read_tf_checkpoint(prefix)
    with pytest.raises(WeightsError, match="no such file"):
        read_tf_checkpoint(tmp_path / "nothing" / "model.ckpt")
    # TensorFlow writes absolute paths into `checkpoint`: a moved folder still reads
    moved = _copy(tmp_path / "moved").parent
    (moved / "checkpoint").write_text('model_checkpoint_path: "/elsewhere/gone/model.ckpt"\n')
    assert len(read_tf_checkpoint(moved)) == 311
    (tmp_path / "two").mkdir()
    for name in ("a.index", "b.index"):
        (tmp_path / "two" / name).write_bytes(b"")
    with pytest.raises(WeightsError, match="2 checkpoints"):
        read_tf_checkpoint(tmp_path / "two")
