"""Weights of the Relation Networks models.

There is no author release. Two entries:
- `rn_sort_of_clevr.kimhc6028`: the Sort-of-CLEVR RN of the most used public port
  (kimhc6028/relational-networks, `model/epoch_20_saved.pth`, July 2017, BSD-3-Clause), a
  pickled state dict read with `torch.load(weights_only=True)` and converted by `convert.py`
  (its sizes: 24-kernel convs, g = 4 x 256, f = 256, 256). Its accuracy below was measured by us
  with the command in `metrics_source`, on our generator; the port's README reports 89% / 99%
  for its best run.
- `rn_mini.sotazoo`: ours, `sotazoo train rn_mini --seed 0` (`train.py`), the browser demo's model;
  its log beside the file records the recipe, commit, machine and the held-out learning curve.
"""

from __future__ import annotations

from sotazoo.data.sort_of_clevr import ANSWERS, COLOURS
from sotazoo.weights import Weights, trained_here

_PORT_COMMIT = "3cbc9aa30fcb9c859ce2483fb73f2ddfdbef2247"
_SORT_OF_CLEVR = {"size": 75, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0),
                  "answers": ANSWERS, "colours": COLOURS}  # fmt: skip

WEIGHTS = (
    Weights(
        model="rn_sort_of_clevr",
        tag="kimhc6028",
        urls=(
            f"https://github.com/kimhc6028/relational-networks/raw/{_PORT_COMMIT}/model/"
            "epoch_20_saved.pth",
        ),
        sha256="b7ecc6b1904c67d4e4311d8ee3d2d3614723c21345d0cce2756daf757e0d1331",
        filename="rn_sort_of_clevr-kimhc6028-epoch_20_saved.pth",
        format="pth",
        converter="sotazoo.papers.relation_networks.convert:convert_state_dict",
        num_params=364_402,
        metrics={"sort_of_clevr_relational": 78.77, "sort_of_clevr_non_relational": 84.93},
        metrics_source="measured by us: 300 scenes of our generator (seed 12345) x 20 questions; "
        "on 150 scenes drawn by the port's own generator (OpenCV) it scores 77.1 / 83.9",
        recipe="kimhc6028/relational-networks main.py, 20 epochs, Adam lr 1e-4, batch 64",
        license="BSD-3-Clause (kimhc6028/relational-networks)",
        transforms=_SORT_OF_CLEVR,
    ),
)

# Ours: `sotazoo train rn_mini --seed 0`, run on CPU (29 minutes alone on 2 cores); the log beside
# the file records the command, commit, machine, recipe, wall time and held-out learning curve.
WEIGHTS += (
    trained_here(
        "relation_networks",
        "rn_mini",
        sha256="a809ed9d70620d0916a7f6064efc6a53e2aea7138ed39373677248fac0bc0629",
        num_params=92_018,
        metrics={"sort_of_clevr_relational": 72.35, "sort_of_clevr_non_relational": 62.8},
        measured_on="200 held-out scenes (seed 99999) x 20 questions, never trained on",
        transforms=_SORT_OF_CLEVR,
    ),
)
