"""Helpers shared by the GAN papers' reproductions and recipes (SAGAN, ProGAN); no training loop.

Each paper trains with its own `method.py`; what they share is how a generator is scored and how
independent runs share the machine:
- `fixed_latents`: the evaluation noise, the same for every arm, seed and checkpoint of a run, so
  that two FIDs differ by the generators only (classes balanced, cycling 0, 1, ..., K-1);
- `ProxyFID`: proxy FID (`sotazoo.metrics.fid`, the shipped digit classifier's features) against
  the statistics of a fixed real set, computed once (the held-out digits, never trained on);
- `generate`: a generator's images for those latents, in eval mode, in batches;
- `LossLog`: the mean of each loss term over windows of steps, for the run's JSON log, and the
  divergence check (a term that is not finite);
- `frozen` and `optimizer_step`: the two halves of an alternating G / D update (the other
  network's parameters frozen while one network takes its step).
Independent runs share the machine through `sotazoo.train.parallel` (`run_parallel`, `tick`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping

import torch

FID_SAMPLES = 1000  # generated images per proxy FID (fixed, as FID depends on the count)
FID_SEED = 12345  # seed of the evaluation latents; the training streams use other generators


def fixed_latents(
    n: int, z_dim: int, *, num_classes: int = 0, seed: int = FID_SEED
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(z (n, z_dim) ~ N(0, I) from `seed`, class ids i % num_classes or None if unconditional)."""
    z = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))
    labels = torch.arange(n) % num_classes if num_classes else None
    return z, labels


@torch.no_grad()
def generate(
    fn: Callable[..., torch.Tensor],
    z: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    batch: int = 250,
) -> torch.Tensor:
    """`fn(z[, labels])` over `z` in batches; `fn` is a generator (put in eval mode here, and
    back in its mode after) or any callable."""
    module = fn if isinstance(fn, torch.nn.Module) else None
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
    try:
        out = []
        for i in range(0, len(z), batch):
            args = (
                (z[i : i + batch],) if labels is None else (z[i : i + batch], labels[i : i + batch])
            )
            out.append(fn(*args).float().cpu())
        return torch.cat(out)
    finally:
        if module is not None:
            module.train(was_training)


class ProxyFID:
    """Proxy FID of generated images against `real`'s statistics, computed once.

    The proxy's scale (`python -m sotazoo.metrics.fid --reference`, against the train split):
    held-out real digits 0.13, blurred 36, one class 60, noise 57. Lower is better; the values
    are not comparable with published (Inception) FIDs.
    """

    def __init__(self, real: torch.Tensor) -> None:
        from sotazoo.metrics.fid import ProxyFeatures, feature_stats
        from sotazoo.metrics.fid_proxy import load_proxy

        self.net = ProxyFeatures(load_proxy()).eval()
        self.real_stats = feature_stats(real, features=self.net)
        self.n_real = len(real)

    def __call__(self, fake: torch.Tensor) -> float:
        from sotazoo.metrics.fid import fid

        return float(fid(self.real_stats, fake.clamp(-1, 1), features=self.net))


def digits_fid(split: str = "heldout", *, size: int = 16) -> ProxyFID:
    """`ProxyFID` against the digits of `split` (`sotazoo.data.digits`, split seed 0)."""
    from sotazoo.data.digits import load_digits

    real, _ = load_digits(size=size, split=split)
    return ProxyFID(real)


class LossLog:
    """Mean loss terms over windows of steps: `rows` holds {"step", **means} for every window,
    closed at each `every`-th step and at step `last` (steps counted from 1), the means rounded
    to `digits` when given."""

    def __init__(self, every: int, last: int, *, digits: int | None = None) -> None:
        self.every, self.last, self.digits = every, last, digits
        self.rows: list[dict[str, float]] = []
        self._window: dict[str, list[float]] = {}

    def add(self, step: int, terms: Mapping[str, float]) -> bool:
        """Keep step `step`'s terms; False, keeping nothing, when one is not finite."""
        if not all(math.isfinite(v) for v in terms.values()):
            return False
        for k, v in terms.items():
            self._window.setdefault(k, []).append(v)
        if step % self.every == 0 or step == self.last:
            means = {k: sum(v) / len(v) for k, v in self._window.items()}
            if self.digits is not None:
                means = {k: round(v, self.digits) for k, v in means.items()}
            self.rows.append({"step": step, **means})
            self._window = {}
        return True


@contextlib.contextmanager
def frozen(*modules: torch.nn.Module) -> Iterator[None]:
    """Within the block, the trainable parameters of `modules` take no gradient (G's step
    through a frozen D); they are trainable again afterwards, also after an error."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def optimizer_step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One step of `opt` on `loss`: zero the gradients, backward, step."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
