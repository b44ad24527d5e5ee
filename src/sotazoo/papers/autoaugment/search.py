"""AutoAugment's search at laptop scale: a recurrent controller proposes policies, a child network
trained for a second or two scores each one, and REINFORCE moves the controller towards the
policies that scored well; random search with the same number of child trainings is the control.

The paper (§3): a policy is 5 sub-policies of 2 ops, each op three decisions (one of 16 ops, one
of 11 probabilities 0, 0.1, ..., 1, one of 10 magnitude bins): 30 softmax decisions, made in
order by a one-layer LSTM of 100 units whose input at each step is the embedding of its previous
decision. The reward is the child's validation accuracy; the controller is trained by policy
gradient against a moving-average baseline (weight 0.95), with an entropy bonus (1e-5), its
weights initialised uniformly in [-0.1, 0.1]. About 15,000 policies were sampled per dataset.

Ours, at laptop scale: the controller and its REINFORCE loop are `sotazoo.controller`'s, shared
with NASNet's search (REINFORCE rather than PPO, Adam at lr 0.01; the reasons are there).
`sotazoo repro autoaugment --long` runs the controller against random search (curves, no
verdict); the final policy of seed 0's controller search, its 5 best policies concatenated as
in §3, is `policies.SEARCHED`, which the full run trains with.
- the child is `repro.child_cnn` at width 16 (14,746 parameters) trained 30 epochs (120
  steps, 2-4 s on one core) on 100 digits (10 per class, the baseline augmentation then the
  policy), scored on 300 other digits of the training split; the paper's children are WRN-40-2
  trained 120 epochs on 4,000 images. The paper notes that sub-policies need 80-100 epochs
  before they help; a child this short rewards mild policies (piloted: no policy 82%
  validation accuracy, the published SVHN policy 49%), so a laptop search tests the mechanics
  and the controller-vs-random comparison under this reward, not the paper's policies.
Every child of one search starts from the same weights and sees the same batches, so rewards
differ by the policy (and AutoAugment's own draws, seeded per child) only.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch

from sotazoo.controller import SearchResult, Space
from sotazoo.papers.autoaugment.method import OPS, AutoAugment
from sotazoo.papers.autoaugment.policies import SubPolicy

Policy = tuple[SubPolicy, ...]
PROBABILITIES = tuple(i / 10 for i in range(11))  # §3: 11 uniformly spaced values
MAGNITUDES = tuple(range(10))  # §3: 10 uniformly spaced bins
SUB_POLICIES, OPS_PER_SUB_POLICY = 5, 2  # §3
# One op is three decisions, in this order: which op, its probability, its magnitude bin.
CHOICES = (len(OPS), len(PROBABILITIES), len(MAGNITUDES))
SPACE = Space(CHOICES, (0, 1, 2) * (SUB_POLICIES * OPS_PER_SUB_POLICY))
FINAL_POLICIES = 5  # §3: the final policy concatenates the 5 best policies' sub-policies


def decode(actions: Sequence[int]) -> Policy:
    """A flat list of decisions (op, probability, magnitude, op, ...) as a policy."""
    if len(actions) % (3 * OPS_PER_SUB_POLICY):
        raise ValueError(f"{len(actions)} decisions do not make whole sub-policies")
    ops = [(OPS[actions[i]], PROBABILITIES[actions[i + 1]], MAGNITUDES[actions[i + 2]])
           for i in range(0, len(actions), 3)]  # fmt: skip
    k = OPS_PER_SUB_POLICY
    return tuple(tuple(ops[i : i + k]) for i in range(0, len(ops), k))


def to_json(policy: Policy) -> list:
    return [[list(op) for op in sub] for sub in policy]


def from_json(data: list) -> Policy:
    return tuple(tuple((str(op), float(p), int(m)) for op, p, m in sub) for sub in data)


def final_policy(log: dict) -> Policy:
    """The policy a search ends with (§3): the sub-policies of its `FINAL_POLICIES` best-scored
    policies (ties: the earlier one), best first. `log` is one search of `results/long/
    autoaugment.json`'s `details.searches`."""
    result = SearchResult(log.get("method", "controller"),
                          [from_json(s) for s in log["samples"]], list(log["rewards"]))  # fmt: skip
    return tuple(sub for policy in result.top(FINAL_POLICIES) for sub in policy)


