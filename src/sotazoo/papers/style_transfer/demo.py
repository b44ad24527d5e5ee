"""The style-transfer demo: the reader's image (or a 64 px crop of a held-out photograph) in the
style of a picked style image (bundled, or the reader's own), by two of the review's families side
by side, in the browser: AdaIN (`adain_mini`, any style) and Johnson et al.'s network
(`johnson_mini`, trained for one style, so the picked style does not change its output). Gatys et
al.'s optimisation needs gradients at run time and stays in Python (`method.gatys`).

The exported graph is `TwoFamilies`: (content, style) -> (AdaIN's image, Johnson's image), both
clamped to [0, 1]; the `stylize` widget feeds both images pre-processed as `transforms` says (64 px,
RGB in [0, 1]).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from sotazoo.papers.style_transfer.data import crops, random_style

SIZE = 64
CONTENT_CROPS = (("chelsea", 0), ("camera", 1), ("coins", 2))  # test photographs, a seed each
STYLE_SEEDS = (7, 80_001, 80_002, 80_005, 80_006)  # 7: Johnson's; the others seen by neither


class TwoFamilies(nn.Module):
    input_names = ("content", "style")
    output_names = ("adain", "johnson")

    def __init__(self, adain: nn.Module, johnson: nn.Module) -> None:
        super().__init__()
        self.adain, self.johnson = adain, johnson

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.adain(content, style).clamp(0, 1), self.johnson(content).clamp(0, 1)


def export_module(model: nn.Module) -> nn.Module:
    from sotazoo.registry import create_model

    return TwoFamilies(model, create_model("johnson_mini", weights="sotazoo", progress=False)).eval()


def _contents() -> list[tuple[str, torch.Tensor]]:
    return [(name, crops((name,), 1, SIZE, torch.Generator().manual_seed(seed), scale=(0.5, 0.8))[0])
            for name, seed in CONTENT_CROPS]  # fmt: skip


def samples(out_dir: Path) -> list[dict]:
    """The content samples; the style images are written beside them (`spec_extra` lists them)."""
    from sotazoo.transforms import save_png

    style_files(out_dir)
    return [{"path": save_png(x.numpy(), Path(out_dir) / f"{name}.png")} for name, x in _contents()]


def spec_extra() -> dict:
    """The style images (written beside the samples by `samples`' folder) and the two outputs."""
    return {"styles": [{"name": f"style{s}", "src": f"../samples/style_transfer/style{s}.png"} for s in STYLE_SEEDS],
            "outputs": [{"name": "adain", "en": "AdaIN (any style)", "zh": "AdaIN（任意风格）"},
                        {"name": "johnson", "en": "Johnson et al. (its one style)", "zh": "Johnson 等（只会一种风格）"}]}  # fmt: skip


def style_files(out_dir: Path) -> list[Path]:
    from sotazoo.transforms import save_png

    return [save_png(random_style(s, SIZE).numpy(), Path(out_dir) / f"style{s}.png") for s in STYLE_SEEDS]


def example_inputs() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The export's check inputs: each content sample with each of the first two styles."""
    styles = [random_style(s, SIZE)[None] for s in STYLE_SEEDS[:2]]
    return [(x[None], s) for _, x in _contents() for s in styles]
