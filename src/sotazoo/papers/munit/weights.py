"""MUNIT checkpoints.

The official release (NVlabs/MUNIT USAGE.md: `edges2shoes.pt` and others, on Google Drive) has
no published digest, so it has no entry here: download it and load it by path,
`create_model("munit_edges2shoes", weights="edges2shoes.pt")` (convert.py reads its
{'a': gen_a, 'b': gen_b} layout).

Ours: `sotazoo train munit_mini --seed 0` (papers/munit/train.py), run on CPU: both generators of
the site's demo (edge maps of digits -> coloured digits, 32x32). The log beside the file records
the command, commit, machine, recipe, the losses every 50 iterations and the held-out scores
during training; a test scores the shipped file again. Transforms: RGB in [-1, 1] at 32 px, the
generators' tanh range, in and out.
"""

from sotazoo.weights import trained_here

WEIGHTS = (
    trained_here(
        "munit",
        "munit_mini",
        sha256="35e7a147776e85b1baeb98621f9349af1d1382d4c6f3b68bbd762db3607aae25",
        num_params=1_237_014,
        metrics={
            "heldout_proxy_fid": 2.4873860589728594,
            "heldout_diversity": 8.511440094203746,
            "heldout_content_top1": 69.08078193664551,
        },
        measured_on="the 359 held-out digits, never trained on, scored as the reproduction scores "
        "them (evaluate.Evaluator, style codes of seed 12345): proxy FID of the translations in "
        "per-colour-channel proxy features against the held-out digits painted with held-out "
        "colours; diversity, the mean feature distance between 5 translations of each of 100 "
        "edge maps; content top-1, the proxy classifier's digit accuracy on the translations",
        transforms={"size": 32, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},
    ),
)
