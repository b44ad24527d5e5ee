"""ProGAN checkpoints.

The official release (the Google Drive folder of tkarras/progressive_growing_of_gans) holds
pickled TensorFlow networks (`karras2018iclr-*.pkl`) that need the authors' TF 1.x code to
unpickle; sotazoo reads no such file, so the paper's 1024x1024 models have no entry here.

The most used PyTorch port, facebookresearch/pytorch_GAN_zoo (torch.hub `PGAN`), publishes
CelebA-HQ generators grown to 256x256 and 512x512 (and 128x128 CelebA / DTD ones) at
https://dl.fbaipublicfiles.com/gan_zoo/PGAN/: `celebaHQ_s6_i80000-6196db68.pth`,
`celebaHQ16_december_s7_i96000-9c72988c.pth`, `celebaCropped_s5_i83000-2b0acc76.pth`,
`testDTD_s5_i96000-04efa39f.pth`. Their full sha256 is not known offline (the names carry only
a prefix), so like DBPN's they get no entry here: they load by path through `convert.py`, which
reads their layout and configuration (resolution, widths, latent length, the port's per-unit
bias and minibatch-stddev rule) and folds its gains into the official ones. A hub file nests
the networks (`{"config", "netG", "netD", "avgG"}`): `sotazoo.create_model("progan_1024",
weights="celebaHQ_s6_i80000-6196db68.pth")` reads it without running pickled code
(`convert.read_checkpoint`) and builds the averaged generator, `avgG`, at the file's resolution;
`convert.convert_state_dict(convert.read_gan_zoo_file(path), net="netG" | "netD")` gives the
others.

Ours: `sotazoo train progan_mini --seed 0` (papers/progan/train.py), run on CPU: the 16x16 grey
digit generator of the site's demo, grown 4 -> 8 -> 16, stored as the moving average of G's
weights at alpha = 1 (the keys of a `progan_mini()` built at full size). The log beside the file
records the command, commit, machine, recipe, losses and the proxy FID during training; a test
recomputes the final one from the shipped file. Transforms, for the site's `generate` widget:
the output's mean and std (the generator's [-1, 1] is shown as (x * 0.5 + 0.5) * 255, one
grey channel painted in all three).
"""

from sotazoo.weights import trained_here

WEIGHTS = (
    trained_here(
        "progan",
        "progan_mini",
        sha256="ea27cbaf6157f41b321a1af5bb4b5018f06d8b7cc8ed6e4132108087f332755b",
        num_params=171_361,
        metrics={"heldout_fid_proxy": 4.0119},
        measured_on="proxy FID (sotazoo.metrics.fid, the shipped digit classifier) of 1,000 "
        "samples of the EMA generator for fixed latents (sotazoo.train.gan.fixed_latents, seed "
        "12345) against the 359 held-out digits, never trained on",
        transforms={"output_mean": [0.5, 0.5, 0.5], "output_std": [0.5, 0.5, 0.5]},
    ),
)
