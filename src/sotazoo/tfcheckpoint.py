"""Read TensorFlow checkpoints without TensorFlow.

A TensorFlow checkpoint (format V2, written by `tf.train.Saver` / `tf.train.Checkpoint` since
TF 1.0: the official releases of NASNet, DeepLab, SID and PRNet) is a *tensor bundle*: a prefix
`P` with

- `P.index`: a sorted string table (LevelDB's SSTable layout: data blocks of prefix-compressed
  key/value entries with restart points, an index block, a 48-byte footer ending in the magic
  number). The empty key holds a `BundleHeaderProto` (shard count, byte order); every other key
  is a tensor's name and holds its `BundleEntryProto` (dtype, shape, shard, offset, size, masked
  CRC-32C of the bytes);
- `P.data-0000S-of-0000N`: the tensors' raw bytes, shard by shard.

The two protobuf messages are decoded here by their field numbers (tensorflow/core/protobuf/
tensor_bundle.proto, tensor_shape.proto, types.proto), so nothing beyond numpy is needed. Only
what a released checkpoint holds is supported: whole (not partitioned) tensors of numeric,
boolean or string dtype, uncompressed index blocks (`BundleWriter` writes no compression).

`read_tf_checkpoint(path)` returns `{name: numpy array}`; `path` is the prefix, its `.index`
file, or a folder with a `checkpoint` file naming the latest prefix. Loading releases reuses this
(`sotazoo.weights` `format="tf_checkpoint"`): the file's sha256 is checked on download, and each
tensor's CRC-32C here (pure Python, so by default only tensors under `CRC_LIMIT` bytes: it
catches a reader that reads the wrong bytes; the sha256 covers the rest).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sotazoo.errors import WeightsError

TABLE_MAGIC = 0xDB4775248B80FB57  # tensorflow/core/lib/io/format.h, kTableMagicNumber
FOOTER_LEN = 48  # two block handles padded to 40 bytes, then the 8-byte magic
CRC_LIMIT = 1 << 20  # bytes: tensors up to this size have their CRC-32C checked by default

# types.proto DataType -> numpy dtype (little-endian); bfloat16 is widened to float32 on read.
DTYPES = {
    1: np.dtype("<f4"), 2: np.dtype("<f8"), 3: np.dtype("<i4"), 4: np.dtype("u1"),
    5: np.dtype("<i2"), 6: np.dtype("i1"), 8: np.dtype("<c8"), 9: np.dtype("<i8"),
    10: np.dtype("?"), 17: np.dtype("<u2"), 18: np.dtype("<c16"), 19: np.dtype("<f2"),
    22: np.dtype("<u4"), 23: np.dtype("<u8"),
}  # fmt: skip
DT_STRING, DT_BFLOAT16 = 7, 14
DTYPE_NAMES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8",
               7: "string", 8: "complex64", 9: "int64", 10: "bool", 14: "bfloat16",
               17: "uint16", 18: "complex128", 19: "float16", 22: "uint32", 23: "uint64"}  # fmt: skip


# ---------------------------------------------------------------- CRC-32C (Castagnoli)


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C of `data` (the polynomial TensorFlow and LevelDB use), continuing from `crc`."""
    crc ^= 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The masked form TensorFlow stores (crc32c.h `Mask`): rotated right by 15, plus a constant."""
    return _mask(crc32c(data))


# ---------------------------------------------------------------- protobuf wire format


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise WeightsError("truncated varint in a TensorFlow checkpoint index")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WeightsError("malformed varint in a TensorFlow checkpoint index")


def _fields(buf: bytes) -> Iterable[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message: ints for varint and fixed fields, bytes for
    length-delimited ones."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            (value,), pos = struct.unpack_from("<Q", buf, pos), pos + 8
        elif wire == 5:
            (value,), pos = struct.unpack_from("<I", buf, pos), pos + 4
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + n], pos + n
        else:
            raise WeightsError(f"unsupported protobuf wire type {wire} in a checkpoint index")
        yield number, value


@dataclass(frozen=True)
class Entry:
    """One tensor of the bundle (a `BundleEntryProto`)."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc32c: int | None
    sliced: bool

    @property
    def dtype_name(self) -> str:
        return DTYPE_NAMES.get(self.dtype, f"DataType {self.dtype}")


def _shape(buf: bytes) -> tuple[int, ...]:
    dims = []
    for number, value in _fields(buf):
        if number == 2:  # repeated Dim {int64 size = 1; string name = 2}
            size = next((v for n, v in _fields(value) if n == 1), 0)
            dims.append(size - (1 << 64) if size >= 1 << 63 else size)  # int64 is two's complement
        elif number == 3 and value:
            raise WeightsError("a tensor of unknown rank in a checkpoint")
    return tuple(dims)


