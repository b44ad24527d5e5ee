"""The low-light demo: the reader picks a dark raw exposure and an amplification ratio, and
`sid_mini` turns it into an sRGB image in the browser.

What the page feeds the network is raw-like data, not a photograph: a Bayer (RGGB) mosaic, in
digital numbers above the black level, of a 128x128 scene (`SIZE`), and the ratio (x100, x250,
x300, the paper's). The exported graph is `RawToSRGB`: the official code's packing (`raw.
pack_bayer`: four half-resolution channels R, G, B, G, scaled by white - black), the
amplification (`raw.amplify`: times the ratio, capped at 300, clipped at 1), the network, and the
clip to [0, 1] of the official test.

The samples are the reproduction's kind of test exposure (`raw.simulate_short_exposure`,
Poisson-Gaussian noise) of crops of the three held-out photographs, written as greyscale PNGs
whose 8-bit values are the mosaic minus the black level: at the darkest sample's x100 a value of
159 already amplifies to 1, so the 8 bits lose nothing the network sees. A photograph of the
reader's own is darkened in the page by `darken`, the simulator with its shot noise drawn as a
Gaussian of the same variance from the seeded generator that JavaScript and Python share
(`sotazoo.transforms.seeded_normal`), so the test can recompute the page's input exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from sotazoo.errors import InputError
from sotazoo.papers.sid import raw

SIZE = 128  # the mosaic's side (the reproduction's crop); the packed input is 64
RATIOS = (100, 250, 300)
GAIN, READ_NOISE = 4.0, 6.0  # the simulator's defaults (`raw.simulate_short_exposure`)
NOISE_SEED = 0  # the page's noise for a photograph of the reader's
SAMPLE_SEED = 7  # the samples' Poisson draws
# (photograph, top-left y, x, ratio): the astronaut's face, the coffee cup, the cat's eyes
CROPS = (("astronaut", 60, 170, 100), ("coffee", 90, 200, 250), ("chelsea", 40, 150, 300))
# Packing order: `pixel_unshuffle` gives the 2x2 sites as (0,0), (0,1), (1,0), (1,1); the
# official order is (0,0), (0,1), (1,1), (1,0) (`raw.BAYER_SITES`).
_UNSHUFFLED = ((0, 0), (0, 1), (1, 0), (1, 1))
PACK_ORDER = tuple(_UNSHUFFLED.index(s) for s in raw.BAYER_SITES)


class RawToSRGB(nn.Module):
    """forward(mosaic (B, 1, H, W): digital numbers above black, ratio (B,)) -> sRGB (B, 3, H, W)
    in [0, 1]."""

    input_names = ("mosaic", "ratio")
    output_names = ("image",)

    def __init__(self, model: nn.Module, black: int = raw.SONY["black"],
                 white: int = raw.SONY["white"]) -> None:  # fmt: skip
        super().__init__()
        self.model, self.range = model, float(white - black)

    def forward(self, mosaic: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
        packed = F.pixel_unshuffle(mosaic.clamp(min=0) / self.range, 2)[:, list(PACK_ORDER)]
        gain = ratio.clamp(max=raw.MAX_RATIO).reshape(-1, 1, 1, 1)
        return self.model((packed * gain).clamp(max=1.0)).clamp(0, 1)


def darken(srgb: np.ndarray, ratio: float, seed: int = NOISE_SEED) -> np.ndarray:
    """The page's short exposure of a (3, H, W) sRGB image in [0, 1]: (H, W) float32 digital
    numbers above black, whole numbers in [0, 255]. `raw.simulate_short_exposure`'s steps, the
    shot and read noise drawn together as N(0, signal x gain + read_noise^2) from
    `seeded_normal(seed)` in row-major order; rounded half up, as JavaScript's Math.round."""
    from sotazoo.transforms import seeded_normal

    srgb = np.asarray(srgb, dtype=np.float64)
    if srgb.ndim != 3 or srgb.shape[0] != 3 or srgb.shape[1] % 2 or srgb.shape[2] % 2:
        raise InputError(f"expected a (3, H, W) image with even sides, got {srgb.shape}")
    if not ratio > 0:
        raise InputError(f"the amplification ratio must be positive, got {ratio}")
    linear = raw.srgb_to_linear(srgb.transpose(1, 2, 0)) / np.asarray(raw.WHITE_BALANCE)
    signal = raw.mosaic_rggb(linear) * (raw.SONY["white"] - raw.SONY["black"]) / ratio
    z = seeded_normal(seed, signal.size).reshape(signal.shape).astype(np.float64)
    noisy = signal + np.sqrt(signal * GAIN + READ_NOISE**2) * z
    return np.clip(np.floor(noisy + 0.5), 0, 255).astype(np.float32)


def _mosaics() -> list[tuple[str, int, np.ndarray]]:
    from sotazoo.data.sr_photos import photograph

    rng = np.random.default_rng(SAMPLE_SEED)
    out = []
    for name, y, x, ratio in CROPS:
        crop = photograph(name)[y : y + SIZE, x : x + SIZE]
        if crop.shape[:2] != (SIZE, SIZE):
            raise ValueError(f"{name} has no {SIZE}x{SIZE} crop at ({y}, {x})")
        dn = raw.simulate_short_exposure(crop, ratio, rng).astype(np.int32) - raw.SONY["black"]
        out.append((name, ratio, np.clip(dn, 0, 255).astype(np.uint8)))
    return out


def samples(out_dir: Path) -> list[dict]:
    from PIL import Image

    from sotazoo.fileio import atomic_path

    out = []
    for name, ratio, mosaic in _mosaics():
        path = Path(out_dir) / f"{name}_x{ratio}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            Image.fromarray(mosaic, "L").save(tmp, format="PNG")
        out.append({"path": path, "photo": name, "ratio": ratio})
    return out


def example_inputs() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The export's check inputs: each sample's mosaic at its ratio, and the first at x1000 (the
    cap at 300 in the graph)."""
    pairs = [(torch.from_numpy(m.astype(np.float32))[None, None], torch.tensor([float(r)]))
             for _, r, m in _mosaics()]  # fmt: skip
    return [*pairs, (pairs[0][0], torch.tensor([1000.0]))]


def spec_extra() -> dict:
    """What the widget needs to darken a photograph of the reader's as `darken` does."""
    return {"raw": {"black": raw.SONY["black"], "white": raw.SONY["white"],
                    "white_balance": list(raw.WHITE_BALANCE), "gain": GAIN,
                    "read_noise": READ_NOISE, "ratios": list(RATIOS), "seed": NOISE_SEED}}  # fmt: skip


def export_module(model: nn.Module) -> RawToSRGB:
    """The module the site exports instead of the raw network (see `sotazoo.site.build`)."""
    return RawToSRGB(model)
