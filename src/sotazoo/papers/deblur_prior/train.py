"""Recipe for our demo weights: `sotazoo train deblur_prior_mini`.

The reproduction's classifier (`repro.py`: deblur_prior_mini on 64 px grayscale crops of the
seven training photographs bundled with scikit-image, half of each batch blurred by one of 200
random camera-shake kernels of 7 to 21 pixels with noise of sigma 0.01, every batch shrunk by a
random factor in [0.25, 1]; binary cross-entropy, Adam at 1e-3, batch 32), trained longer: a
budget (`--budget`) of thousands of steps (default 3), the rate divided by 5 at 2/3 of them (the
paper divides it by 5 every 50 epochs). Every 1,000 steps, and at the end, the accuracy on the
reproduction's 60 held-out clear/blurred pairs (120 images, 8-bit) is logged at full size and
shrunk by 2 and by 4 (the paper's Section 7.1 checks the same), with the mean ratio
f(clear) / f(blurred).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

from sotazoo.train.recipes import Recipe, Trained

DEFAULT_KSTEPS = 3
STEPS_PER_UNIT = 1000  # the budget's unit (a test's smoke run makes it 2)


@dataclass(frozen=True, kw_only=True)
class PriorRecipe:
    ksteps: int = DEFAULT_KSTEPS  # thousands of steps (`sotazoo train --budget`)
    batch_size: int = 32
    lr: float = 1e-3
    eval_every: int = 1000


def evaluate(model) -> dict[str, float]:
    """Accuracy (%) on the held-out pairs at scales 1, 1/2 and 1/4, and the mean score ratio."""
    import numpy as np
    import torch
    from torch.nn import functional as F

    from sotazoo.papers.deblur_prior.repro import ReproConfig, learned_ratios, score_pairs

    model.eval()
    pairs = score_pairs(ReproConfig())
    x = torch.from_numpy(np.stack([im for pair in pairs for im in pair])).float()[:, None]
    y = torch.tensor([0.0, 1.0] * len(pairs))
    out = {}
    with torch.no_grad():
        for k in (1, 2, 4):
            xs = F.interpolate(x, scale_factor=1 / k, mode="bilinear", antialias=True) if k > 1 else x
            pred = (model.score(xs) > 0.5).float()
            out[f"heldout_acc_x{k}"] = 100 * float((pred == y).float().mean())
    out["heldout_ratio"] = statistics.fmean(learned_ratios(model, ReproConfig()))
    return out


def train_deblur_prior_mini(*, seed: int, budget: int | None, progress: bool) -> Trained:
    import time

    import torch
    from torch.nn import functional as F
    from tqdm.auto import tqdm

    from sotazoo.papers.deblur_prior.repro import Patches, ReproConfig
    from sotazoo.train import seeded_model

    r = PriorRecipe(ksteps=budget or DEFAULT_KSTEPS)
    steps = r.ksteps * STEPS_PER_UNIT
    model = seeded_model("deblur_prior_mini", seed)
    opt = torch.optim.Adam(model.parameters(), lr=r.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [steps * 2 // 3], gamma=0.2)
    data = Patches(ReproConfig(batch_size=r.batch_size), seed=seed)
    log: dict = {"loss": [], "heldout": []}
    t0 = time.perf_counter()
    with tqdm(total=steps, desc="train deblur_prior_mini", disable=not progress) as bar:
        for step in range(1, steps + 1):
            model.train()
            x, y = data.batch()
            total = F.binary_cross_entropy_with_logits(model.logit(x), y)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            sched.step()
            log["loss"].append(round(float(total.detach()), 5))
            if step % min(r.eval_every, steps) == 0 or step == steps:
                log["heldout"].append({"step": step, **evaluate(model)})
            bar.update(1)
    metrics = dict(log["heldout"][-1])
    metrics.pop("step")
    log["seconds"] = round(time.perf_counter() - t0, 1)
    return Trained(model=model.eval(), metrics={k: round(v, 4) for k, v in metrics.items()},
                   log={"recipe": asdict(r), **log})  # fmt: skip


RECIPES = {"deblur_prior_mini": Recipe(train_deblur_prior_mini, unit="thousand steps",
                                       default=DEFAULT_KSTEPS)}  # fmt: skip
