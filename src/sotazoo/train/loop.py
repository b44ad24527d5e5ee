"""A plain supervised classification loop, seeded, with a JSON-able log.

SGD with Nesterov momentum, linear warm-up then cosine decay, weight decay on weights only,
random horizontal and vertical flips. Everything a run depends on is in `TrainConfig`.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from sotazoo.metrics import accuracy


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.0
    flips: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a generator for the data order."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def seeded_model(name: str, seed: int, **overrides) -> nn.Module:
    """`create_model(name, **overrides)` with its initial weights drawn from `seed`.

    The initialisation must be seeded before the model is built: seeding only inside the
    training loop leaves the first model of a process initialised from an unseeded generator
    (and every later one from whatever state the previous run left)."""
    from sotazoo.registry import create_model

    torch.manual_seed(seed)
    return create_model(name, **overrides)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.ndim > 1 else no_decay).append(p)  # no decay on biases and BN
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0},
    ]


def _lr_at(step: int, total: int, warmup: int, base: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * t))


@torch.inference_mode()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    model.eval()
    logits = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    return accuracy(logits, y)


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: TrainConfig,
    *,
    seed: int,
    on_step=None,
) -> dict:
    """Train `model` on (x, y); return a log with the loss per epoch and the wall time."""
    g = seed_everything(seed)
    opt = torch.optim.SGD(
        _param_groups(model, cfg.weight_decay), lr=cfg.lr, momentum=cfg.momentum, nesterov=True
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    steps_per_epoch = math.ceil(len(x) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    log = {"config": cfg.to_dict(), "seed": seed, "epoch_loss": []}
    t0 = time.perf_counter()
    step = 0
    for _ in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(x), generator=g)
        running = 0.0
        for i in range(0, len(x), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            xb, yb = x[idx], y[idx]
            if cfg.flips:
                flip = torch.rand(len(xb), 2, generator=g) < 0.5
                xb = torch.where(flip[:, 0, None, None, None], xb.flip(3), xb)
                xb = torch.where(flip[:, 1, None, None, None], xb.flip(2), xb)
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, total, warmup, cfg.lr)
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += loss.item() * len(idx)
            step += 1
            if on_step is not None:
                on_step()
        log["epoch_loss"].append(running / len(x))
    log["seconds"] = time.perf_counter() - t0
    return log
