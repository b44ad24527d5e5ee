"""Recipe for our demo weights: `sotazoo train rn_mini --seed 0`.

The reproduction's CNN+RN arm, trained longer: 9,800 generated Sort-of-CLEVR scenes (the paper's
training-set size, App. D) x 20 questions, Adam lr 1e-4, batch 64 (App. D), `epochs` passes over
the questions, held-out accuracy on the repro's 200 test scenes every 1,000 steps. On 2 CPU cores
a step takes about 0.1 s; the same recipe runs unchanged on a GPU (`CUDA_VISIBLE_DEVICES`
selects it), where more epochs are cheap.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sotazoo.data.sort_of_clevr import ANSWERS, COLOURS, make_sort_of_clevr
from sotazoo.papers.relation_networks.repro import (
    TEST_SEED,
    ReproConfig,
    as_tensors,
    train_arm,
)
from sotazoo.train.recipes import Recipe, Trained


@dataclass(frozen=True, kw_only=True)
class RNRecipe:
    n_train_images: int = 9800
    epochs: int = 6
    batch_size: int = 64
    lr: float = 1e-4
    eval_every: int = 1000


def train_rn_mini(*, seed: int, budget: int | None, progress: bool) -> Trained:
    from tqdm.auto import tqdm

    r = RNRecipe(**({"epochs": budget} if budget else {}))
    steps = r.epochs * r.n_train_images * 20 // r.batch_size
    cfg = ReproConfig(n_train_images=r.n_train_images, steps=steps, batch_size=r.batch_size,
                      lr=r.lr, eval_every=r.eval_every)  # fmt: skip
    train = as_tensors(make_sort_of_clevr(r.n_train_images, seed=1000 + seed))
    test = as_tensors(make_sort_of_clevr(cfg.n_test_images, seed=TEST_SEED))
    with tqdm(total=steps, desc="train rn_mini", disable=not progress) as bar:
        out = train_arm("rn", cfg, train, test, seed, on_step=lambda: bar.update(1),
                        on_eval=lambda _, p: bar.set_postfix(rel=p["relational"],
                                                             non=p["non_relational"]))  # fmt: skip
    return Trained(
        model=out["model"].eval(),
        metrics={
            "sort_of_clevr_relational": round(out["relational"], 2),
            "sort_of_clevr_non_relational": round(out["non_relational"], 2),
        },
        log={
            "recipe": asdict(r),
            "steps": steps,
            "held_out": f"{cfg.n_test_images} scenes of seed {TEST_SEED}, 20 questions each",
            "curve": out["curve"],
            "answers": list(ANSWERS),
            "colours": list(COLOURS),
        },
    )


RECIPES = {"rn_mini": Recipe(train_rn_mini, unit="epochs", default=RNRecipe.epochs)}