def _entry(name: str, buf: bytes) -> Entry:
    f = {"dtype": 0, "shape": (), "shard": 0, "offset": 0, "size": 0, "crc": None, "sliced": False}
    for number, value in _fields(buf):
        if number == 1:
            f["dtype"] = value
        elif number == 2:
            f["shape"] = _shape(value)
        elif number == 3:
            f["shard"] = value
        elif number == 4:
            f["offset"] = value
        elif number == 5:
            f["size"] = value
        elif number == 6:
            f["crc"] = value
        elif number == 7:
            f["sliced"] = True
    return Entry(name, f["dtype"], f["shape"], f["shard"], f["offset"], f["size"], f["crc"],
                 f["sliced"])  # fmt: skip


# ---------------------------------------------------------------- the sorted string table


def _block(data: bytes, offset: int, size: int, where: Path) -> bytes:
    end = offset + size
    if end + 5 > len(data):
        raise WeightsError(f"{where}: a block runs past the end of the file (truncated?)")
    contents, kind = data[offset:end], data[end]
    (stored,) = struct.unpack_from("<I", data, end + 1)
    if kind != 0:
        raise WeightsError(f"{where}: compressed index blocks (type {kind}) are not supported; "
                           "TensorFlow's BundleWriter writes them uncompressed")  # fmt: skip
    crc = masked_crc32c(contents + bytes([kind]))
    if crc != stored:
        raise WeightsError(f"{where}: a block's checksum does not match (a corrupt index)")
    return contents


def _entries(block: bytes, where: Path) -> Iterable[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise WeightsError(f"{where}: a block too short to hold its restart count")
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * restarts
    if end < 0:
        raise WeightsError(f"{where}: a block's restart array runs past its start")
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        if shared > len(key):
            raise WeightsError(f"{where}: a key shares more bytes than the previous key has")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + length]
        pos += length


def _table(index: Path) -> list[tuple[bytes, bytes]]:
    data = index.read_bytes()
    if len(data) < FOOTER_LEN:
        raise WeightsError(f"{index}: too short to be a TensorFlow checkpoint index")
    footer = data[-FOOTER_LEN:]
    (magic,) = struct.unpack_from("<Q", footer, FOOTER_LEN - 8)
    if magic != TABLE_MAGIC:
        raise WeightsError(f"{index}: not a TensorFlow checkpoint index (no table magic number); "
                           "a V1 checkpoint (one file, no .index) is not supported")  # fmt: skip
    _, pos = _varint(footer, 0)  # the metaindex handle: empty in bundles
    _, pos = _varint(footer, pos)
    offset, pos = _varint(footer, pos)
    size, _ = _varint(footer, pos)
    rows = []
    for _, handle in _entries(_block(data, offset, size, index), index):
        block_offset, p = _varint(handle, 0)
        block_size, _ = _varint(handle, p)
        rows.extend(_entries(_block(data, block_offset, block_size, index), index))
    return rows


# ---------------------------------------------------------------- the bundle


def checkpoint_prefix(path: str | Path) -> Path:
    """The bundle prefix `path` names: a prefix, its `.index` or `.data-*` file, or a folder with
    a `checkpoint` file (its `model_checkpoint_path`) or with exactly one `.index` file."""
    path = Path(path).expanduser()
    if path.is_dir():
        state = path / "checkpoint"
        if state.is_file():
            m = re.search(r'^model_checkpoint_path:\s*"(.*)"', state.read_text(), re.MULTILINE)
            if m:
                named = Path(m.group(1))
                if not named.is_absolute():
                    return path / named
                # TensorFlow records absolute paths: a checkpoint moved since is in this folder
                moved = path / named.name
                here = named.with_name(named.name + ".index").is_file()
                return (
                    named if here or not moved.with_name(moved.name + ".index").is_file() else moved
                )
        found = sorted(path.glob("*.index"))
        if len(found) == 1:
            return found[0].with_suffix("")
        raise WeightsError(f"{path}: {len(found)} checkpoints (.index files) and no `checkpoint` "
                           "file naming one; pass the prefix")  # fmt: skip
    if path.suffix == ".index":
        return path.with_suffix("")
    m = re.match(r"(.*)\.data-\d+-of-\d+$", path.name)
    if m:
        return path.with_name(m.group(1))
    return path


def _header_and_entries(prefix: Path) -> tuple[int, list[Entry]]:
    index = prefix.with_name(prefix.name + ".index")
    if not index.is_file():
        raise WeightsError(f"{index}: no such file (a TensorFlow checkpoint is a .index file and "
                           ".data-* shards sharing one prefix)")  # fmt: skip
    shards, entries = 1, []
    for key, value in _table(index):
        if key == b"":  # BundleHeaderProto {int32 num_shards = 1; Endianness endianness = 2}
            header = dict(_fields(value))
            shards = int(header.get(1, 1))
            if header.get(2, 0) != 0:
                raise WeightsError(f"{index}: a big-endian checkpoint is not supported")
        else:
            entries.append(_entry(key.decode("utf-8"), value))
    return shards, entries


