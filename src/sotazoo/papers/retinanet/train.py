"""Recipe for the demo weights: `sotazoo train retinanet_mini`.

`retinanet_mini` (4 classes, 128 x 128) trained from scratch with the paper's loss — focal loss
γ = 2, α = 0.25, smooth L1 on the boxes, both normalised by the positive anchors (§4.1) — on the
stream of seeded synthetic shape scenes (`sotazoo.train.detection`), 4,000 steps of batch 16 with
Adam (the paper: SGD for 90k steps on COCO). COCO AP on 500 held-out scenes is logged.
"""

from __future__ import annotations

from sotazoo.train.detection import DetRecipe, train_recipe
from sotazoo.train.recipes import Recipe


def train_mini(*, seed: int, budget: int | None, progress: bool):
    return train_recipe("retinanet_mini", seed=seed, budget=budget, progress=progress,
                        loss_kw={"alpha": 0.25, "gamma": 2.0})  # fmt: skip


RECIPES = {"retinanet_mini": Recipe(train_mini, unit="thousand steps", default=DetRecipe.ksteps)}
