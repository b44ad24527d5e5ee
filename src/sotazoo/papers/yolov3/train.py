"""Recipe for the demo weights: `sotazoo train yolov3_mini`.

`yolov3_mini` (4 classes, 128 x 128) trained from scratch with YOLOv3's loss (`method.yolo_loss`:
one anchor per object, logistic objectness and classes, the paper's ignore threshold 0.5) on the
stream of seeded synthetic shape scenes (`sotazoo.train.detection`), 4,000 steps of batch 16 with
Adam (darknet: SGD with burn-in). The weights are stored in half precision (4.5 MB instead of 9);
COCO AP on 500 held-out scenes is logged for the stored weights (and for float32 before rounding).
"""

from __future__ import annotations

from sotazoo.train.detection import DetRecipe, train_recipe
from sotazoo.train.recipes import Recipe


def train_mini(*, seed: int, budget: int | None, progress: bool):
    return train_recipe("yolov3_mini", seed=seed, budget=budget, progress=progress,
                        loss_kw={"ignore_thresh": 0.5}, float16=True)  # fmt: skip


RECIPES = {"yolov3_mini": Recipe(train_mini, unit="thousand steps", default=DetRecipe.ksteps)}
