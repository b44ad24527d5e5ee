"""Super-resolution data from the photographs that ship with scikit-image: no download.

The natural photographs bundled in `skimage.data` (the ones that load without the optional
`pooch` downloads) are split once and for all:

- held out, only ever evaluated on: `astronaut`, `coffee`, `chelsea`;
- training: `rocket`, `immunohistochemistry`, `hubble_deep_field`, `retina`, both views of
  `stereo_motorcycle`, and `camera` (grey, repeated into three channels).

Low-resolution images follow the benchmark protocol of the SR papers (`sotazoo.resize`): crop
the HR image to a multiple of the scale, MATLAB-style bicubic downscaling with antialiasing,
round to uint8. Training samples are random aligned (LR, HR) patch pairs with the paper's
augmentation, random flips and 90-degree rotations (EDSR §4.2).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

TEST_NAMES = ("astronaut", "coffee", "chelsea")
TRAIN_NAMES = (
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "motorcycle_left",
    "motorcycle_right",
    "camera",
)


# Other pictures bundled with scikit-image that papers read (textures, coins, a colour wheel);
# not in the super-resolution split.
OTHER_NAMES = ("coins", "brick", "grass", "gravel", "colorwheel")


@functools.cache
def photograph(name: str) -> np.ndarray:
    """One picture bundled with scikit-image as an (H, W, 3) uint8 array (read-only): a grey one
    in three equal channels; `motorcycle_left` / `motorcycle_right` are the views of
    `stereo_motorcycle`. The names: the split's (`TRAIN_NAMES`, `TEST_NAMES`) and `OTHER_NAMES`."""
    from skimage import data

    known = TRAIN_NAMES + TEST_NAMES + OTHER_NAMES
    if name.startswith("motorcycle_"):
        left, right, _ = data.stereo_motorcycle()
        img = left if name.endswith("left") else right
    elif name in known:
        img = getattr(data, name)()
    else:
        raise KeyError(f"unknown photograph {name!r}; known: {known}")
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = np.ascontiguousarray(img[..., :3], dtype=np.uint8)
    img.setflags(write=False)
    return img


@functools.cache
def pair(name: str, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(LR, HR) uint8 arrays of one photograph: HR cropped to a multiple of `scale`, LR by the
    benchmark's bicubic degradation."""
    from sotazoo.resize import bicubic_degrade, modcrop

    hr = modcrop(photograph(name), scale)
    lr = bicubic_degrade(hr, scale)
    hr.setflags(write=False)
    lr.setflags(write=False)
    return lr, hr


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float() / 255


class PatchSampler:
    """Random aligned (LR, HR) patches of the training photographs, seeded.

    Each draw picks a photograph with probability proportional to its area, a random LR window of
    `lr_patch` x `lr_patch` and the HR window `scale` times larger at the same place, then one of
    the 8 flips/rotations.
    """

    def __init__(
        self, scale: int, lr_patch: int, *, names: tuple[str, ...] = TRAIN_NAMES, seed: int = 0
    ) -> None:
        overlap = set(names) & set(TEST_NAMES)
        if overlap:
            raise ValueError(f"held-out photographs {sorted(overlap)} must not be trained on")
        self.scale, self.lr_patch = scale, lr_patch
        self.pairs = [pair(n, scale) for n in names]
        areas = np.array([lr.shape[0] * lr.shape[1] for lr, _ in self.pairs], dtype=np.float64)
        self.p = areas / areas.sum()
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(LR (n, 3, p, p), HR (n, 3, sp, sp)) float32 in [0, 1]."""
        s, p = self.scale, self.lr_patch
        lrs, hrs = [], []
        for k in self.rng.choice(len(self.pairs), size=n, p=self.p):
            lr, hr = self.pairs[k]
            y = int(self.rng.integers(0, lr.shape[0] - p + 1))
            x = int(self.rng.integers(0, lr.shape[1] - p + 1))
            a = lr[y : y + p, x : x + p]
            b = hr[y * s : (y + p) * s, x * s : (x + p) * s]
            t = int(self.rng.integers(0, 8))  # bit 0: flip left-right, bits 1-2: quarter turns
            if t & 1:
                a, b = a[:, ::-1], b[:, ::-1]
            a, b = np.rot90(a, t >> 1), np.rot90(b, t >> 1)
            lrs.append(to_tensor(a))
            hrs.append(to_tensor(b))
        return torch.stack(lrs), torch.stack(hrs)


def held_out_pairs(
    scale: int, *, crop: int | None = None
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, LR, HR) of the held-out photographs; `crop` keeps the central crop x crop LR
    pixels (and the HR pixels under them), for quick runs."""
    out = []
    for name in TEST_NAMES:
        lr, hr = pair(name, scale)
        if crop is not None:
            y, x = (lr.shape[0] - crop) // 2, (lr.shape[1] - crop) // 2
            lr = lr[y : y + crop, x : x + crop]
            hr = hr[y * scale : (y + crop) * scale, x * scale : (x + crop) * scale]
        out.append((name, lr, hr))
    return out


# (photograph, LR top-left (y, x) at x4) of the demos' sample crops: faces, texture, fur
DEMO_CROPS = (("astronaut", 20, 44), ("astronaut", 60, 60), ("coffee", 30, 70), ("chelsea", 8, 44))


def save_demo_crops(out_dir, scale: int, size: int) -> list[dict]:
    """Write the SR demos' samples: `size` x `size` LR crops of the held-out photographs (made
    by the benchmark degradation at `scale`; the same HR region at every scale), as PNGs."""
    from pathlib import Path

    from sotazoo.transforms import save_png

    out = []
    for i, (name, y, x) in enumerate(DEMO_CROPS):
        lr, _ = pair(name, scale)
        y, x = y * 4 // scale, x * 4 // scale
        crop = lr[y : y + size, x : x + size]
        if crop.shape[:2] != (size, size):
            raise ValueError(f"{name} has no {size}x{size} LR crop at ({y}, {x}) for x{scale}")
        path = save_png(crop.transpose(2, 0, 1) / 255.0, Path(out_dir) / f"{name}{i}.png")
        out.append({"path": path, "photo": name})
    return out
