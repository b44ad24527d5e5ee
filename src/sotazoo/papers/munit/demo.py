"""MUNIT's browser demo: a picture's edges translated into a coloured digit, in the style of a
picked coloured digit (example-guided) and in a random style (a style code drawn from N(0, I)),
by `munit_mini` (the `stylize` widget, with its `latent`: a new random style on each click).

The exported graph is `EdgesToColour`: (content, style, z) -> (edges, guided, random), every image
(1, 3, 32, 32) in [-1, 1] (the widget pre-processes as `transforms` say: 32 px, mean = std = 0.5).
The content is any picture: the graph draws its edge map as domain A is drawn (`data.edge_map` of
its luminance), so a bundled sample, a held-out digit's silhouette, becomes exactly a domain-A
image, and the reader's photo an edge map of the same kind. `edges` is that map, `guided` the
translation with the style encoder's code of the style image, `random` the translation with `z`
(1, 8), which the widget draws with `seeded_normal` (mirrored in kit.mjs).

Samples: held-out digits (never trained on), their silhouettes as contents and, painted with the
held-out colours (`data.TEST_SEED`), as styles.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from sotazoo.papers.munit.data import TEST_SEED, coloured, digits, edge_map
from sotazoo.papers.munit.model import MINI

CONTENTS = (0, 1, 2, 3, 4)  # indices into the held-out digits
STYLES = (10, 11, 12, 13, 14)
LATENT_SEED = 0  # the random style the widget starts from
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's convert("L")


class EdgesToColour(nn.Module):
    """forward(content, style, z) -> (edges, guided, random); see the module docstring."""

    input_names = ("content", "style", "z")
    output_names = ("edges", "guided", "random")

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("luma", torch.tensor(LUMA).reshape(1, 3, 1, 1), persistent=False)

    def forward(self, content: torch.Tensor, style: torch.Tensor, z: torch.Tensor):
        grey = ((content + 1) / 2 * self.luma).sum(1, keepdim=True).clamp(0, 1)
        edges = edge_map(grey)
        code = self.model.gen_a.enc_content(edges)
        gen_b = self.model.gen_b
        guided = gen_b.decode(code, gen_b.enc_style(style))
        random = gen_b.decode(code, z[:, :, None, None])
        return edges, guided.clamp(-1, 1), random.clamp(-1, 1)


def export_module(model: nn.Module) -> nn.Module:
    return EdgesToColour(model).eval()


def _images() -> tuple[torch.Tensor, torch.Tensor]:
    """(content silhouettes (n, 3, H, W), styles (m, 3, H, W)), both in [-1, 1]."""
    ink, _ = digits("heldout")
    styles = coloured(ink[list(STYLES)], np.random.default_rng(TEST_SEED))
    contents = (2 * ink[list(CONTENTS)] - 1).expand(-1, 3, -1, -1)
    return contents, styles


def samples(out_dir: Path) -> list[dict]:
    """The content samples; the style images are written beside them (`spec_extra` lists them)."""
    from sotazoo.transforms import save_png

    contents, styles = _images()
    for i, s in zip(STYLES, styles, strict=True):
        save_png(((s + 1) / 2).numpy(), Path(out_dir) / f"style{i}.png")
    return [{"path": save_png(((x + 1) / 2).numpy(), Path(out_dir) / f"digit{i}.png")}
            for i, x in zip(CONTENTS, contents, strict=True)]  # fmt: skip


def spec_extra() -> dict:
    """The style images, the random style's latent, the outputs and their scaling."""
    return {
        "styles": [{"name": f"style{i}", "src": f"../samples/munit/style{i}.png"} for i in STYLES],
        "latent": {"name": "z", "shape": [MINI.style_dim], "seed": LATENT_SEED},
        "outputs": [
            {"name": "edges", "en": "its edges (domain A)", "zh": "它的边缘图（域 A）"},
            {"name": "guided", "en": "in the picked style", "zh": "所选图片的风格"},
            {"name": "random", "en": "in a random style", "zh": "随机风格"},
        ],
        "output": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
    }


def example_inputs() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The export's check inputs: each content with the first style and the first random code."""
    from sotazoo.transforms import seeded_normal

    contents, styles = _images()
    z = torch.from_numpy(seeded_normal(LATENT_SEED, MINI.style_dim))[None]
    return [(x[None], styles[:1], z) for x in contents]
