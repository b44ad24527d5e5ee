"""DBPN checkpoints.

The authors' PyTorch checkpoints (alterzero/DBPN-Pytorch README: a Google Drive folder with
DBPN_x2.pth, DBPN_x4.pth, DBPN_x8.pth and the NTIRE 2018 model) publish no hash and no direct
URL, so they have no entry here: downloaded by hand, they load by path through `convert.py`
(`sotazoo.create_model("ddbpn_x4", weights="DBPN_x4.pth")`), which reads the configuration off
the tensors. The entry below is ours: `sotazoo train dbpn_mini_x4 --seed 0`, the site's demo
model; its log beside the file records the command, commit, machine, recipe, losses and the
held-out PSNR/SSIM curve (a test recomputes the final values).
"""

from sotazoo.weights import trained_here

WEIGHTS = (
    trained_here(
        "dbpn",
        "dbpn_mini_x4",
        sha256="f6ebb796633c67b17c70eab4e6a11e5b7908ffa1e720efd2f4b81a4529f6a125",
        num_params=149_902,
        metrics={
            "heldout_psnr_y": 29.124,
            "heldout_ssim_y": 0.8202,
            "bicubic_psnr_y": 28.534,
            "bicubic_ssim_y": 0.8046,
        },
        measured_on="the held-out photographs astronaut, coffee, chelsea (PSNR/SSIM on Y, 4 "
        "pixels cropped), never trained on",
        transforms={"size": 64, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)},
    ),
)
