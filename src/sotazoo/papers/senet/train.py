"""Training recipe for `seresnet_mini` on shapes-in-clutter: the browser demo's classifier.

    sotazoo train seresnet_mini --seed 0

Data: `sotazoo.data.make_shapes` — 10,000 training images (seed 1), 2,000 held-out ones (seed 2,
never trained on), both generated the same way as in the reproduction. Inputs are normalised
with the fixed constants below, which the demo must apply too. On a GPU the same recipe runs
unchanged (`--budget N` epochs for a longer schedule); the committed weights came from the CPU run logged
beside them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from sotazoo.data import SHAPE_CLASSES, make_shapes
from sotazoo.papers.senet.weights import MEAN, STD
from sotazoo.train import TrainConfig, evaluate, fit
from sotazoo.train.recipes import Recipe, Trained


@dataclass(frozen=True, kw_only=True)
class ShapesRecipe:
    n_train: int = 10_000
    n_val: int = 2_000
    train_seed: int = 1
    val_seed: int = 2
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=30, batch_size=64, lr=0.05, warmup_epochs=2)
    )


def normalise(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> the network's input."""
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def shapes_split(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = make_shapes(n, seed=seed)  # the default clutter and noise, as in the repro
    return normalise(torch.from_numpy(x)), torch.from_numpy(y)


def train_seresnet_mini(*, seed: int, budget: int | None, progress: bool) -> Trained:
    from dataclasses import replace

    from tqdm.auto import tqdm

    from sotazoo.registry import create_model

    r = ShapesRecipe()
    if budget:
        r = replace(r, train=replace(r.train, epochs=budget))
    x, y = shapes_split(r.n_train, r.train_seed)
    xv, yv = shapes_split(r.n_val, r.val_seed)
    torch.manual_seed(seed)
    model = create_model("seresnet_mini")
    steps = r.train.epochs * -(-r.n_train // r.train.batch_size)
    with tqdm(total=steps, desc="train seresnet_mini", disable=not progress) as bar:
        log = fit(model, x, y, r.train, seed=seed, on_step=lambda: bar.update(1))
    acc = evaluate(model, xv, yv)
    return Trained(
        model=model.eval(),
        metrics={"shapes_val_top1": round(100 * acc, 2)},
        log={
            "recipe": asdict(r),
            "classes": list(SHAPE_CLASSES),
            "mean": MEAN,
            "std": STD,
            "epoch_loss": log["epoch_loss"],
        },
    )


RECIPES = {
    "seresnet_mini": Recipe(train_seresnet_mini, unit="epochs", default=ShapesRecipe().train.epochs)
}
