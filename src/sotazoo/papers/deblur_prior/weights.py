"""Checkpoints of the learned deblurring prior.

The authors' MATLAB release (MatConvNet, on the first author's project page, not on GitHub) has
no published checksum and a layout we could not read, so it has no entry and no converter here.
The entry below is ours: `sotazoo train deblur_prior_mini --seed 0`, the site's demo model; its
log beside the file records the command, commit, machine, recipe, every loss and the held-out
accuracy at three scales (a test recomputes them).
"""

from sotazoo.weights import trained_here

WEIGHTS = (
    trained_here(
        "deblur_prior",
        "deblur_prior_mini",
        sha256="62b1ac1bf028e309a5d16ce37c729855f96de91d6b4c6c0fa238be38498a3adc",
        num_params=9_585,
        metrics={
            "heldout_acc_x1": 71.6667,
            "heldout_acc_x2": 69.1667,
            "heldout_acc_x4": 51.6667,
            "heldout_ratio": 0.5956,
        },
        measured_on="the reproduction's 60 held-out pairs of 64 px grayscale crops of astronaut, "
        "coffee and chelsea, clear and blurred (8-bit; never trained on): accuracy (%) at full "
        "size and shrunk by 2 and 4, and the mean f(clear) / f(blurred)",
        transforms={"size": 128, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0),
                    "classes": ("clear", "blurred")},  # fmt: skip
        notes="the page feeds RGB; the exported graph turns it to grayscale as scikit-image's "
        "rgb2gray does. A laptop-scale classifier: 72 % accuracy at full size where the paper's "
        "separates clear from blurred almost perfectly",
    ),
)
