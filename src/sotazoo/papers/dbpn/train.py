"""Recipe for our demo weights: `sotazoo train dbpn_mini_x4`.

The reproduction's back-projection arm (non-dense DBPN, n0 = 32, nR = 16, T = 2, 150k
parameters), trained longer: a budget (`--budget`) of thousands of steps (default 4) of batch 16 with 16 x 16 LR
patches of the training photographs bundled with scikit-image, L1 loss and Adam as in the
official main.py but at 5e-4 (halved at 1/2 and 3/4 of the run) for the short budget. Held-out
PSNR/SSIM on Y (astronaut, coffee, chelsea) is logged beside bicubic's. The same recipe runs on
a GPU unchanged (`sotazoo.train.sr` uses CUDA when torch sees one).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sotazoo.train.recipes import Recipe, Trained

DEFAULT_KSTEPS = 4


@dataclass(frozen=True, kw_only=True)
class DBPNRecipe:
    ksteps: int = DEFAULT_KSTEPS  # thousands of steps (`sotazoo train --budget`)
    batch_size: int = 16  # official main.py
    lr_patch: int = 16  # official: 32 (HR patches of 64 x 64 here, 128 x 128 there)
    lr: float = 5e-4  # official: 1e-4 for 10^6 steps


def train_dbpn_mini_x4(*, seed: int, budget: int | None, progress: bool) -> Trained:
    from tqdm.auto import tqdm

    from sotazoo.data.sr_photos import held_out_pairs
    from sotazoo.train import seeded_model
    from sotazoo.train.sr import (
        SRTrainConfig,
        evaluate_bicubic,
        recipe_summary,
        train_sr,
    )

    r = DBPNRecipe(ksteps=budget or DEFAULT_KSTEPS)
    model = seeded_model("dbpn_mini_x4", seed)
    cfg = SRTrainConfig(steps=r.ksteps * 1000, batch_size=r.batch_size, lr_patch=r.lr_patch,
                        lr=r.lr, eval_every=1000)  # fmt: skip
    pairs = held_out_pairs(4)
    with tqdm(total=cfg.steps, desc="train dbpn_mini_x4", disable=not progress) as bar:
        log = train_sr(model, cfg, scale=4, seed=seed, test_pairs=pairs,
                       on_step=lambda: bar.update(1))  # fmt: skip
    metrics, fields = recipe_summary(log, evaluate_bicubic(pairs, 4), 4)
    return Trained(model=model.eval(), metrics=metrics, log={"recipe": asdict(r), **fields})


RECIPES = {
    "dbpn_mini_x4": Recipe(train_dbpn_mini_x4, unit="thousand steps", default=DEFAULT_KSTEPS)
}
