"""AutoAugment's search at laptop scale: a recurrent controller proposes policies, a child network
trained for a second or two scores each one, and REINFORCE moves the controller towards the
policies that scored well; random search with the same number of child trainings is the control.

The paper (§3): a policy is 5 sub-policies of 2 ops, each op three decisions (one of 16 ops, one
of 11 probabilities 0, 0.1, ..., 1, one of 10 magnitude bins): 30 softmax decisions, made in
order by a one-layer LSTM of 100 units whose input at each step is the embedding of its previous
decision. The reward is the child's validation accuracy; the controller is trained by policy
gradient against a moving-average baseline (weight 0.95), with an entropy bonus (1e-5), its
weights initialised uniformly in [-0.1, 0.1]. About 15,000 policies were sampled per dataset.

Ours, at laptop scale (not part of `sotazoo repro autoaugment`'s verdicts; `sotazoo repro
autoaugment --long` runs `long_run` below: the controller against random search, curves and no
verdict):
- REINFORCE, not PPO: with one child per update there is no batch of samples for PPO's clipped
  ratio to reuse, and the paper gives no PPO epochs or clip value;
- Adam at lr 0.01 instead of 3.5e-4: a few dozen samples, not 15,000;
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
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import nn
from torch.nn import functional as F

from sotazoo.papers.autoaugment.method import OPS, AutoAugment
from sotazoo.papers.autoaugment.policies import SubPolicy

Policy = tuple[SubPolicy, ...]
PROBABILITIES = tuple(i / 10 for i in range(11))  # §3: 11 uniformly spaced values
MAGNITUDES = tuple(range(10))  # §3: 10 uniformly spaced bins
# One op is three decisions, in this order: which op, its probability, its magnitude bin.
CHOICES = (len(OPS), len(PROBABILITIES), len(MAGNITUDES))


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    samples: int = 40  # policies scored, i.e. child trainings (paper: about 15,000)
    sub_policies: int = 5  # §3
    ops_per_sub_policy: int = 2  # §3
    hidden: int = 100  # §3: one LSTM layer of 100 units
    lr: float = 0.01  # Adam; paper: PPO at 3.5e-4 (see the module docstring)
    entropy_weight: float = 1e-5  # §3
    baseline_decay: float = 0.95  # §3: the reward baseline is a moving average
    init_range: float = 0.1  # §3: weights uniform in [-0.1, 0.1]


def decode(actions: Sequence[int], ops_per_sub_policy: int = 2) -> Policy:
    """A flat list of decisions (op, probability, magnitude, op, ...) as a policy."""
    if len(actions) % (3 * ops_per_sub_policy):
        raise ValueError(f"{len(actions)} decisions do not make whole sub-policies")
    ops = [(OPS[actions[i]], PROBABILITIES[actions[i + 1]], MAGNITUDES[actions[i + 2]])
           for i in range(0, len(actions), 3)]  # fmt: skip
    k = ops_per_sub_policy
    return tuple(tuple(ops[i : i + k]) for i in range(0, len(ops), k))


class Controller(nn.Module):
    """The policy's 30 decisions, one softmax per step of an LSTM cell fed its last decision."""

    def __init__(self, cfg: SearchConfig) -> None:
        super().__init__()
        self.decisions = 3 * cfg.sub_policies * cfg.ops_per_sub_policy
        self.cell = nn.LSTMCell(cfg.hidden, cfg.hidden)
        self.start = nn.Parameter(torch.zeros(1, cfg.hidden))  # the first step's input
        self.embed = nn.ModuleList(nn.Embedding(n, cfg.hidden) for n in CHOICES)
        self.heads = nn.ModuleList(nn.Linear(cfg.hidden, n) for n in CHOICES)
        for p in self.parameters():
            nn.init.uniform_(p, -cfg.init_range, cfg.init_range)

    def forward(
        self, actions: Sequence[int] | None = None, *, generator: torch.Generator | None = None
    ) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """Sample the decisions (from `generator`), or score the given `actions`; returns the
        decisions, their summed log-probability and the summed entropy of the softmaxes."""
        h = c = torch.zeros_like(self.start)
        inp, chosen = self.start, []
        log_prob, entropy = self.start.new_zeros(()), self.start.new_zeros(())
        for step in range(self.decisions):
            kind = step % 3
            h, c = self.cell(inp, (h, c))  # (1, hidden)
            logp = F.log_softmax(self.heads[kind](h)[0], dim=-1)
            if actions is None:
                a = int(torch.multinomial(logp.exp().detach(), 1, generator=generator))
            else:
                a = int(actions[step])
            chosen.append(a)
            log_prob = log_prob + logp[a]
            entropy = entropy - (logp.exp() * logp).sum()
            inp = self.embed[kind](torch.tensor([a]))
        return chosen, log_prob, entropy


@dataclass
class SearchResult:
    method: str  # "controller" or "random"
    policies: list[Policy] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    baselines: list[float] = field(default_factory=list)  # the controller's, before each update

    @property
    def best(self) -> tuple[Policy, float]:
        i = max(range(len(self.rewards)), key=self.rewards.__getitem__)
        return self.policies[i], self.rewards[i]


