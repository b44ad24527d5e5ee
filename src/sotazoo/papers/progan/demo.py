"""ProGAN's browser demo: noise -> a 16x16 digit, drawn by the EMA generator we trained.

The site's `generate` widget feeds the noise of a seed the user picks (`seeded_normal`, mirrored
in kit.mjs as `seededNormal`) to the exported `progan_mini`: the moving average of the
generator's weights (App. A.1) after growing to 16x16, at alpha = 1, so the graph has no fade-in
left and only the final toRGB. The equalised learning rate's He constant (§4.1) is a constant
of the graph, multiplied into the weights when it runs. The generator is unconditional: no
class input. Its output is not clipped (as in the official code); the widget maps [-1, 1] to
[0, 255] (output mean 0.5, std 0.5) and clips there, and shows the grey image in all three
channels.

Samples: a few seeds chosen here; training draws its latents from its own torch generators,
never from `seeded_normal`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sotazoo.papers.progan.model import MINI

SAMPLE_SEEDS = (0, 1, 7, 42, 2018)


def sample_inputs() -> list[tuple[torch.Tensor]]:
    """The widget's input for each sample seed: noise (1, latent) from `seeded_normal`."""
    from sotazoo.transforms import seeded_normal

    return [(torch.from_numpy(seeded_normal(s, MINI["latent_dim"]))[None],) for s in SAMPLE_SEEDS]


def samples(out_dir: Path) -> list[Path]:
    """No bundled files: the samples are seeds (`spec_extra`)."""
    return []


def spec_extra() -> dict:
    """The noise shape, the sample seeds and the output's scaling, for the `generate` widget."""
    from sotazoo.registry import get_weights

    t = get_weights("progan_mini", "sotazoo").transforms
    return {
        "latent_shape": [MINI["latent_dim"]],
        "samples": [{"name": f"seed {s}", "seed": s} for s in SAMPLE_SEEDS],
        "output": {"mean": list(t["output_mean"]), "std": list(t["output_std"])},
    }
