"""Weights: what a checkpoint is (metadata), where it lives (cache), and loading it safely.

- `Weights` describes one checkpoint, like torchvision's: URL, sha256, format, the converter from
  its layout to ours, and `meta` (parameter count, GFLOPs, metrics with their source, recipe,
  license, the preprocessing it expects).
- Files live in `$SOTAZOO_HOME/weights` (default `~/.cache/sotazoo/weights`). A download goes to a
  temporary file in that folder, is hashed while it arrives, and is renamed only when the hash
  matches; a cached file is hashed again at every load (cheap at our sizes, and it catches a
  file altered after download).
- Only safetensors or `torch.load(weights_only=True)`: no pickle ever runs code.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sotazoo.errors import WeightsError
from sotazoo.fileio import atomic_path, file_lock, remove_orphans

if TYPE_CHECKING:
    import torch

CHUNK = 1 << 20


@dataclass(frozen=True, kw_only=True)
class Part:
    """A further file that a checkpoint needs beside it (AdaIN's release: the decoder's file and
    the encoder's): fetched into the same folder, checked by its own sha256, and read by the
    paper's `convert.load`, which finds it by `filename` next to the checkpoint."""

    filename: str
    urls: tuple[str, ...]
    sha256: str


@dataclass(frozen=True, kw_only=True)
class Weights:
    """One checkpoint of one model.

    `sha256` is the full hex digest. A few third-party publishers give only the torch.hub-style
    prefix in the file name (e.g. `se_resnet101-7e38fcc6.pth`: 32 bits, which anyone can match
    with a forged file); an entry whose full digest is not known keeps that prefix for the
    record, and `fetch` refuses it, saying how to load the file by path instead.
    """

    model: str
    tag: str  # "official": converted author checkpoint (or its port); "sotazoo": trained by our
    # recipe; the name of a port (e.g. "kimhc6028") when there is no author release at all
    urls: tuple[str, ...] = ()
    packaged: str = ""  # path inside the sotazoo package of small weights that ship with it
    sha256: str
    filename: str
    format: Literal["safetensors", "pth", "darknet", "keras_h5", "tf_checkpoint", "pkl"]  # the
    # last four: read by the paper's convert.load (darknet .weights, Keras HDF5, TensorFlow's
    # .index + .data, a pickle of numpy arrays through a restricted unpickler)
    converter: str = ""  # "module:function" mapping the file's keys to ours; "" when identical
    num_params: int
    gflops: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    metrics_source: str = ""
    recipe: str = ""
    license: str = ""
    transforms: Mapping[str, Any] = field(default_factory=dict)
    notes: str = ""
    md5: str = ""  # the publisher's MD5 where it gives no sha256 (Keras applications): recorded,
    # but not trusted for a download (MD5 collisions are cheap), so `fetch` refuses such an entry
    parts: tuple[Part, ...] = ()  # further files the checkpoint is read with (`Part`)

    @property
    def name(self) -> str:
        return f"{self.model}.{self.tag}"

    @property
    def full_hash(self) -> bool:
        return is_full_digest(self.sha256)


def trained_here(
    paper: str,
    model: str,
    *,
    sha256: str,
    num_params: int,
    metrics: Mapping[str, float],
    measured_on: str,
    transforms: Mapping[str, Any],
    converter: str = "",
    notes: str = "",
) -> Weights:
    """The entry of small weights trained by our own recipe, `sotazoo train MODEL --seed 0`, that
    ship in `papers/<paper>/checkpoints/` beside the training log their metrics come from;
    `measured_on` says on what data (never trained on)."""
    filename = f"{model}.sotazoo.safetensors"
    folder = f"papers/{paper}/checkpoints"
    return Weights(
        model=model,
        tag="sotazoo",
        packaged=f"{folder}/{filename}",
        sha256=sha256,
        filename=filename,
        format="safetensors",
        converter=converter,
        num_params=num_params,
        metrics=metrics,
        metrics_source=f"{folder}/{model}.sotazoo.log.json: {measured_on}",
        recipe=f"sotazoo train {model} --seed 0 (papers/{paper}/train.py)",
        license="MIT",
        transforms=transforms,
        notes=notes,
    )


def home() -> Path:
    """The sotazoo cache folder: `$SOTAZOO_HOME`, else `~/.cache/sotazoo`."""
    return Path(os.environ.get("SOTAZOO_HOME") or Path.home() / ".cache" / "sotazoo")


def cache_path(w: Weights | Part) -> Path:
    """Where the file of `w` (a checkpoint, or one of its parts) lives in the cache."""
    return home() / "weights" / w.filename


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def is_full_digest(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text.lower())


def verify(path: Path, expected: str) -> str:
    """Hash `path` and compare with the full sha256 digest `expected`; return the digest."""
    if not is_full_digest(expected):
        raise WeightsError(
            f"cannot check {path} against {expected!r}: a sha256 pin must be the full 64-hex "
            "digest (a prefix is too short to tell a forged file from the published one)"
        )
    digest = sha256_file(path)
    if digest != expected.lower():
        raise WeightsError(
            f"{path} does not match its sha256: expected {expected}, got {digest}."
            " The file is corrupt or not the published one; delete it and fetch it again."
        )
    return digest


def download(url: str, dest: Path, expected_sha256: str, *, progress: bool = True) -> Path:
    """Fetch `url` into `dest` atomically: a temporary file beside it, hashed while it arrives,
    renamed into place only when the hash matches (`sotazoo.fileio.atomic_path`)."""
    from tqdm.auto import tqdm

    h = hashlib.sha256()
    with atomic_path(dest) as tmp:
        with urllib.request.urlopen(url, timeout=30) as r, open(tmp, "wb") as f:
            total = int(r.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress
            ) as bar:
                while chunk := r.read(CHUNK):
                    f.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
        if h.hexdigest() != expected_sha256.lower():
            raise WeightsError(
                f"download of {url} has sha256 {h.hexdigest()}, expected {expected_sha256}"
            )
    return dest


def fetch(w: Weights, *, progress: bool = True) -> Path:
    """The verified local file of `w`, downloading it into the cache when it is not there.

    One process downloads a given file at a time (a lock beside it); the others wait and then
    find it cached. The temporary files of downloads that were killed are removed here.
    """
    if not w.full_hash:
        given = (f"an MD5 ({w.md5}), which a forged file can match," if w.md5 and not w.sha256 else
                 f"the sha256 prefix {w.sha256} ({len(w.sha256) * 4} bits, too few to trust a "
                 "download)")  # fmt: skip
        raise WeightsError(
            f"sotazoo does not fetch {w.name}: its publisher gives only {given} and no full "
            f"digest is on record. Download {w.urls[0] if w.urls else w.filename} yourself, "
            f"check it as you see fit, and pass its path: create_model({w.model!r}, "
            f"weights='path/to/{w.filename}')"
        )
    if w.packaged:
        from importlib import resources

        path = Path(str(resources.files("sotazoo") / w.packaged))
        if not path.is_file():
            raise WeightsError(f"the packaged weights {w.name} are missing: expected {path}")
        verify(path, w.sha256)
        return path
    for part in w.parts:  # beside the checkpoint, where the paper's loader looks for them
        _fetch_file(w.name, part, progress=progress)
    return _fetch_file(w.name, w, progress=progress)


def _fetch_file(name: str, f: Weights | Part, *, progress: bool) -> Path:
    """The verified cache file of `f` (of the weights `name`), downloaded when it is missing."""
    path, filename, urls, sha256 = cache_path(f), f.filename, f.urls, f.sha256
    with file_lock(home() / "locks" / f"{filename}.lock", what=f"the download of {name}"):
        remove_orphans(path, older_than_s=0)  # we hold the lock: no live writer owns them
        if path.is_file():
            verify(path, sha256)
            return path
        errors = []
        for url in urls:
            try:
                return download(url, path, sha256, progress=progress)
            except (urllib.error.URLError, OSError, TimeoutError) as e:
                errors.append(f"{url}: {e}")
    raise WeightsError(
        f"could not download {filename} of the weights {name} ({'; '.join(errors)}).\n"
        f"Without network access, download {urls[0]} elsewhere and place it at\n"
        f"  {path}\n(sha256 {sha256}), or pass the checkpoint's path as weights=..."
    )


def read_checkpoint(path: str | Path) -> Any:
    """What a checkpoint file holds, read safely: safetensors, or a torch file with
    `weights_only=True` (tensors in plain containers, as a paper's release may nest them)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"no weight file at {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd: Any = load_file(str(path), device="cpu")
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # every reader error means the same thing to the user
        raise WeightsError(
            f"cannot read {path} as {'safetensors' if path.suffix == '.safetensors' else 'a torch'}"
            f" checkpoint: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        ) from e
    return sd


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint safely (`read_checkpoint`) as a state dict.

    Common wrappers (`{"state_dict": ...}`, `{"model": ...}`, BasicSR's `{"params": ...}`,
    DataParallel's `module.`) are unwrapped.
    """
    import torch

    sd = read_checkpoint(path)
    # "params"/"params_ema": BasicSR's wrappers (its re-packed EDSR checkpoints, for one).
    for key in ("state_dict", "model", "state_dict_ema", "model_ema", "params_ema", "params"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
            break
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"{path} does not hold a state dict of tensors")
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def _loses_information(value: torch.Tensor, dtype: torch.dtype) -> bool:
    """Whether copying `value` into a tensor of `dtype` changes what it means: integers where
    the model keeps real numbers (a corrupt or foreign file, not weights: casting would load
    it silently), real numbers into integers, or integers out of the target's range. Floats of
    another precision (half, bfloat16, float64) are weights all the same and are cast, as
    `load_state_dict` does."""
    import torch

    if value.is_floating_point() or value.is_complex():
        return not (dtype.is_floating_point or dtype.is_complex)
    if dtype.is_floating_point or dtype.is_complex:
        return True
    if dtype == torch.bool:
        return value.dtype != torch.bool
    if value.numel() == 0:
        return False
    info = torch.iinfo(dtype)
    return bool(value.min() < info.min or value.max() > info.max)


def load_into(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Load with strict checks whose error names the keys and shapes that do not match."""
    import torch

    own = model.state_dict()
    # Checkpoints saved before PyTorch 0.4.1 have no BN step counters; they do not affect outputs.
    state_dict = dict(state_dict)
    for k in own:
        if k.endswith("num_batches_tracked") and k not in state_dict:
            state_dict[k] = own[k]
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state_dict.items()
        if k in own and v.shape != own[k].shape
    ]
    lossy = [
        f"{k}: file {v.dtype} into model {own[k].dtype}"
        for k, v in state_dict.items()
        if k in own and _loses_information(v, own[k].dtype)
    ]
    if missing or unexpected or shapes or lossy:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys, e.g. {missing[:5]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys, e.g. {unexpected[:5]}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches, e.g. {shapes[:3]}")
        if lossy:
            parts.append(f"{len(lossy)} tensors of another kind of number, e.g. {lossy[:3]}")
        raise WeightsError(f"{source} does not fit {type(model).__name__}: " + "; ".join(parts))
    bad = [
        k for k, v in state_dict.items() if v.is_floating_point() and not torch.isfinite(v).all()
    ]
    if bad:
        raise WeightsError(f"{source} holds NaN or infinite values in {bad[:5]}")
    model.load_state_dict(state_dict, strict=True)


def written_by_sotazoo(path: Path) -> bool:
    """Whether `path` is a safetensors file that `save_safetensors` wrote for one of our models
    (its metadata names the model): our key layout, to load as it is."""
    if Path(path).suffix != ".safetensors":
        return False
    try:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            return bool((f.metadata() or {}).get("model"))
    except Exception:  # noqa: BLE001 - unreadable here: read_state_dict says why
        return False


def save_safetensors(state_dict: Mapping[str, torch.Tensor], path: Path, **metadata: str) -> str:
    """Write a safetensors file atomically and return its sha256. `metadata` goes into the
    file's header; `model=NAME` marks it as ours (`written_by_sotazoo`): loaded by path, it is
    read in our key layout, never converted."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=dict(metadata) or None)
        _sort_header(tmp)
        digest = sha256_file(tmp)  # the bytes that are renamed into place
    return digest


def _sort_header(path: Path) -> None:
    """Rewrite a safetensors header with its keys sorted. The library writes the metadata from a
    hash map whose order changes from one process to the next, so the same tensors saved twice
    had different bytes and sha256s; sorted, equal weights give equal files. The header keeps its
    length (the same keys and values, compact JSON, padded with spaces as the format allows), so
    the tensors' offsets are untouched."""
    with open(path, "r+b") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
        if len(text) > n:  # cannot happen for compact JSON; leave the file as written
            return
        f.seek(8)
        f.write(text + b" " * (n - len(text)))