# ---------------------------------------------------------------- the child: reduced digits


def digits_reward(
    *, per_class: int = 10, n_val: int = 300, width: int = 16, epochs: int = 30, seed: int = 0
) -> Callable[[Policy], float]:
    """A reward: validation accuracy (%) of `repro.child_cnn` trained on `per_class` digits per
    class with the baseline augmentation and then the policy, scored on `n_val` other digits of
    the training split (the held-out split is never read)."""
    import numpy as np

    from sotazoo.data.digits import load_digits
    from sotazoo.papers.autoaugment.repro import (
        ReproConfig,
        baseline_augment,
        fit_child,
        normaliser,
        test_error,
    )

    cfg = replace(ReproConfig(), width=width, epochs=epochs, batch_size=25)
    x, y = load_digits(size=cfg.image_size, split="train")
    x = (((x + 1) / 2).clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1)
    rng = np.random.default_rng(seed)
    perm = [rng.permutation(np.flatnonzero(y.numpy() == c)) for c in range(10)]
    train = torch.from_numpy(np.concatenate([p[:per_class] for p in perm]))
    val_pool = np.concatenate([p[per_class:] for p in perm])
    val = torch.from_numpy(np.sort(rng.permutation(val_pool)[:n_val]))
    xs, ys, xv, yv = x[train].contiguous(), y[train], x[val].contiguous(), y[val]
    norm = normaliser(xs)

    def reward(policy: Policy) -> float:
        base_g = torch.Generator().manual_seed(10_000 + seed)
        aa = AutoAugment(policy, rng=random.Random(20_000 + seed))

        def augment(xb: torch.Tensor) -> torch.Tensor:
            xb = baseline_augment(xb, shift=cfg.shift, flip=False, generator=base_g)
            others = xb.roll(1, dims=0)  # SamplePairing's second image: another of the batch
            return torch.stack([aa(img, other=o) for img, o in zip(xb, others, strict=True)])

        model, _ = fit_child(xs, ys, cfg, seed=seed, augment=augment)
        return 100.0 - test_error(model, xv, yv, norm)

    return reward


QUICK_REWARD = {"per_class": 3, "n_val": 30, "epochs": 2}  # the smoke run's child: a second
LONG_SAMPLES = 40  # policies scored per search: 80 child trainings per seed, 2-4 s each


def make_reward(*, seed: int, quick: bool = False) -> Callable[[Policy], float]:
    """The long run's reward (`sotazoo.controller`'s contract): `digits_reward` of the seed."""
    return digits_reward(seed=seed, **(QUICK_REWARD if quick else {}))


def long_run(*, quick: bool, seeds: list[int], progress: bool = True):
    """The paper's search against random search at laptop scale: per seed, the controller and
    random search each score LONG_SAMPLES policies with the same child (`digits_reward`). No
    verdict: the search's policy is judged by the full run, trained like the published one."""
    from sotazoo import controller

    samples = 2 if quick else LONG_SAMPLES
    child = QUICK_REWARD if quick else {"per_class": 10, "n_val": 300, "epochs": 30}
    return controller.long_run(
        "autoaugment",
        what=f"AutoAugment's search space, a one-layer LSTM controller (REINFORCE, moving-average "
        f"baseline) vs uniform random search, {samples} policies each per seed, seeds "
        f"{list(seeds)}; the reward is the validation accuracy (%) of a {child['per_class']}-"
        f"digits-per-class child trained {child['epochs']} epochs with the baseline augmentation "
        f"then the policy, on {child['n_val']} other digits; curves per policy scored",
        samples=samples,
        seeds=seeds,
        quick=quick,
        config={"child": child},
        progress=progress,
    )
