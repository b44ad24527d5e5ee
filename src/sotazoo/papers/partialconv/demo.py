"""The inpainting demo: the reader paints holes on a 64x64 crop of a held-out photograph (never
trained on) or on their own image, and `pconv_mini` fills them in the browser.

The exported graph is `Composite`: the network and the paper's I_comp, so the page shows the
known pixels as they were and the network's output only inside the holes. The `inpaint` widget
feeds the image with its holes zeroed and the mask (1, 1, 64, 64), 1 = known.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from sotazoo.papers.partialconv.model import PConvUNet, composite

SIZE = 64  # the side of pconv_mini's input (the card's input_size)
# (photograph, top-left y, x) of the samples: the astronaut's face, the coffee cup, the cat's eyes
CROPS = (("astronaut", 90, 190), ("coffee", 120, 230), ("chelsea", 70, 170))


class Composite(nn.Module):
    """forward(image (B, 3, H, W), mask (B, 1, H, W)) -> I_comp: the image where the mask is 1,
    the network's output where it is 0."""

    output_names = ("image",)

    def __init__(self, model: PConvUNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return composite(image, self.model(image, mask), mask).clamp(0, 1)


def _crops() -> list[tuple[str, np.ndarray]]:
    from sotazoo.data.sr_photos import photograph

    out = []
    for name, y, x in CROPS:
        crop = photograph(name)[y : y + SIZE, x : x + SIZE]
        if crop.shape[:2] != (SIZE, SIZE):
            raise ValueError(f"{name} has no {SIZE}x{SIZE} crop at ({y}, {x})")
        out.append((name, crop))
    return out


def samples(out_dir: Path) -> list[dict]:
    from sotazoo.transforms import save_png

    return [{"path": save_png(crop.transpose(2, 0, 1) / 255.0, Path(out_dir) / f"{name}.png"),
             "photo": name} for name, crop in _crops()]  # fmt: skip


def example_inputs() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The export's check inputs: each sample with the widget's first hole (the centred square
    of `sotazoo.transforms.hole_mask`), the holes zeroed as the widget sends them."""
    from sotazoo.transforms import hole_mask

    mask = torch.from_numpy(hole_mask(SIZE))[None, None]
    return [(torch.from_numpy(crop.transpose(2, 0, 1) / 255.0).float()[None] * mask, mask)
            for _, crop in _crops()]  # fmt: skip


def export_module(model: PConvUNet) -> Composite:
    """The module the site exports instead of the raw network (see `sotazoo.site.build`)."""
    return Composite(model)
