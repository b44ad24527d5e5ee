"""NASNet's search at laptop scale (Section 3, Figure 6): a recurrent controller proposes a
Normal and a Reduction cell, a child network built from them and trained for a few seconds
scores the pair, and REINFORCE moves the controller towards the pairs that scored well; random
search with the same number of child trainings is the control.

The paper's controller makes, for each of a cell's B = 5 blocks, five decisions: a first and a
second input among the cell's states (h0, h1 and the earlier blocks), an op for each, and how to
combine them; the Normal cell's 25 decisions come first, then the Reduction cell's. It sampled
20,000 child networks on 500 GPUs (PPO); Figure 6 plots the best of its samples against the best
of as many random ones, RL ahead by over 1 point of CIFAR-10 accuracy.

Ours (`sotazoo repro nasnet --long`; curves, no verdict; the controller and its REINFORCE loop
are `sotazoo.controller`'s, shared with AutoAugment's search):
- the space is the full run's random cells' (`repro.random_cell`): inputs as the paper's, ops
  among the 6 our layers implement (`repro.OPS`), combined by addition (NASNet-A's every block
  adds; our cells have no concatenating block), the cell's output the blocks no later block
  reads. So 4 decisions a block, 40 a pair; each kind of decision (the inputs of block b, with
  2 + b options, and the ops) has one softmax, shared by the two cells;
- the child is `nasnet_mini`'s scaffold (N = 1) at 8 first-stage filters, trained 10 epochs on
  100 digits at 16 px (10 per class, from the training split), its reward the accuracy (%) on
  300 other training digits (the held-out split is never read); seconds, not the paper's 20
  epochs of CIFAR-10. Parameters are not matched between children, as in the paper's search.
Every child of one seed sees the same batches and draws its initial weights from the seed, so
rewards differ by the cells.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from sotazoo.controller import Space
from sotazoo.papers.nasnet.repro import BLOCKS, OPS, build, concat_of

Cells = tuple[dict, dict]  # (Normal, Reduction) in `model.NORMAL`'s format
# Kinds of decision: 0-4 the inputs of block 1-5 (2 + b states to choose from), 5 the ops.
OP_KIND = BLOCKS
SPACE = Space(tuple(2 + b for b in range(BLOCKS)) + (len(OPS),),
              tuple(k for b in range(BLOCKS) for k in (b, b, OP_KIND, OP_KIND)) * 2)  # fmt: skip
CHILD = {"filters": 8, "per_class": 10, "n_val": 300, "epochs": 10, "image_size": 16}
QUICK_CHILD = CHILD | {"per_class": 2, "n_val": 20, "epochs": 1}
LONG_SAMPLES = 40  # cell pairs scored per search: 80 child trainings per seed


def decode(actions: Sequence[int]) -> Cells:
    """The 40 decisions (per block: first input, second input, first op, second op; the Normal
    cell's blocks, then the Reduction cell's) as a (Normal, Reduction) pair."""
    if len(actions) != len(SPACE):
        raise ValueError(f"a pair of cells is {len(SPACE)} decisions, got {len(actions)}")
    cells = []
    for c in range(2):
        a = actions[4 * BLOCKS * c : 4 * BLOCKS * (c + 1)]
        blocks = tuple((OPS[a[4 * b + 2]], a[4 * b], OPS[a[4 * b + 3]], a[4 * b + 1])
                       for b in range(BLOCKS))  # fmt: skip
        cells.append({"blocks": blocks, "concat": concat_of(blocks)})
    return cells[0], cells[1]


def to_json(cells: Cells) -> dict:
    return {name: {"blocks": [list(b) for b in cell["blocks"]], "concat": list(cell["concat"])}
            for name, cell in zip(("normal", "reduction"), cells, strict=True)}  # fmt: skip


def digits_reward(
    *, filters: int, per_class: int, n_val: int, epochs: int, image_size: int, seed: int = 0
) -> Callable[[Cells], float]:
    """A reward: validation accuracy (%) of the child built from the cells, trained on
    `per_class` digits of each class and scored on `n_val` other digits of the training split."""
    import numpy as np

    from sotazoo.data.digits import load_digits
    from sotazoo.papers.nasnet.repro import ReproConfig
    from sotazoo.train import TrainConfig, evaluate, fit

    x, y = load_digits(size=image_size, split="train")
    rng = np.random.default_rng(seed)
    perm = [rng.permutation(np.flatnonzero(y.numpy() == c)) for c in range(10)]
    train = torch.from_numpy(np.sort(np.concatenate([p[:per_class] for p in perm])))
    val_pool = np.concatenate([p[per_class:] for p in perm])
    val = torch.from_numpy(np.sort(rng.permutation(val_pool)[:n_val]))
    mean, std = x[train].mean(), x[train].std()
    xs, ys = (x[train] - mean) / std, y[train]
    xv, yv = (x[val] - mean) / std, y[val]
    rc = ReproConfig()  # the full run's optimiser: TF-Slim CIFAR's lr, batch, decay
    train_cfg = TrainConfig(epochs=epochs, batch_size=min(rc.batch_size, len(xs)), lr=rc.lr,
                            weight_decay=rc.weight_decay, warmup_epochs=0, flips=False)  # fmt: skip

    def reward(cells: Cells) -> float:
        torch.manual_seed(seed)
        model = build(cells, filters=filters).to(memory_format=torch.channels_last)
        fit(model, xs, ys, train_cfg, seed=seed)
        return 100.0 * evaluate(model, xv, yv, batch_size=100)

    return reward


def make_reward(*, seed: int, quick: bool = False) -> Callable[[Cells], float]:
    """The long run's reward (`sotazoo.controller`'s contract)."""
    return digits_reward(seed=seed, **(QUICK_CHILD if quick else CHILD))


def long_run(*, quick: bool, seeds: list[int], progress: bool = True):
    """The controller against random search in the same cell space, LONG_SAMPLES pairs each per
    seed (`sotazoo repro nasnet --long`)."""
    from sotazoo import controller

    samples = 2 if quick else LONG_SAMPLES
    child = QUICK_CHILD if quick else CHILD
    return controller.long_run(
        "nasnet",
        what=f"NASNet's cell space (B = 5 blocks, {len(OPS)} ops, addition), a one-layer LSTM "
        f"controller (REINFORCE, moving-average baseline) vs uniform random search, {samples} "
        f"pairs of cells each per seed, seeds {list(seeds)}; the reward is the validation "
        f"accuracy (%) of nasnet_mini's scaffold at F = {child['filters']} trained "
        f"{child['epochs']} epochs on {10 * child['per_class']} digits at "
        f"{child['image_size']} px, on {child['n_val']} other digits; curves per pair scored",
        samples=samples,
        seeds=seeds,
        quick=quick,
        config={"child": child, "ops": list(OPS)},
        progress=progress,
    )
