"""Recipes for our demo weights: `sotazoo train edsr_baseline_x2`, then `edsr_baseline_x4`.

The real EDSR baseline (16 blocks, 64 channels, 1.4-1.5M parameters) trained with the paper's
loss and optimiser (L1, Adam, §4.2) on patches of the training photographs bundled with
scikit-image (`sotazoo.data.sr_photos`), for a CPU budget: `--budget` thousands of steps of batch
16 with 24 x 24 LR patches (the paper: 48 x 48, 10^6 steps on DIV2K), learning rate 2e-4
halved at 1/2 and 3/4 of the run. As in the paper (§3.2, Fig. 4), the x4 model starts from the
trained x2 one: everything but the upsampler is copied from `edsr_baseline_x2.sotazoo`.

On 2 CPU cores a step takes about 0.2 s (x2) and 0.35 s (x4). The same recipe runs unchanged on
a GPU (`sotazoo.train.sr` uses CUDA when torch sees one), where `--budget 300` (300k steps)
comes close to the paper's budget. Held-out PSNR/SSIM (astronaut, coffee, chelsea; Y channel,
border cropped) is logged beside bicubic's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sotazoo.train.recipes import Recipe, Trained

DEFAULT_KSTEPS = 2


@dataclass(frozen=True, kw_only=True)
class EDSRRecipe:
    ksteps: int = DEFAULT_KSTEPS  # thousands of steps (`sotazoo train --budget`)
    batch_size: int = 16  # §4.2
    lr_patch: int = 24  # §4.2: 48
    lr: float = 2e-4  # §4.2: 1e-4 (for 10^6 steps)
    init_from_x2: bool = True  # x3/x4 only (§3.2)


def _train(scale: int, *, seed: int, budget: int | None, progress: bool) -> Trained:
    from tqdm.auto import tqdm

    from sotazoo.data.sr_photos import held_out_pairs
    from sotazoo.registry import create_model
    from sotazoo.train import seeded_model
    from sotazoo.train.sr import (
        SRTrainConfig,
        evaluate_bicubic,
        recipe_summary,
        train_sr,
    )

    r = EDSRRecipe(ksteps=budget or DEFAULT_KSTEPS)
    model = seeded_model(f"edsr_baseline_x{scale}", seed)
    init = None
    if scale != 2 and r.init_from_x2:
        x2 = create_model("edsr_baseline_x2", weights="sotazoo")
        own = model.state_dict()
        shared = {k: v for k, v in x2.state_dict().items() if not k.startswith("tail.0.")}
        own.update(shared)  # the upsampler (tail.0) stays freshly initialised
        model.load_state_dict(own)
        init = "edsr_baseline_x2.sotazoo (all but the upsampler)"
    cfg = SRTrainConfig(steps=r.ksteps * 1000, batch_size=r.batch_size, lr_patch=r.lr_patch,
                        lr=r.lr, eval_every=500)  # fmt: skip
    pairs = held_out_pairs(scale)
    with tqdm(total=cfg.steps, desc=f"train edsr_baseline_x{scale}", disable=not progress) as bar:
        log = train_sr(model, cfg, scale=scale, seed=seed, test_pairs=pairs,
                       on_step=lambda: bar.update(1))  # fmt: skip
    metrics, fields = recipe_summary(log, evaluate_bicubic(pairs, scale), scale)
    log_fields = {"recipe": asdict(r), "init": init, **fields}
    return Trained(model=model.eval(), metrics=metrics, log=log_fields)


def train_x2(*, seed: int, budget: int | None, progress: bool) -> Trained:
    return _train(2, seed=seed, budget=budget, progress=progress)


def train_x4(*, seed: int, budget: int | None, progress: bool) -> Trained:
    return _train(4, seed=seed, budget=budget, progress=progress)


RECIPES = {
    name: Recipe(fn, unit="thousand steps", default=DEFAULT_KSTEPS)
    for name, fn in (("edsr_baseline_x2", train_x2), ("edsr_baseline_x4", train_x4))
}
