"""SAGAN checkpoints.

The official repository (brain-research/self-attention-gan) releases no trained weights. The
most used port, open-mmlab/mmagic, publishes whole-GAN checkpoints (configs/sagan/metafile.yml
at 0a560bba; FID/IS as mmagic measured them), all under
https://download.openmmlab.com/mmediting/sagan/ :
- 128x128 ImageNet, trained by mmagic (its `norm_eps` 1e-4, BigGAN/StudioGAN CBN):
  sagan_imagenet1k_128_Glr1e-4_Dlr4e-4_ndisc1_b32x4_woReLUinplace_fid-iter950000_20210730_163431-d7916963.pth
  (FID 34.78, IS 28.49), and, with an EMA generator and `norm_eps` 1e-5,
  sagan_128_woReLUinplace_noaug_bigGAN_imagenet1k_b32x8_Glr1e-4_Dlr-4e-4_ndisc1_20210818_210232-3f5686af.pth
  (FID 12.83, IS 69.54);
- 128x128 ImageNet converted from StudioGAN (RGB output; mmagic flips it with `rgb_to_bgr`):
  sagan_128_imagenet1k_convert-studio-rgb_20210730_153357-eddb0d1d.pth (FID 40.12, IS 27.37);
- 32x32 CIFAR-10, of which only the generator converts (convert.py says why):
  sagan_cifar10_32_lr2e-4_ndisc5_b64x1_woReUinplace_fid-iter480000_20210730_125449-d50568a4.pth,
  sagan_cifar10_32_lr2e-4_ndisc5_b64x1_wReLUinplace_fid-iter460000_20210730_125155-cbefb354.pth,
  sagan_32_cifar10_convert-studio-rgb_20210730_153321-080da7e2.pth.
Their full sha256 is unknown offline (the names carry only a prefix), so, as for DBPN, they have
no entry here: download one and load it by path, `create_model("sagan_128", weights=path)`,
which goes through convert.py (the EMA generator where the file has one; the discriminator via
`convert_state_dict(sd, part="discriminator")`).

Ours: `sotazoo train sagan_mini --seed 0` (papers/sagan/train.py), run on CPU: the conditional
16x16 digit generator of the site's demo, stored with its spectral-norm parametrization (the
weights before normalisation and the power-iteration vectors u, v), as `sagan_mini` builds it.
The log beside the file records the command, commit, machine, recipe, losses and the proxy FID
during training; a test recomputes the final one from the shipped file. Transforms, for the
site's `generate` widget: the ten digit classes as labels, and the output's mean and std (the
tanh range [-1, 1] is shown as (x * 0.5 + 0.5) * 255).
"""

from sotazoo.data import DIGIT_CLASSES
from sotazoo.weights import trained_here

WEIGHTS = (
    trained_here(
        "sagan",
        "sagan_mini",
        sha256="ce1923ee6bc064e0e6d089056c3cbc4b537508d5c04d8b39c18f580c785fdbea",
        num_params=293_122,
        metrics={"heldout_proxy_fid": 0.6622},
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
