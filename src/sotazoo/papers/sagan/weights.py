"""SAGAN checkpoints.

The official repository (brain-research/self-attention-gan) releases no trained weights, and no
port is widely used, so the paper's 128x128 ImageNet models have no entry here.

Ours: `sotazoo train sagan_mini --seed 0` (papers/sagan/train.py), run on CPU: the conditional
16x16 digit generator of the site's demo, stored with its spectral-norm parametrization (the
weights before normalisation and the power-iteration vectors u, v), as `sagan_mini` builds it.
The log beside the file records the command, commit, machine, recipe, losses and the proxy FID
during training; a test recomputes the final one from the shipped file. Transforms, for the
site's `generate` widget: the ten digit classes as labels, and the output's mean and std (the
tanh range [-1, 1] is shown as (x * 0.5 + 0.5) * 255).
"""

from sotazoo.data.digits import DIGIT_CLASSES
from sotazoo.weights import trained_here

WEIGHTS = (
    trained_here(
        "sagan",
        "sagan_mini",
        sha256="1e67e6f00d8bc109873961e48fe52c4c86af9c7129a73c43f744b74f330674cb",
        num_params=293_122,
        metrics={"heldout_proxy_fid": 0.5329},
        measured_on="proxy FID (sotazoo.metrics.fid, the shipped digit classifier) of 1,000 "
        "samples from fixed latents (seed 12345, 100 per class) against the 359 held-out digits, "
        "never trained on",
        transforms={
            "classes": DIGIT_CLASSES,
            "output_mean": [0.5, 0.5, 0.5],
            "output_std": [0.5, 0.5, 0.5],
        },
    ),
)