def tf_checkpoint_variables(path: str | Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{name: (dtype name, shape)} of every tensor in the checkpoint, reading the index only."""
    _, entries = _header_and_entries(checkpoint_prefix(path))
    return {e.name: (e.dtype_name, e.shape) for e in entries}


def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _string_lengths(raw: bytes, n: int) -> tuple[list[int], int]:
    pos, lengths = 0, []
    for _ in range(n):
        length, pos = _varint(raw, pos)
        lengths.append(length)
    return lengths, pos


def _string_crcs(raw: bytes, n: int) -> set[int]:
    """The masked CRC-32C a string tensor's entry may hold (tensor_bundle.cc `WriteStringTensor`):
    over each length as a fixed-width little-endian integer, then the 4-byte checksum of the
    lengths as stored, then the strings' bytes. TensorFlow 2.21 takes the lengths as 4 bytes
    (checked on the committed fixture); 8-byte lengths are admitted too for other versions."""
    lengths, pos = _string_lengths(raw, n)
    out = set()
    for fmt in ("<I", "<Q"):
        if fmt == "<I" and any(v >= 1 << 32 for v in lengths):
            continue
        crc = crc32c(b"".join(struct.pack(fmt, v) for v in lengths))
        out.add(_mask(crc32c(raw[pos:], crc)))  # the stored length checksum and the strings
    return out


def _strings(raw: bytes, n: int, name: str) -> np.ndarray:
    """A string tensor's bytes: n varint64 lengths, their masked CRC (4 bytes), the strings."""
    lengths, pos = _string_lengths(raw, n)
    pos += 4
    out = np.empty(n, dtype=object)
    for i, length in enumerate(lengths):
        out[i] = raw[pos : pos + length]
        pos += length
    if pos != len(raw):
        raise WeightsError(f"{name}: a string tensor's lengths do not add up to its size")
    return out


def _decode(e: Entry, raw: bytes) -> np.ndarray:
    n = int(np.prod(e.shape, dtype=np.int64))
    if e.dtype == DT_STRING:
        return _strings(raw, n, e.name).reshape(e.shape)
    if e.dtype == DT_BFLOAT16:
        half = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return half.view(np.float32).reshape(e.shape)
    if e.dtype not in DTYPES:
        raise WeightsError(f"{e.name}: unsupported tensor dtype {e.dtype_name}")
    dtype = DTYPES[e.dtype]
    if len(raw) != n * dtype.itemsize:
        raise WeightsError(f"{e.name}: {len(raw)} bytes for a {e.dtype_name} tensor of shape "
                           f"{e.shape} ({n * dtype.itemsize} expected)")  # fmt: skip
    return np.frombuffer(raw, dtype=dtype).reshape(e.shape).copy()


def read_tf_checkpoint(
    path: str | Path, *, names: Iterable[str] | None = None, verify_crc: bool | None = None
) -> dict[str, np.ndarray]:
    """The tensors of a TensorFlow checkpoint, {name: numpy array}, in the index's (sorted)
    order; `names` selects some. `verify_crc`: True checks every tensor's CRC-32C, False none,
    None (default) those up to `CRC_LIMIT` bytes."""
    prefix = checkpoint_prefix(path)
    shards, entries = _header_and_entries(prefix)
    wanted = None if names is None else set(names)
    if wanted is not None:
        missing = wanted - {e.name for e in entries}
        if missing:
            raise WeightsError(f"{prefix}: no tensor named {sorted(missing)[:5]} in the checkpoint")
    out: dict[str, np.ndarray] = {}
    files: dict[int, object] = {}
    try:
        for e in entries:
            if wanted is not None and e.name not in wanted:
                continue
            if e.sliced:
                raise WeightsError(f"{e.name}: a partitioned (sliced) variable is not supported")
            if not 0 <= e.shard < shards:
                raise WeightsError(f"{e.name}: shard {e.shard} of a {shards}-shard checkpoint")
            if e.shard not in files:
                data = prefix.with_name(f"{prefix.name}.data-{e.shard:05d}-of-{shards:05d}")
                if not data.is_file():
                    raise WeightsError(f"{data}: no such file (a shard of {prefix.name})")
                files[e.shard] = data.open("rb")
            f = files[e.shard]
            f.seek(e.offset)
            raw = f.read(e.size)
            if len(raw) != e.size:
                raise WeightsError(f"{e.name}: its shard ends before its bytes (truncated file?)")
            check = verify_crc if verify_crc is not None else e.size <= CRC_LIMIT
            if not check or e.crc32c is None:
                ok = True
            elif e.dtype == DT_STRING:
                ok = e.crc32c in _string_crcs(raw, int(np.prod(e.shape, dtype=np.int64)))
            else:
                ok = masked_crc32c(raw) == e.crc32c
            if not ok:
                raise WeightsError(f"{e.name}: its bytes fail their CRC-32C (a corrupt shard)")
            out[e.name] = _decode(e, raw)
    finally:
        for f in files.values():
            f.close()
    return out
