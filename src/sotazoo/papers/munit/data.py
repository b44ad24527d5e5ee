"""Two synthetic domains for MUNIT at laptop scale: digit edge maps (A) and coloured digits (B).

Both domains are drawn from the same shapes, scikit-learn's bundled handwritten digits
(`sotazoo.data.digits`, resampled to 32x32, the input size of `munit_mini`), so that they share a
content space, as edges and shoes do in the paper's edges2shoes. A digit's silhouette m in
[0, 1] is its bilinearly upsampled ink sharpened by a ramp, m = clip((ink - 0.4) / 0.2, 0, 1)
(the upsampled 8x8 digits are blurred; the ramp gives them an outline a few pixels wide).
- domain A, "edges": the Sobel gradient magnitude of m, scaled per image so that its strongest
  edge is 1, times `EDGE_GAIN`, clipped to 1: e; drawn dark on white, 1 - 2e (edges2shoes'
  sketches are black lines on white), grey in all three channels;
- domain B, "coloured digits": the silhouette painted in a random bright colour over a random
  dark background, x = m * ink + (1 - m) * background, mapped to [-1, 1]. Ink: hue
  uniform, saturation U(0.5, 1), value U(0.7, 1); background: hue uniform, saturation U(0, 0.6),
  value U(0, 0.35) (HSV, as `colorsys` defines it). The colours are independent of the digit, so
  B given A is multimodal: one edge map has a whole 6-number family of right answers, which is
  what a style code is for; a deterministic translator can give only one of them.
Images are (N, 3, 32, 32) float32 in [-1, 1], the generators' tanh range.

Unpaired, as MUNIT trains: `Unpaired.batch()` draws the A images and the B images from two
independent permutations of the training digits (so an A image and the B image beside it are
almost never the same digit), and paints every B image afresh. Evaluation uses the 359 held-out
digits (`sotazoo.data.digits`' split, seed 0), never trained on, painted with `TEST_SEED`.
Everything is seeded (numpy PCG64 for the colours, torch generators for the order): the same
seed gives the same batches on every machine.
"""

from __future__ import annotations

import colorsys

import numpy as np
import torch
import torch.nn.functional as F

SIZE = 32  # munit_mini's input size
EDGE_GAIN = 1.5  # an edge at 2/3 of the image's strongest is drawn fully dark
RAMP = (0.4, 0.2)  # silhouette = clip((ink - 0.4) / 0.2, 0, 1)
TEST_SEED = 99_991  # the held-out B colours: never a training seed
INK = {"s": (0.5, 1.0), "v": (0.7, 1.0)}  # HSV ranges (hue uniform in [0, 1))
BACKGROUND = {"s": (0.0, 0.6), "v": (0.0, 0.35)}


def digits(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """(silhouettes (N, 1, 32, 32) in [0, 1], labels (N,)) of a split of the digits."""
    from sotazoo.data.digits import load_digits

    x, y = load_digits(size=SIZE, split=split)
    lo, width = RAMP
    return ((x + 1) / 2 - lo).div(width).clamp(0, 1), y


def edge_map(ink: torch.Tensor) -> torch.Tensor:
    """Domain A: silhouettes (N, 1, H, W) in [0, 1] -> (N, 3, H, W) dark edges on white, [-1, 1].

    Sobel gradient magnitude (replicate padding), divided by each image's largest value, times
    EDGE_GAIN, clipped to [0, 1]: e; the image is 1 - 2e in every channel."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([kx, kx.T])[:, None]  # (2, 1, 3, 3): d/dx, d/dy
    g = F.conv2d(F.pad(ink, (1, 1, 1, 1), mode="replicate"), kernels)  # (N, 2, H, W)
    mag = g.square().sum(1, keepdim=True).sqrt()
    peak = mag.amax((2, 3), keepdim=True).clamp_min(1e-6)
    e = (EDGE_GAIN * mag / peak).clamp(0, 1)
    return (1 - 2 * e).expand(-1, 3, -1, -1).contiguous()


def _hsv(rng: np.random.Generator, n: int, ranges: dict) -> np.ndarray:
    h = rng.uniform(0.0, 1.0, n)
    s = rng.uniform(*ranges["s"], n)
    v = rng.uniform(*ranges["v"], n)
    return np.array([colorsys.hsv_to_rgb(*hsv) for hsv in zip(h, s, v, strict=True)])  # (n, 3)


def random_colours(n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(ink, background) RGB colours in [0, 1], each (n, 3): the hidden style of domain B."""
    ink = _hsv(rng, n, INK)
    bg = _hsv(rng, n, BACKGROUND)
    return torch.from_numpy(ink).float(), torch.from_numpy(bg).float()


def paint(ink: torch.Tensor, ink_rgb: torch.Tensor, bg_rgb: torch.Tensor) -> torch.Tensor:
    """Domain B: silhouettes (N, 1, H, W) and colours (N, 3) -> (N, 3, H, W) in [-1, 1]."""
    img = ink * ink_rgb[:, :, None, None] + (1 - ink) * bg_rgb[:, :, None, None]
    return (2 * img - 1).clamp(-1, 1)


def coloured(ink: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Domain B images of the digits `ink`, with fresh random colours from `rng`."""
    return paint(ink, *random_colours(len(ink), rng))


class Unpaired:
    """Unpaired training batches (x_a, x_b) of the training digits, from one seed."""

    def __init__(self, seed: int, batch_size: int) -> None:
        self.ink, _ = digits("train")
        self.edges = edge_map(self.ink)
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        self.order = torch.Generator().manual_seed(seed)

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self.ink)
        ia = torch.randperm(n, generator=self.order)[: self.batch_size]
        ib = torch.randperm(n, generator=self.order)[: self.batch_size]
        return self.edges[ia], coloured(self.ink[ib], self.rng)


def heldout(colourings: int = 1) -> dict[str, torch.Tensor]:
    """The evaluation sets, the same for every seed: "a", the held-out digits' edge maps (N, 3,
    32, 32); "b", the same digits painted `colourings` times each with TEST_SEED's colours,
    (colourings * N, 3, 32, 32), colouring-major (image k * N + i is digit i); "labels" (N,)."""
    ink, labels = digits("heldout")
    rng = np.random.default_rng(TEST_SEED)
    b = torch.cat([coloured(ink, rng) for _ in range(colourings)])
    return {"a": edge_map(ink), "b": b, "labels": labels}
