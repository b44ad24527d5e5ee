"""DeepLabv3+ checkpoints.

The official checkpoints (TensorFlow model zoo tarballs of about 439 MB) have no published
checksum, so they have no entry here: downloaded and unpacked by hand, the Xception-65 ones load
by path through `convert.py` (`weights=".../model.ckpt.index"`, images scaled to [-1, 1]). The
entry below is ours: `sotazoo train deeplabv3plus_mini --seed 0`, the site's demo model; its log beside the file
records the command, commit, machine, recipe, every loss and the test mIoU (a test recomputes
it).
"""

from sotazoo.weights import trained_here

WEIGHTS = (
    trained_here(
        "deeplabv3plus",
        "deeplabv3plus_mini",
        sha256="2ee478b7b31e596fa45774f014b621f6315ade56283a27d5b0094cffb5cbe773",
        num_params=345_253,
        metrics={"test_miou": 85.2351, "test_band_miou": 77.9827, "test_pixel_acc": 98.1628},
        measured_on="the reproduction's 200 synthetic 96 px test scenes (never trained on): "
        "mIoU over background and four shape classes, the same within 3 px of a label "
        "boundary, and pixel accuracy, in %",
        transforms={"size": 96, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0),
                    "classes": ("background", "square", "circle", "triangle", "cross")},  # fmt: skip
    ),
)
