"""DPIG's browser demo: two generated persons, A and B, and what stage I (`dpig_mini`) renders
when one of the three factors (foreground, background, pose) comes from B and the others from A
(the `recombine` widget).

The exported graph is `Recombine`: it holds the inputs of the demo's persons (`make_persons`
with `PERSONS_SEED`, a seed no run trains or tests on; the samples are their images, in the same
order) and takes `pick` (K, 3) int64, row k naming the person whose foreground code, background
code and pose heatmaps image k is made of. It encodes every person (the foreground crops included:
`crop_and_resize`, a GridSample in the graph), gathers the picked codes and heatmaps, and decodes
them: images (K, 3, 64, 32) in [-1, 1]. The widget asks for A, B and the three single swaps.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from torch import nn

from sotazoo.papers.disentangled_person.persons import make_persons

NUM_PERSONS = 6
PERSONS_SEED = 31_337  # training uses seed 0 (and the repro its own), the held-out set 99_999
FACTORS = (
    {"name": "foreground", "en": "clothes and body", "zh": "衣着与身体"},
    {"name": "background", "en": "background", "zh": "背景"},
    {"name": "pose", "en": "pose", "zh": "姿态"},
)  # the columns of `pick`


class Recombine(nn.Module):
    """forward(pick (K, 3) int64) -> images (K, 3, H, W); see the module docstring."""

    input_names = ("pick",)
    output_names = ("image",)

    def __init__(self, model: nn.Module, persons) -> None:
        super().__init__()
        self.model = model
        for name, t in zip(("images", "heatmaps", "fg_mask", "boxes", "box_vis"), persons.inputs(),
                           strict=True):  # fmt: skip
            self.register_buffer(name, t.to(torch.float32).clone(), persistent=False)

    def forward(self, pick: torch.Tensor) -> torch.Tensor:
        fg, bg = self.model.encoder(self.images, self.fg_mask, self.boxes, self.box_vis)
        codes = torch.cat([fg[pick[:, 0]], bg[pick[:, 1]]], 1)
        return self.model.decoder(codes, self.heatmaps[pick[:, 2]]).clamp(-1, 1)


@functools.cache
def persons():
    """The demo's persons, drawn once per process (the export, the samples and the spec read
    them); `Recombine` keeps copies, so nothing downstream changes them."""
    return make_persons(NUM_PERSONS, seed=PERSONS_SEED)


def export_module(model: nn.Module) -> nn.Module:
    return Recombine(model, persons()).eval()


def pick_rows(a: int, b: int) -> list[list[int]]:
    """The rows the widget asks for: A, B, then A with each factor of B in turn."""
    rows = [[a, a, a], [b, b, b]]
    for i in range(len(FACTORS)):
        rows.append([b if j == i else a for j in range(len(FACTORS))])
    return rows


def samples(out_dir: Path) -> list[dict]:
    """The persons' images, in the graph's order."""
    from sotazoo.transforms import save_png

    return [{"path": save_png(((x + 1) / 2).numpy(), Path(out_dir) / f"person{i}.png")}
            for i, x in enumerate(persons().images)]  # fmt: skip


def spec_extra() -> dict:
    """The factors (the columns of `pick`), the image size and the output's scaling."""
    p = persons()
    return {
        "factors": list(FACTORS),
        "image_size": list(p.images.shape[2:]),
        "output": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
    }


def example_inputs() -> list[tuple[torch.Tensor]]:
    """The export's check inputs: the rows for A = 0 with B = each other person."""
    return [(torch.tensor(pick_rows(0, b)),) for b in range(1, NUM_PERSONS)]
