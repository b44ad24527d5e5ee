"""Recipe for our demo weights: `sotazoo train pconv_mini`.

The reproduction's PConv arm (`repro.py`: pconv_mini, 64x64 crops of the seven training
photographs bundled with scikit-image, brush-stroke masks with hole ratios in (0.01, 0.6), loss
L_valid + 6 L_hole + 0.1 L_tv, Adam at 1e-3, batch 16), trained longer: a budget (`--budget`)
of thousands of steps (default 6), the learning rate halved at 1/2 and 3/4 of the run, then the
paper's second stage for the last 1/8: BatchNorm frozen in the encoder (its statistics kept,
Sec. 4.2, since hole pixels skew them). Every 1,000 steps, and at the end, the hole L1, PSNR and
SSIM on the reproduction's 180 held-out crops are logged, beside scikit-image's biharmonic
inpainting on the same holes.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

from sotazoo.train.recipes import Recipe, Trained

DEFAULT_KSTEPS = 6
STEPS_PER_UNIT = 1000  # the budget's unit (a test's smoke run makes it 2)


@dataclass(frozen=True, kw_only=True)
class PConvRecipe:
    ksteps: int = DEFAULT_KSTEPS  # thousands of steps (`sotazoo train --budget`)
    batch_size: int = 16
    lr: float = 1e-3
    frozen_bn_share: float = 0.125  # the last share of the steps: encoder BatchNorm frozen
    eval_every: int = 1000


def _evaluate(model, prefix: str = "heldout") -> dict[str, float]:
    """Mean hole L1 (%), PSNR and SSIM over the reproduction's 180 held-out crops; `model` None:
    scikit-image's biharmonic inpainting on the same holes."""
    import numpy as np
    import torch

    from sotazoo.papers.partialconv.model import composite
    from sotazoo.papers.partialconv.repro import ReproConfig, hole_metrics, test_set

    x, m = test_set(ReproConfig())
    if model is None:
        from skimage.restoration import inpaint_biharmonic

        comp = torch.from_numpy(np.stack([
            inpaint_biharmonic(img.permute(1, 2, 0).numpy(), (mk[0] == 0).numpy(), channel_axis=2)
            for img, mk in zip(x, m, strict=True)
        ])).permute(0, 3, 1, 2).float()  # fmt: skip
    else:
        model.eval()
        with torch.no_grad():
            comp = torch.cat([composite(x[i : i + 60], model(x[i : i + 60] * m[i : i + 60],
                                                             m[i : i + 60]), m[i : i + 60])
                              for i in range(0, len(x), 60)])  # fmt: skip
    metrics = hole_metrics(comp.clamp(0, 1), x, m)
    return {f"{prefix}_hole_{k}": statistics.fmean(metrics[k]) for k in ("l1", "psnr", "ssim")}


def freeze_encoder_bn(model) -> None:
    """The second stage (Sec. 4.2): encoder BatchNorm layers use and keep their running
    statistics, and their affine parameters stop learning."""
    import torch

    for block in model.encoder:
        for mod in block.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.eval()
                mod.weight.requires_grad_(False)
                mod.bias.requires_grad_(False)


def train_pconv_mini(*, seed: int, budget: int | None, progress: bool) -> Trained:
    import time

    import torch
    from tqdm.auto import tqdm

    from sotazoo.papers.partialconv.loss import pconv_loss
    from sotazoo.papers.partialconv.repro import Patches, ReproConfig
    from sotazoo.train import seeded_model

    r = PConvRecipe(ksteps=budget or DEFAULT_KSTEPS)
    steps = r.ksteps * STEPS_PER_UNIT
    model = seeded_model("pconv_mini", seed)
    opt = torch.optim.Adam(model.parameters(), lr=r.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [steps // 2, steps * 3 // 4], gamma=0.5)
    data = Patches(ReproConfig(batch_size=r.batch_size), seed=seed)
    freeze_at = steps - int(steps * r.frozen_bn_share)
    log: dict = {"loss": [], "heldout": []}
    t0 = time.perf_counter()
    with tqdm(total=steps, desc="train pconv_mini", disable=not progress) as bar:
        for step in range(1, steps + 1):
            model.train()
            if step > freeze_at:
                freeze_encoder_bn(model)
            x, m = data.batch()
            total, _ = pconv_loss(model(x * m, m), x, m)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            sched.step()
            log["loss"].append(round(float(total.detach()), 5))
            if step % min(r.eval_every, steps) == 0:
                log["heldout"].append({"step": step, **_evaluate(model)})
            bar.update(1)
    metrics = dict(log["heldout"][-1]) | _evaluate(None, "biharmonic")
    metrics.pop("step")
    log["seconds"] = round(time.perf_counter() - t0, 1)
    return Trained(model=model.eval(), metrics={k: round(v, 4) for k, v in metrics.items()},
                   log={"recipe": asdict(r), **log})  # fmt: skip


RECIPES = {"pconv_mini": Recipe(train_pconv_mini, unit="thousand steps", default=DEFAULT_KSTEPS)}
