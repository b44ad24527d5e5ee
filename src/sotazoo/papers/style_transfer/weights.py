"""Style-transfer checkpoints.

- `adain_vgg19.official`: naoto0804/pytorch-AdaIN's release v0.0.0 (the PyTorch port of Huang &
  Belongie's Torch release, MIT licence): `decoder.pth`, and `vgg_normalised.pth` beside it (the
  normalised VGG-19 of Gatys et al. with the preprocessing 1x1 conv and reflection padding),
  cached as `adain_decoder.pth` and `adain_vgg_normalised.pth`. The
  publisher gives no checksum; the sha256 digests and the size are those several independent
  projects pin for these two assets (the release tag is mutable: a re-upload would fail the
  check rather than load).
- Johnson et al.'s networks from pytorch/examples (`saved_models.zip`: candy, mosaic,
  rain_princess, udnie) have no published digest and ship as a zip, so they have no entry: unzip
  them by hand and pass the `.pth` by path, `create_model("johnson_transformnet",
  weights="saved_models/candy.pth")` (`convert.py` drops their stale instance-norm statistics).
- torchvision's VGG-19 and VGG-16 (the loss networks of Gatys et al. and Johnson et al.) are not
  models of this card: `vgg.VGGFeatures` loads their `features.*` by key (`VGG_FILES` records
  where they come from, for the user who has them).
"""

from sotazoo.weights import Part, Weights, trained_here

ADAIN_RELEASE = "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0/"

WEIGHTS = (
    Weights(
        model="adain_vgg19",
        tag="official",
        urls=(ADAIN_RELEASE + "decoder.pth",),
        sha256="379ca41d59f3a37eed3599bbbc2560c19da5c458870a5ffd3a9dd41aa88f9472",
        filename="adain_decoder.pth",  # in the cache: named for the paper
        format="pth",
        parts=(Part(filename="adain_vgg_normalised.pth", urls=(ADAIN_RELEASE + "vgg_normalised.pth",),
                    sha256="804ca2835ecf7539f0cd2a7ac3c18ce81e6f8468969ae7117ac0c148d286bb4a"),),  # fmt: skip
        num_params=7_010_959,
        license="MIT (naoto0804/pytorch-AdaIN)",
        transforms={"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)},  # RGB in [0, 1]
        notes="Trained on MS-COCO contents and WikiArt styles (Huang & Belongie, Sec. 6); the "
        "encoder's file holds the whole VGG-19, of which relu4_1's part is kept.",
    ),
    # Ours (`sotazoo train johnson_mini --seed 0`, `sotazoo train adain_mini --seed 0`): the
    # site's demo; their logs beside the files record the command, commit, machine, recipe,
    # every loss and the held-out figures (a test recomputes them).
    trained_here(
        "style_transfer",
        "johnson_mini",
        sha256="6f62dafcaec492dae3978245e425b7f53b08fd9218f796605216b34ecc89aa14",
        num_params=271_299,
        metrics={"test_loss": 0.566, "test_content": 0.4164, "test_style": 0.1496},
        measured_on="16 crops of the three test photographs (never trained on), 64 px: "
        "train.johnson_objective with its one style (data.random_style(7)), on the raw output",
        transforms={"size": 64, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)},
    ),
    trained_here(
        "style_transfer",
        "adain_mini",
        sha256="05ef6438bc50f10ae2292ae5af6a188b939da455e7651781e05afe0de2989b42",
        num_params=70_243,
        metrics={"test_style_unseen": 0.05339},
        measured_on="16 crops of the three test photographs, each with one of 16 styles no "
        "network was trained on, 64 px: AdaIN's style loss (means and stds at relu1_1 to "
        "relu3_1, weight 10) of the raw output",
        transforms={"size": 64, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)},
    ),
)

# torchvision's ImageNet VGG files: the full digests are third parties' (torchvision checks the
# 8-hex prefix in the name); sizes from torchvision's weights metadata.
VGG_FILES = {
    "vgg19": ("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
              "dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44"),
    "vgg16": ("https://download.pytorch.org/models/vgg16-397923af.pth",
              "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0"),
}  # fmt: skip
