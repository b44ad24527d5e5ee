"""Draw a grid of images from a generator: `sotazoo sample <model>`.

Sample i is drawn from the noise of seed `seeds[i]`, `sotazoo.transforms.seeded_normal` — the
noise the site's `generate` widget feeds for the same seed, so the command line and the browser
draw the same picture. A class-conditional generator (an int64 `label` input on its card) gets
`label` for every sample, or, by default, the classes in turn (i mod K: one class per column of a
K-wide grid). The output is mapped to [0, 1] with the weights' `output_mean` / `output_std`
(x * std + mean; both generators of the zoo end in [-1, 1], the default) and clipped, as the
widget shows it. The PNG is written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sotazoo.errors import InputError, SotazooError
from sotazoo.fileio import atomic_path


def parse_seeds(text: str) -> list[int]:
    """`"0-99"`, `"3"` or `"1,5,9-12"` -> the seeds, in that order."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise InputError(f"seeds {text!r}: expected N, A-B or a comma list of them (0-99)")
        a, b = int(lo), int(hi) if dash else int(lo)
        if b < a:
            raise InputError(f"seeds {text!r}: the range {a}-{b} is empty")
        seeds.extend(range(a, b + 1))
    if len(seeds) > 10_000:
        raise InputError(f"seeds {text!r}: {len(seeds)} samples; at most 10,000 per grid")
    return seeds


def _label_input(name: str):
    from sotazoo.registry import model_entry

    _, entry = model_entry(name)
    if entry.task != "generation":
        raise SotazooError(
            f"{name} is a {entry.task} model; `sample` draws from generators "
            "(`sotazoo list --models --task generation`)"
        )
    extra = entry.extra_inputs
    if len(extra) > 1 or (extra and extra[0].dtype != "int64"):
        raise SotazooError(f"{name} takes {[e.name for e in extra]}; `sample` feeds noise + label")
    return entry, (extra[0] if extra else None)


@torch.no_grad()
def sample_images(
    model: torch.nn.Module, name: str, seeds: list[int], *, label: int | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(images (N, C, H, W) as the generator outputs them, labels (N,) or None)."""
    from sotazoo.train.gan import generate
    from sotazoo.transforms import seeded_normal

    entry, cond = _label_input(name)
    z = torch.from_numpy(np.stack([seeded_normal(s, entry.input_size[0]) for s in seeds]))
    labels = None
    if cond is None and label is not None:
        raise InputError(f"{name} is unconditional: it takes no --label")
    if cond is not None:
        if label is not None and not 0 <= label < cond.high:
            raise InputError(f"--label {label}: {name} has classes 0..{cond.high - 1}")
        labels = (
            torch.full((len(seeds),), label) if label is not None
            else torch.arange(len(seeds)) % cond.high
        )  # fmt: skip
    return generate(model, z, labels), labels


def write_grid(
    images: torch.Tensor,
    path: str | Path,
    *,
    mean: tuple[float, ...] = (0.5, 0.5, 0.5),
    std: tuple[float, ...] = (0.5, 0.5, 0.5),
    nrow: int = 10,
    pad: int = 1,
) -> Path:
    """A PNG grid of (N, 1 or 3, H, W) generator outputs, mapped by x * std + mean to [0, 1]
    and clipped, `nrow` per row between `pad` dark pixels; written atomically."""
    from sotazoo.transforms import save_png

    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise InputError(f"expected (N, 1 or 3, H, W) images, got {tuple(images.shape)}")
    if nrow < 1:
        raise InputError(f"nrow must be at least 1, got {nrow}")
    c = images.shape[1]
    m = torch.tensor(mean[:c]).reshape(1, c, 1, 1)
    s = torch.tensor(std[:c]).reshape(1, c, 1, 1)
    x = (images.detach().float().cpu() * s + m).clamp(0, 1).expand(-1, 3, -1, -1).numpy()
    n, _, h, w = x.shape
    rows, cols = -(-n // nrow), min(n, nrow)
    grid = np.zeros((3, rows * (h + pad) + pad, cols * (w + pad) + pad), dtype=np.float32)
    for i in range(n):
        r, q = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        grid[:, top : top + h, left : left + w] = x[i]
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"{path}: the grid is written as PNG; name it *.png")
    with atomic_path(path) as tmp:
        save_png(grid, tmp)
    return path


def sample_grid(
    name: str,
    out: str | Path,
    *,
    weights: str | None = "sotazoo",
    seeds: list[int] | None = None,
    label: int | None = None,
    nrow: int | None = None,
) -> dict:
    """`name`'s images for `seeds` (default 0..99) as a grid PNG at `out`; returns what was
    drawn (the file, seeds, labels, the weights' sha256 when a tag was loaded)."""
    from sotazoo.registry import create_model, resolve_weights
    from sotazoo.weights import Weights

    entry, cond = _label_input(name)
    seeds = list(range(100)) if seeds is None else seeds
    if not seeds:
        raise InputError("no seeds to draw")
    model = create_model(name, weights=weights)
    mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    sha = None
    w = None if weights is None else resolve_weights(name, weights)
    if isinstance(w, Weights):  # a tag: its transforms apply
        mean = tuple(w.transforms.get("output_mean", mean))
        std = tuple(w.transforms.get("output_std", std))
        sha = w.sha256
    images, labels = sample_images(model, name, seeds, label=label)
    if nrow is None:  # one class per column when the classes cycle and fit a row
        nrow = cond.high if cond is not None and label is None and cond.high <= 20 else 10
    path = write_grid(images, out, mean=mean, std=std, nrow=nrow)
    return {
        "path": str(path),
        "model": name,
        "weights": weights,
        "sha256": sha,
        "seeds": seeds,
        "labels": None if labels is None else labels.tolist(),
        "image_shape": list(images.shape[1:]),
    }
