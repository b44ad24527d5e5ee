"""The search engine of the papers that search (NASNet's cells, AutoAugment's policies): a
recurrent controller that makes a fixed sequence of categorical decisions, trained with
REINFORCE against a moving-average baseline, and uniform random search in the same space with
the same budget as its control.

A paper that searches keeps, in its `search.py` (a module of the paper contract,
`sotazoo.papers._contract`):
- `SPACE`: a `Space` (how many options each decision has);
- `decode(actions) -> sample`: the decisions as the paper's object (a policy, a pair of cells);
- `to_json(sample)`: that object as JSON data, for the results file;
- `make_reward(*, seed, quick) -> reward`: `reward(sample) -> float`, higher is better (the
  validation accuracy of a child network trained for seconds).
`long_run` below runs both searches per seed in worker processes and returns the curves as a
`sotazoo.repro.LongOutcome` (`sotazoo repro ID --long`).

Defaults follow Zoph & Le's and the two papers' controllers: one LSTM layer of 100 units whose
input at each step is the embedding of its previous decision, one softmax per kind of decision,
weights uniform in [-0.1, 0.1], reward baseline an exponential moving average (decay 0.95),
entropy bonus 1e-5. Two changes for laptop scale, the same for both papers: REINFORCE with one
sample per update rather than PPO (PPO's clipped ratio needs a batch of samples to reuse, and
neither paper gives its PPO epochs or clip value), and Adam at lr 0.01 (a few dozen samples,
not tens of thousands).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

METHODS = ("controller", "random")


@dataclass(frozen=True)
class Space:
    """A search space as a fixed sequence of categorical decisions: step i is a decision of kind
    `kinds[i]`, which has `choices[kinds[i]]` options. Decisions of one kind share their softmax
    and their embedding."""

    choices: tuple[int, ...]
    kinds: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.kinds or any(n < 1 for n in self.choices):
            raise ValueError(f"a space needs decisions, each with options: {self}")
        if not set(self.kinds) <= set(range(len(self.choices))):
            raise ValueError(f"kinds {sorted(set(self.kinds))} name no entry of {self.choices}")

    def __len__(self) -> int:
        return len(self.kinds)

    def size(self, step: int) -> int:
        return self.choices[self.kinds[step]]

    def uniform(self, generator: torch.Generator) -> list[int]:
        """One member drawn uniformly (random search)."""
        return [int(torch.randint(self.size(i), (), generator=generator)) for i in range(len(self))]


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    samples: int = 40  # members scored, i.e. child trainings
    hidden: int = 100  # one LSTM layer of 100 units (both papers)
    lr: float = 0.01  # Adam (see the module docstring)
    entropy_weight: float = 1e-5
    baseline_decay: float = 0.95
    init_range: float = 0.1


class Controller(nn.Module):
    """One softmax per step of an LSTM cell fed the embedding of its previous decision."""

    def __init__(self, space: Space, *, hidden: int = 100, init_range: float = 0.1) -> None:
        super().__init__()
        self.space = space
        self.cell = nn.LSTMCell(hidden, hidden)
        self.start = nn.Parameter(torch.zeros(1, hidden))  # the first step's input
        self.embed = nn.ModuleList(nn.Embedding(n, hidden) for n in space.choices)
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in space.choices)
        for p in self.parameters():
            nn.init.uniform_(p, -init_range, init_range)

    def forward(
        self, actions: Sequence[int] | None = None, *, generator: torch.Generator | None = None
    ) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """Sample the decisions (from `generator`), or score the given `actions`; returns the
        decisions, their summed log-probability and the summed entropy of the softmaxes."""
        h = c = torch.zeros_like(self.start)
        inp, chosen = self.start, []
        log_prob, entropy = self.start.new_zeros(()), self.start.new_zeros(())
        for step, kind in enumerate(self.space.kinds):
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
    samples: list[Any] = field(default_factory=list)  # decoded, in the order scored
    rewards: list[float] = field(default_factory=list)
    baselines: list[float] = field(default_factory=list)  # the controller's, before each update

    @property
    def best(self) -> tuple[Any, float]:
        i = max(range(len(self.rewards)), key=self.rewards.__getitem__)
        return self.samples[i], self.rewards[i]

    def top(self, k: int) -> list[Any]:
        """The `k` best-scored samples, best first (ties: the earlier one)."""
        order = sorted(range(len(self.rewards)), key=lambda i: (-self.rewards[i], i))
        return [self.samples[i] for i in order[:k]]


def search(
    reward: Callable[[Any], float],
    space: Space,
    decode: Callable[[Sequence[int]], Any],
    *,
    method: str = "controller",
    cfg: SearchConfig = SearchConfig(),
    seed: int = 0,
    on_sample: Callable[[int, Any, float], None] | None = None,
) -> SearchResult:
    """Score `cfg.samples` members of `space` with `reward` (higher is better), proposed by the
    controller trained with REINFORCE, or uniformly at random (`method="random"`, same budget)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    controller = Controller(space, hidden=cfg.hidden, init_range=cfg.init_range)
    opt = torch.optim.Adam(controller.parameters(), lr=cfg.lr)
    out = SearchResult(method)
    baseline = None
    for i in range(cfg.samples):
        if method == "random":
            actions = space.uniform(g)
        else:
            actions, log_prob, entropy = controller(generator=g)
        sample = decode(actions)
        r = float(reward(sample))
        out.samples.append(sample)
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
            on_sample(i, sample, r)
    return out


