"""The learned prior's demo: the page scores a photograph as clear or blurred with our classifier
(`deblur_prior_mini`, the reproduction's network trained longer), the f(I) of the paper's
energy. The blind solver needs back-propagation through the network at run time, which
onnxruntime-web does not do, so it stays in Python (`solver.deblur`).

The exported graph is `GrayScore`: the widget's RGB input turned to grayscale with scikit-image's
rgb2gray weights (as the classifier was trained), then the network's two logits (clear,
blurred), whose softmax is (1 - f, f). The samples are 128 px crops of held-out photographs,
clear and blurred by a camera-shake kernel, and the real motion-blurred photograph that ships
with scikit-image (`clock`), at its own resolution so that its blur is not shrunk away.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

SIZE = 128  # the widget's input side (the weights' transforms)
GRAY = (0.2125, 0.7154, 0.0721)  # skimage.color.rgb2gray
SAMPLE_SEED = 5
CROPS = (("astronaut", 60, 170), ("coffee", 120, 230))  # (photograph, top-left y, x)
CLOCK = (90, 140)  # top-left of the crop of scikit-image's motion-blurred clock


class GrayScore(nn.Module):
    """forward(RGB (B, 3, H, W) in [0, 1]) -> logits (B, 2): (clear, blurred)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("gray", torch.tensor(GRAY).reshape(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x * self.gray).sum(1, keepdim=True))


def _images() -> list[tuple[str, np.ndarray]]:
    """(name, (SIZE, SIZE) grayscale in [0, 1], 8-bit values) for every sample."""
    from skimage import data

    from sotazoo.papers.deblur_prior.blur import shake_kernel
    from sotazoo.papers.deblur_prior.repro import blurred_pair, gray

    rng = np.random.default_rng(SAMPLE_SEED)
    out = []
    for name, y, x in CROPS:
        k = shake_kernel(15, rng, length=11.0, anxiety=0.5)
        img = gray(name)[max(0, y - 7) : y + SIZE + 7, max(0, x - 7) : x + SIZE + 7]
        clear, blurred = blurred_pair(img, SIZE, k, 0.01, rng)
        out += [(f"{name}_clear", clear), (f"{name}_blurred", blurred)]
    clock = data.clock()[CLOCK[0] : CLOCK[0] + SIZE, CLOCK[1] : CLOCK[1] + SIZE] / 255.0
    out.append(("clock_real_motion_blur", clock))
    return [(n, np.round(np.clip(im, 0, 1) * 255) / 255) for n, im in out]


def samples(out_dir: Path) -> list[dict]:
    from sotazoo.transforms import save_png

    return [{"path": save_png(np.repeat(im[None], 3, 0), Path(out_dir) / f"{name}.png")}
            for name, im in _images()]  # fmt: skip


def export_module(model: nn.Module) -> GrayScore:
    """The module the site exports instead of the raw network (see `sotazoo.site.build`)."""
    return GrayScore(model)
