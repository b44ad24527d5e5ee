"""Training recipe for `nasnet_mini` on shapes-in-clutter: the browser demo's classifier.

    sotazoo train nasnet_mini --seed 0

Data: `sotazoo.data.make_shapes`, exactly SENet's recipe (`papers/senet/train.py`): 10,000
training images (seed 1), 2,000 held-out ones (seed 2, never trained on), the same normalisation
constants (`weights.MEAN`, `weights.STD`), so the two demo classifiers' accuracies compare.

Loop: the shared `sotazoo.train.fit` (SGD with Nesterov momentum, linear warm-up then cosine
decay, weight decay 5e-4 on weights only, random flips), with SENet's batch size and learning
rate. Cosine decay is also what the search's child networks trained with on CIFAR-10 (Section 4).
NASNet's own training details, where they apply at this scale:

- ScheduledDropPath (Section 4, A.5): on, with the CIFAR config's keep probability 0.6 for the
  last cell (`nasnet_cifar`, inherited by `nasnet_mini`). `fit` calls `on_step` after every
  optimiser step; the hook sets `model.set_drop_path_progress(step / total steps)`, so the drop
  rate grows linearly from 0 at the first step to its full value at the last.
- The auxiliary head (A.7): off. `fit` trains on one cross-entropy of `model(x)`; the aux loss
  (weight 0.4 on `forward_aux`'s second output) would need a loop of its own, which a recipe
  does not write. The released checkpoints carry no aux head either.
- Label smoothing, RMSProp and the weight average are details of the ImageNet recipe (A.7): not
  used here.

Budget: 30 epochs (4,710 steps), SENet's. The first weights, from 10 epochs (1,570 steps, 2,142 s
on the shared machine), got 75.35% of the held-out images right against seresnet_mini's 99.35%,
with the training loss still falling before the drop rate's last rise; 30 epochs run about 45
minutes on 2 idle cores (0.54 s a step measured late in that run). nasnet_mini has fewer parameters than seresnet_mini (230k against 266k) but costs about 10 times
more per step on a CPU: its separable 5x5 and 7x7 convolutions run at 32x32 (the CIFAR stem does
not downsample), and depthwise convolutions are slow there. Measured with `--budget 1` on one
thread of a loaded 2-core AMD EPYC: 187 s per epoch, where seresnet_mini took 19 s under the same
load; SENet's 30 epochs take 212 s on 2 idle cores, hence an estimate of 50-60 s per epoch here,
plus about a minute to generate the data and evaluate. The network trains in channels-last memory
format, in which oneDNN runs its depthwise convolutions about 1.8 times faster on a CPU (the same
arithmetic up to float rounding); the weights are stored in the usual layout. On a GPU the same
recipe runs unchanged (`--budget N` epochs for a longer schedule); the committed weights come
from the CPU run logged beside them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import torch

from sotazoo.data import SHAPE_CLASSES, make_shapes
from sotazoo.papers.nasnet.weights import MEAN, STD
from sotazoo.train import TrainConfig, evaluate, fit, seeded_model
from sotazoo.train.recipes import Recipe, Trained


@dataclass(frozen=True, kw_only=True)
class ShapesRecipe:
    n_train: int = 10_000  # the data of SENet's recipe, so the numbers compare
    n_val: int = 2_000
    train_seed: int = 1
    val_seed: int = 2
    drop_path_keep_prob: float = 0.6  # TF-Slim cifar_config, of the last cell at the end
    channels_last: bool = True  # speed only (CPU depthwise convolutions), same arithmetic
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=30, batch_size=64, lr=0.05, warmup_epochs=1)
    )


def normalise(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> the network's input."""
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def shapes_split(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = make_shapes(n, seed=seed)  # the default clutter and noise, as in SENet's recipe
    return normalise(torch.from_numpy(x)), torch.from_numpy(y)


def train_nasnet_mini(*, seed: int, budget: int | None, progress: bool) -> Trained:
    from tqdm.auto import tqdm

    r = ShapesRecipe()
    if budget:
        r = replace(r, train=replace(r.train, epochs=budget))
    x, y = shapes_split(r.n_train, r.train_seed)
    xv, yv = shapes_split(r.n_val, r.val_seed)
    model = seeded_model("nasnet_mini", seed, drop_path_keep_prob=r.drop_path_keep_prob)
    if r.channels_last:
        model = model.to(memory_format=torch.channels_last)
    total = r.train.epochs * -(-r.n_train // r.train.batch_size)
    done = 0

    with tqdm(total=total, desc="train nasnet_mini", disable=not progress) as bar:

        def after_step() -> None:  # ScheduledDropPath: the fraction of training done
            nonlocal done
            done += 1
            model.set_drop_path_progress(done / total)
            bar.update(1)

        log = fit(model, x, y, r.train, seed=seed, on_step=after_step)
    model = model.to(memory_format=torch.contiguous_format)
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
            "train_seconds": round(log["seconds"], 1),
        },
    )


RECIPES = {
    "nasnet_mini": Recipe(train_nasnet_mini, unit="epochs", default=ShapesRecipe().train.epochs)
}
