"""DPIG checkpoints.

The official release (`Market1501_models.zip`, `DF_models.zip`: TensorFlow checkpoints with no
published digest) has no entry here: unpack it by hand and load stage I by path, as convert.py
says (it reads the TensorFlow checkpoint without TensorFlow).

Ours: `sotazoo train dpig_mini --seed 0` (papers/disentangled_person/train.py), run on CPU:
stage I of the site's demo, trained with the L1 term alone on 1,024 synthetic persons. The log
beside the file records the command, commit, machine, recipe and the losses every 100 steps; a
test scores the shipped file again. Transforms: RGB in [-1, 1] (the images the persons are drawn
as), in and out.
"""

from sotazoo.weights import trained_here

WEIGHTS = (
    trained_here(
        "disentangled_person",
        "dpig_mini",
        sha256="5593c4f7bbd57e9bb0f506b3d98b8ee2e64ea82faa5f4056d66b4cc1046df795",
        num_params=1_440_579,
        metrics={"heldout_l1": 0.217},
        measured_on="128 held-out synthetic persons (make_persons seed 99999, never trained on), "
        "each reconstructed from its own image and pose: the mean absolute error per pixel and "
        "channel in [-1, 1], of the raw output",
        transforms={"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},
    ),
)
