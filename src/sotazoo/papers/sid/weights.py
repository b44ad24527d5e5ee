"""SID checkpoints.

The authors' TensorFlow checkpoints (Sony and Fuji, linked from their README's "Testing"
section) are on Google Drive with no published checksum, so they have no entry here: downloaded
by hand, they load by path through `convert.py`. The entry below is ours: `sotazoo train
sid_mini --seed 0`, the site's demo model; its log beside the file records the command, commit,
machine, recipe, every loss and the held-out PSNR/SSIM beside the traditional pipeline with
non-local means (a test recomputes the network's).
"""

from sotazoo.weights import trained_here

WEIGHTS = (
    trained_here(
        "sid",
        "sid_mini",
        sha256="8f71ebfd9e58989afeb535bcd4b81af0f1c4f85f05e3895cbd3ac52e74b39f46",
        num_params=485_868,
        metrics={
            "heldout_psnr": 21.9998,
            "heldout_ssim": 0.5625,
            "pipeline_nlm_psnr": 21.7614,
            "pipeline_nlm_ssim": 0.5557,
        },
        measured_on="the reproduction's 180 simulated short exposures (x100, x250, x300) of "
        "128 px crops of astronaut, coffee and chelsea (never trained on), against their sRGB "
        "crops",
        transforms={"size": 128, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)},
        notes="size is the raw mosaic's side (the packed input is 64x64); the network is "
        "0.24 dB PSNR above the traditional pipeline with non-local means on these crops, a "
        "laptop-scale model, not the paper's",
    ),
)
