"""TEMPLATE — replace this docstring with the paper's provenance header.

Paper: authors, "Title", venue year, arXiv id. Official code: URL (and the commit read).

What is the paper's: the layers and hyper-parameters as the paper and its official code give them,
with the table or file each comes from. What is ours: every knob added for ablations or for the
laptop-scale reproduction, and every departure from the paper (also listed under `deviations` in
the card).

How to start a paper from this folder (the paper contract, `sotazoo.papers._contract`):
1. copy `papers/_template/` to `papers/<id>/`, `<id>` as in `catalog.toml`;
2. write the card (`card.toml`): our own summaries in English and Chinese, key ideas, the paper's
   claims as data, and one `[[models]]` entry per variant, each naming its builder below;
3. write the model here: a frozen keyword-only config dataclass, the modules, one keyword-only
   builder per variant, the shared input checks (`sotazoo.nn.checks`), `tiny_overrides`;
4. add the optional modules the contract lists as the paper needs them (`weights.py`,
   `convert.py`, `reference.py`, `demo.py`, `figure.py`, `repro.py`, `train.py`, `method.py`);
5. `pytest tests/test_contract.py tests/test_registry.py` checks the folder against the contract
   and every model for forward, backward, export and parameter count.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sotazoo.nn.checks import check_config, check_image_batch, ensure_finite_output, model_dtype


@dataclass(frozen=True, kw_only=True)
class TemplateConfig:
    """Hyper-parameters of the network (a comment at every departure from the paper)."""

    width: int = 16  # channels of the hidden convolution
    num_classes: int = 10
    in_chans: int = 3

    def __post_init__(self) -> None:
        check_config(self)  # every int field a positive integer, named when it is not


class TemplateNet(nn.Module):
    """A convolution, ReLU, global average pooling and a linear classifier."""

    def __init__(self, cfg: TemplateConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.conv = nn.Conv2d(cfg.in_chans, cfg.width, 3, padding=1)
        self.fc = nn.Linear(cfg.width, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, self.cfg.in_chans, dtype=model_dtype(self))
        h = torch.relu(self.conv(x))  # (B, width, H, W)
        y = self.fc(h.mean((2, 3)))  # (B, num_classes)
        ensure_finite_output(y, {"input": x}, self)
        return y


def template_mini(**overrides) -> TemplateNet:
    """The template's one variant (keyword-only: `create_model(name, **overrides)`)."""
    return TemplateNet(TemplateConfig(**overrides))


def tiny_overrides(name: str) -> dict:
    """Config overrides that make `name` small for the registry-wide tests."""
    return {"width": 8}
