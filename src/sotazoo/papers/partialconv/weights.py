"""Partial-convolution checkpoints.

The authors released no inpainting weights. mmagic's re-trained 256x256 networks publish only
the first 8 hex digits of their sha256, so they have no entry here: downloaded by hand, they
load by path through `convert.py`. The entry below is ours: `sotazoo train pconv_mini --seed 0`,
the site's demo model; its log beside the file records the command, commit, machine, recipe,
every loss and the held-out hole metrics beside scikit-image's biharmonic inpainting (a test
recomputes the final values).
"""

from sotazoo.weights import trained_here

WEIGHTS = (
    trained_here(
        "partialconv",
        "pconv_mini",
        sha256="ac64eb4a93f368413b337092bdd8b41aa3072eeffda49e3410b0da6a49ae52ac",
        num_params=212_580,
        metrics={
            "heldout_hole_l1": 4.8124,
            "heldout_hole_psnr": 23.6344,
            "heldout_hole_ssim": 0.6752,
            "biharmonic_hole_l1": 3.2881,
            "biharmonic_hole_psnr": 26.8309,
            "biharmonic_hole_ssim": 0.799,
        },
        measured_on="inside the holes of the reproduction's 180 held-out 64x64 crops of "
        "astronaut, coffee and chelsea (never trained on), with their fixed brush-stroke masks",
        transforms={"size": 64, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)},
        notes="at this scale scikit-image's biharmonic inpainting fills these small, smooth "
        "crops better (26.8 dB against 23.6 dB in the holes); the network shows the method, "
        "not the paper's quality",
    ),
)
