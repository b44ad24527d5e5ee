"""Recipe for our demo weights: `sotazoo train deeplabv3plus_mini`.

The reproduction's decoder arm (`repro.py`: deeplabv3plus_mini on synthetic 96 px scenes of four
shape classes, pixel cross-entropy, Adam at 1e-3 with the "poly" decay, batch 16, random
horizontal flips), trained longer on more scenes: a budget (`--budget`) of thousands of steps
(default 3) on 6,000 scenes of the seed. Every 1,000 steps, and at the end, the mIoU and the
3-pixel boundary-band mIoU on the reproduction's 200 test scenes are logged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sotazoo.train.recipes import Recipe, Trained

DEFAULT_KSTEPS = 3
STEPS_PER_UNIT = 1000  # the budget's unit (a test's smoke run makes it 2)


@dataclass(frozen=True, kw_only=True)
class SegRecipe:
    ksteps: int = DEFAULT_KSTEPS
    scenes: int = 6000
    batch_size: int = 16
    lr: float = 1e-3
    eval_every: int = 1000


def evaluate(model) -> dict[str, float]:
    from sotazoo.papers.deeplabv3plus.repro import BAND, ReproConfig
    from sotazoo.papers.deeplabv3plus.repro import evaluate as scores

    s = scores(model, ReproConfig())
    return {"test_miou": s["miou"], "test_band_miou": s["band_miou"][str(BAND)],
            "test_pixel_acc": s["pixel_acc"]}  # fmt: skip


def train_deeplabv3plus_mini(*, seed: int, budget: int | None, progress: bool) -> Trained:
    import time

    import torch
    from torch.nn import functional as F
    from tqdm.auto import tqdm

    from sotazoo.papers.deeplabv3plus.repro import ReproConfig, batch, scenes
    from sotazoo.train import seeded_model

    r = SegRecipe(ksteps=budget or DEFAULT_KSTEPS)
    steps = r.ksteps * STEPS_PER_UNIT
    model = seeded_model("deeplabv3plus_mini", seed)
    x, y = scenes(r.scenes, ReproConfig().size, seed)
    opt = torch.optim.Adam(model.parameters(), lr=r.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (1 - s / steps) ** 0.9)
    g = torch.Generator().manual_seed(seed)
    log: dict = {"loss": [], "test": []}
    t0 = time.perf_counter()
    with tqdm(total=steps, desc="train deeplabv3plus_mini", disable=not progress) as bar:
        for step in range(1, steps + 1):
            model.train()
            xb, yb = batch(x, y, r.batch_size, g)
            total = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            sched.step()
            log["loss"].append(round(float(total.detach()), 5))
            if step % min(r.eval_every, steps) == 0 or step == steps:
                log["test"].append({"step": step, **evaluate(model)})
            bar.update(1)
    metrics = dict(log["test"][-1])
    metrics.pop("step")
    log["seconds"] = round(time.perf_counter() - t0, 1)
    return Trained(model=model.eval(), metrics={k: round(v, 4) for k, v in metrics.items()},
                   log={"recipe": asdict(r), **log})  # fmt: skip


RECIPES = {"deeplabv3plus_mini": Recipe(train_deeplabv3plus_mini, unit="thousand steps",
                                        default=DEFAULT_KSTEPS)}  # fmt: skip
