"""Recipe for our demo weights: `sotazoo train sid_mini`.

The reproduction's raw arm (`repro.py`: sid_mini on the packed, amplified raw of simulated short
exposures, x100, x250 and x300, of 128 px crops of the seven training photographs bundled with
scikit-image, fresh noise each step; L1 loss, Adam at 1e-3, batch 8), trained longer: a budget
(`--budget`) of thousands of steps (default 4), the rate divided by 10 at half of them as the
paper's schedule does. Every 1,000 steps, and at the end, PSNR and SSIM on the reproduction's
180 held-out exposures are logged; at the end, beside them, the traditional pipeline + non-local
means on the same exposures (`repro.pipeline`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sotazoo.train.recipes import Recipe, Trained

DEFAULT_KSTEPS = 4
STEPS_PER_UNIT = 1000  # the budget's unit (a test's smoke run makes it 2)


@dataclass(frozen=True, kw_only=True)
class SIDRecipe:
    ksteps: int = DEFAULT_KSTEPS  # thousands of steps (`sotazoo train --budget`)
    batch_size: int = 8
    lr: float = 1e-3
    eval_every: int = 1000


def evaluate(model) -> dict[str, float]:
    """PSNR and SSIM of `model` (the raw arm) on the reproduction's 180 held-out exposures."""
    from sotazoo.papers.sid.repro import ReproConfig, _test_scores

    model.eval()
    s = _test_scores(model, "raw", ReproConfig())
    return {"heldout_psnr": s["psnr"], "heldout_ssim": s["ssim"]}


def train_sid_mini(*, seed: int, budget: int | None, progress: bool) -> Trained:
    import time

    import torch
    from tqdm.auto import tqdm

    from sotazoo.papers.sid.repro import Batches, ReproConfig, pipeline
    from sotazoo.train import seeded_model

    r = SIDRecipe(ksteps=budget or DEFAULT_KSTEPS)
    steps = r.ksteps * STEPS_PER_UNIT
    model = seeded_model("sid_mini", seed)
    opt = torch.optim.Adam(model.parameters(), lr=r.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [steps // 2], gamma=0.1)
    data = Batches(ReproConfig(batch_size=r.batch_size), seed=seed)
    log: dict = {"loss": [], "heldout": []}
    t0 = time.perf_counter()
    with tqdm(total=steps, desc="train sid_mini", disable=not progress) as bar:
        for step in range(1, steps + 1):
            model.train()
            raw_in, _, target = data.batch()
            total = (model(raw_in) - target).abs().mean()
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            sched.step()
            log["loss"].append(round(float(total.detach()), 5))
            if step % min(r.eval_every, steps) == 0 or step == steps:
                log["heldout"].append({"step": step, **evaluate(model)})
            bar.update(1)
    base = pipeline(ReproConfig())
    metrics = dict(log["heldout"][-1]) | {"pipeline_nlm_psnr": base["psnr"],
                                          "pipeline_nlm_ssim": base["ssim"]}  # fmt: skip
    metrics.pop("step")
    log["seconds"] = round(time.perf_counter() - t0, 1)
    return Trained(model=model.eval(), metrics={k: round(v, 4) for k, v in metrics.items()},
                   log={"recipe": asdict(r), **log})  # fmt: skip


RECIPES = {"sid_mini": Recipe(train_sid_mini, unit="thousand steps", default=DEFAULT_KSTEPS)}
