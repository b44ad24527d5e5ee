"""SAGAN's browser demo: noise and a digit class -> a 16x16 digit, and where its pixels look.

The site's `generate` widget feeds seeded noise (`sotazoo.transforms.seeded_normal`, mirrored in
kit.mjs) and a class id to the exported graph. The graph is `ImageAndAttention`: the
generator with its spectral norm baked in (`model.bake_spectral_norm`: W / σ from the stored
vectors, so the browser runs plain convolutions), returning the image and the attention map of
G's self-attention block, shape (1, N_query, N_key): query i = h * 8 + w over the 8x8 feature
map, key j = h' * 4 + w' over the 2x2-max-pooled 4x4 map (the official code's pooling; see
model.py). With a second output and the spec's `attention` grids, the widget shows, for a
clicked pixel, the row of its query cell as a heat map over the image, as the paper's Fig. 1
and Fig. 5 draw a query's attention.

A feature-map cell is not a pixel: at 16x16 each query cell covers a 2x2 block of output pixels
and each key cell a 4x4 block; the widget maps a clicked pixel to the query cell that contains
it and paints each key's weight over the pixels it covers.

Samples: seeds and classes chosen here (seeds below 1000; training draws its noise from its own
seeded generator, never from `seeded_normal`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from sotazoo.papers.sagan.model import MINI, Generator, bake_spectral_norm

SAMPLES = ((0, 0), (1, 3), (2, 5), (7, 7), (42, 8))  # (seed, digit)


class ImageAndAttention(nn.Module):
    """forward(z (B, Z), label (B,)) -> (images (B, C, H, W), attention (B, N_query, N_key))."""

    output_names = ("image", "attention")

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        if generator.attention is None:
            raise ValueError("this generator was built without attention: nothing to show")
        self.generator = bake_spectral_norm(generator)

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.generator.forward_with_attention(z, label)

    def grids(self) -> dict[str, list[int]]:
        """The attention map's query grid (the attended feature map) and key grid (pooled)."""
        cfg = self.generator.cfg
        q = cfg.g_attention_at
        return {"query_grid": [q, q], "key_grid": [q // 2, q // 2],
                "image_size": [cfg.image_size, cfg.image_size]}  # fmt: skip


def export_module(model: Generator) -> ImageAndAttention:
    """The module the site exports instead of the raw generator (see `sotazoo.site.build`)."""
    return ImageAndAttention(model)


def sample_inputs(z_dim: int = MINI["z_dim"]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The widget's inputs for each sample: (noise (1, Z) from `seeded_normal`, label (1,))."""
    from sotazoo.transforms import seeded_normal

    return [(torch.from_numpy(seeded_normal(s, z_dim))[None], torch.tensor([c]))
            for s, c in SAMPLES]  # fmt: skip


def example_inputs() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """What the site build traces and checks the export with: the samples' inputs."""
    return sample_inputs()


def samples(out_dir: Path) -> list[Path]:
    """No bundled files: the samples are seeds (`spec_extra`)."""
    return []


def spec_extra() -> dict:
    """The widget's noise shape, sample seeds (with their classes), output scaling and the
    attention view's grids."""
    from sotazoo.registry import get_weights

    t = get_weights("sagan_mini", "sotazoo").transforms
    q, size = MINI["g_attention_at"], MINI["image_size"]
    return {
        "latent_shape": [MINI["z_dim"]],
        "samples": [{"name": f"seed {s}, digit {c}", "seed": s, "label": c} for s, c in SAMPLES],
        "output": {"mean": list(t["output_mean"]), "std": list(t["output_std"])},
        "attention": {
            "query_grid": [q, q],
            "key_grid": [q // 2, q // 2],
            "image_size": [size, size],
        },
    }


def attention_heat(attention_row: np.ndarray, key_grid, image_size) -> np.ndarray:
    """The heat map the widget paints for one query: each key's weight over the pixels its
    pooled cell covers, divided by the row's maximum; (H, W) in [0, 1]."""
    kh, kw = key_grid
    h, w = image_size
    grid = np.asarray(attention_row, dtype=np.float64).reshape(kh, kw)
    heat = np.repeat(np.repeat(grid, h // kh, axis=0), w // kw, axis=1)
    return heat / grid.max()