# ---------------------------------------------------------------- `sotazoo repro ID --long`


@dataclass(frozen=True)
class SearchJob:
    paper: str  # its search module has the members listed above
    method: str
    seed: int
    samples: int
    quick: bool = False


def search_job(job: SearchJob) -> dict:
    """One search of `job.samples` members on the paper's reward for `job.seed` (a worker's job);
    every sample is kept, as JSON, with its reward."""
    import time

    from sotazoo.papers._contract import paper
    from sotazoo.train.parallel import tick

    mod = paper(job.paper).search
    t0 = time.perf_counter()
    reward = mod.make_reward(seed=job.seed, quick=job.quick)
    r = search(reward, mod.SPACE, mod.decode, method=job.method,
               cfg=SearchConfig(samples=job.samples), seed=job.seed,
               on_sample=lambda *_: tick())  # fmt: skip
    return {"method": job.method, "seed": job.seed, "rewards": r.rewards,
            "baselines": r.baselines, "best": r.best[1],
            "samples": [mod.to_json(s) for s in r.samples],
            "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip


def long_run(
    paper: str, *, what: str, samples: int, seeds: Sequence[int], quick: bool,
    config: dict[str, Any], progress: bool = True,
):  # fmt: skip
    """Per seed, the controller and random search each score `samples` members with the same
    reward (same child data, weights and batches), in two single-thread worker processes (one,
    in this process, when `quick`). Curves: each sample's reward and the best so far, per method
    and seed; the summary gives the best and the mean of the last quarter per seed. No verdict."""
    from sotazoo.repro import LongOutcome
    from sotazoo.train.parallel import run_parallel

    jobs = [SearchJob(paper, m, s, samples, quick) for s in seeds for m in METHODS]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers; with one worker the jobs run in this process
    try:
        logs = run_parallel(search_job, jobs, steps=[samples] * len(jobs),
                            workers=1 if quick else 2, desc=f"{paper} search",
                            progress=progress)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    curves = {
        f"{log['method']}, seed {log['seed']}": {
            "step": list(range(1, samples + 1)),
            "reward": log["rewards"],
            "best_so_far": list(itertools.accumulate(log["rewards"], max)),
        }
        for log in logs
    }
    tail = max(1, samples // 4)  # the last quarter of the samples: what the search ends on
    summary = []
    for method in METHODS:
        mine = [log for log in logs if log["method"] == method]
        summary.append(
            f"{method}: best reward per seed "
            + ", ".join(f"{log['best']:.1f}" for log in mine)
            + f"; mean of the last {tail} samples' rewards "
            + ", ".join(f"{statistics.fmean(log['rewards'][-tail:]):.1f}" for log in mine)
        )
    return LongOutcome(
        what=what,
        config={"samples": samples, "search": asdict(SearchConfig(samples=samples))} | config,
        curves=curves,
        summary=summary,
        details={"searches": logs},
    )