def search(
    reward: Callable[[Policy], float],
    *,
    method: str = "controller",
    cfg: SearchConfig = SearchConfig(),
    seed: int = 0,
    on_sample: Callable[[int, Policy, float], None] | None = None,
) -> SearchResult:
    """Score `cfg.samples` policies with `reward` (higher is better), proposed by the controller
    trained with REINFORCE, or uniformly at random (`method="random"`, the same budget)."""
    if method not in ("controller", "random"):
        raise ValueError(f"method must be 'controller' or 'random', got {method!r}")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    controller = Controller(cfg)
    opt = torch.optim.Adam(controller.parameters(), lr=cfg.lr)
    out = SearchResult(method)
    baseline = None
    for i in range(cfg.samples):
        if method == "random":
            actions = [int(torch.randint(CHOICES[s % 3], (), generator=g))
                       for s in range(controller.decisions)]  # fmt: skip
        else:
            actions, log_prob, entropy = controller(generator=g)
        policy = decode(actions, cfg.ops_per_sub_policy)
        r = float(reward(policy))
        out.policies.append(policy)
        out.rewards.append(r)
        if method == "controller":
            # REINFORCE: raise the log-probability of the decisions by how much their reward
            # beat the moving average of past rewards (the first reward is its own baseline).
            baseline = r if baseline is None else baseline
            out.baselines.append(baseline)
            loss = -(r - baseline) * log_prob - cfg.entropy_weight * entropy
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            baseline = cfg.baseline_decay * baseline + (1 - cfg.baseline_decay) * r
        if on_sample is not None:
            on_sample(i, policy, r)
    return out


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


def compare(*, samples: int = 40, seed: int = 0, progress: bool = True) -> dict[str, SearchResult]:
    """The controller and random search, each scoring `samples` policies on `digits_reward`."""
    from tqdm.auto import tqdm

    reward = digits_reward(seed=seed)
    cfg = SearchConfig(samples=samples)
    out = {}
    with tqdm(total=2 * samples, desc="autoaugment search", disable=not progress) as bar:
        for method in ("controller", "random"):
            out[method] = search(reward, method=method, cfg=cfg, seed=seed,
                                 on_sample=lambda *_: bar.update(1))  # fmt: skip
    return out


# ---------------------------------------------------------------- `sotazoo repro autoaugment --long`

LONG_SAMPLES = 40  # policies scored per search: 80 child trainings per seed, 2-4 s each
QUICK_REWARD = {"per_class": 3, "n_val": 30, "epochs": 2}  # the smoke run's child: a second


@dataclass(frozen=True)
class SearchJob:
    method: str  # "controller" or "random"
    seed: int
    samples: int
    quick: bool = False


def search_job(job: SearchJob) -> dict:
    """One search of `job.samples` policies on `digits_reward(seed=job.seed)` (a worker's job)."""
    import time

    from sotazoo.train.parallel import tick

    t0 = time.perf_counter()
    reward = digits_reward(seed=job.seed, **(QUICK_REWARD if job.quick else {}))
    r = search(reward, method=job.method, cfg=SearchConfig(samples=job.samples), seed=job.seed,
               on_sample=lambda *_: tick())  # fmt: skip
    policy, best = r.best
    return {"method": job.method, "seed": job.seed, "rewards": r.rewards,
            "baselines": r.baselines, "best": best,
            "best_policy": [[list(op) for op in sub] for sub in policy],
            "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip


def long_run(*, quick: bool, seeds: list[int], progress: bool = True):
    """The paper's search against random search at laptop scale: per seed, the controller and
    random search each score LONG_SAMPLES policies with the same child (same data, weights and
    batches; `digits_reward`). Curves: each policy's reward (validation accuracy, %) and the
    best so far, per method and seed. No verdict: the full run's claims are about the published
    policies; this says how the search's mechanics behave under a seconds-long child."""
    import itertools
    import statistics

    from sotazoo.repro import LongOutcome
    from sotazoo.train.parallel import run_parallel

    samples = 2 if quick else LONG_SAMPLES
    jobs = [SearchJob(m, s, samples, quick) for s in seeds for m in ("controller", "random")]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers; with one worker the jobs run in this process
    try:
        logs = run_parallel(search_job, jobs, steps=[samples] * len(jobs),
                            workers=1 if quick else 2, desc="autoaugment search",
                            progress=progress)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    curves, summary = {}, []
    for log in logs:
        best = list(itertools.accumulate(log["rewards"], max))
        curves[f"{log['method']}, seed {log['seed']}"] = {
            "step": list(range(1, samples + 1)), "reward": log["rewards"], "best_so_far": best}  # fmt: skip
    tail = max(1, samples // 4)  # the last quarter of the policies: what the search ends on
    for method in ("controller", "random"):
        mine = [log for log in logs if log["method"] == method]
        summary.append(
            f"{method}: best validation accuracy per seed "
            + ", ".join(f"{log['best']:.1f}" for log in mine)
            + f"; mean of the last {tail} policies' rewards "
            + ", ".join(f"{statistics.fmean(log['rewards'][-tail:]):.1f}" for log in mine)
        )
    child = QUICK_REWARD if quick else {"per_class": 10, "n_val": 300, "epochs": 30}
    return LongOutcome(
        what=f"AutoAugment's search space, a one-layer LSTM controller (REINFORCE, moving-average "
        f"baseline) vs uniform random search, {samples} policies each per seed, seeds "
        f"{list(seeds)}; the reward is the validation accuracy (%) of a {child['per_class']}-"
        f"digits-per-class child trained {child['epochs']} epochs with the baseline augmentation "
        f"then the policy, on {child['n_val']} other digits; curves per policy scored",
        config={"samples": samples, "search": asdict(SearchConfig(samples=samples)),
                "child": child},  # fmt: skip
        curves=curves,
        summary=summary,
        details={"searches": logs},
    )
