"""AutoAugment's published policies as data: 25 sub-policies of two (op, probability, magnitude
bin) triples per dataset. Read by `method.AutoAugment`; ops and bins as `method.OPS` and
`method.RANGES` define them."""

from __future__ import annotations

from typing import TypeAlias

PolicyOp: TypeAlias = tuple[str, float, int]  # (op, probability, magnitude bin)
SubPolicy: TypeAlias = tuple[PolicyOp, PolicyOp]

# The published policies (Appendix tables of the paper), transcribed from TF Model Garden
# official/vision/ops/augment.py (`policy_reduced_imagenet`, `policy_reduced_cifar10`,
# `policy_svhn`: "Result is from the AutoAugment paper"). CIFAR-10 rows 0-14 and 20-24 are also
# research/autoaugment/policies.py's exp0_0, exp1_0, exp2_0 and exp0_1 (the official release).
POLICIES: dict[str, tuple[SubPolicy, ...]] = {
    "imagenet": (
        (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)),
        (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)),
        (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)),
        (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
        (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)),
        (("Equalize", 0.4, 4), ("Rotate", 0.8, 8)),
        (("Solarize", 0.6, 3), ("Equalize", 0.6, 7)),
        (("Posterize", 0.8, 5), ("Equalize", 1.0, 2)),
        (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)),
        (("Equalize", 0.6, 8), ("Posterize", 0.4, 6)),
        (("Rotate", 0.8, 8), ("Color", 0.4, 0)),
        (("Rotate", 0.4, 9), ("Equalize", 0.6, 2)),
        (("Equalize", 0.0, 7), ("Equalize", 0.8, 8)),
        (("Invert", 0.6, 4), ("Equalize", 1.0, 8)),
        (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
        (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
        (("Color", 0.8, 8), ("Solarize", 0.8, 7)),
        (("Sharpness", 0.4, 7), ("Invert", 0.6, 8)),
        (("ShearX", 0.6, 5), ("Equalize", 1.0, 9)),
        (("Color", 0.4, 0), ("Equalize", 0.6, 3)),
        (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)),
        (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)),
        (("Invert", 0.6, 4), ("Equalize", 1.0, 8)),
        (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
        (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)),
    ),
    "cifar10": (
        (("Invert", 0.1, 7), ("Contrast", 0.2, 6)),
        (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
        (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
        (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.5, 8), ("Equalize", 0.9, 2)),
        (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
        (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
        (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
        (("Equalize", 0.6, 5), ("Equalize", 0.5, 1)),
        (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
        (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
        (("Equalize", 0.3, 7), ("AutoContrast", 0.4, 8)),
        (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
        (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
        (("Solarize", 0.5, 2), ("Invert", 0.0, 3)),
        (("Equalize", 0.2, 0), ("AutoContrast", 0.6, 0)),
        (("Equalize", 0.2, 8), ("Equalize", 0.6, 4)),
        (("Color", 0.9, 9), ("Equalize", 0.6, 6)),
        (("AutoContrast", 0.8, 4), ("Solarize", 0.2, 8)),
        (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
        (("Solarize", 0.4, 5), ("AutoContrast", 0.9, 3)),
        (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.9, 2), ("Solarize", 0.8, 3)),
        (("Equalize", 0.8, 8), ("Invert", 0.1, 3)),
        (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, 1)),
    ),
    "svhn": (
        (("ShearX", 0.9, 4), ("Invert", 0.2, 3)),
        (("ShearY", 0.9, 8), ("Invert", 0.7, 5)),
        (("Equalize", 0.6, 5), ("Solarize", 0.6, 6)),
        (("Invert", 0.9, 3), ("Equalize", 0.6, 3)),
        (("Equalize", 0.6, 1), ("Rotate", 0.9, 3)),
        (("ShearX", 0.9, 4), ("AutoContrast", 0.8, 3)),
        (("ShearY", 0.9, 8), ("Invert", 0.4, 5)),
        (("ShearY", 0.9, 5), ("Solarize", 0.2, 6)),
        (("Invert", 0.9, 6), ("AutoContrast", 0.8, 1)),
        (("Equalize", 0.6, 3), ("Rotate", 0.9, 3)),
        (("ShearX", 0.9, 4), ("Solarize", 0.3, 3)),
        (("ShearY", 0.8, 8), ("Invert", 0.7, 4)),
        (("Equalize", 0.9, 5), ("TranslateY", 0.6, 6)),
        (("Invert", 0.9, 4), ("Equalize", 0.6, 7)),
        (("Contrast", 0.3, 3), ("Rotate", 0.8, 4)),
        (("Invert", 0.8, 5), ("TranslateY", 0.0, 2)),
        (("ShearY", 0.7, 6), ("Solarize", 0.4, 8)),
        (("Invert", 0.6, 4), ("Rotate", 0.8, 4)),
        (("ShearY", 0.3, 7), ("TranslateX", 0.9, 3)),
        (("ShearX", 0.1, 6), ("Invert", 0.6, 5)),
        (("Solarize", 0.7, 2), ("TranslateY", 0.6, 7)),
        (("ShearY", 0.8, 4), ("Invert", 0.8, 8)),
        (("ShearX", 0.7, 9), ("TranslateY", 0.8, 3)),
        (("ShearY", 0.8, 5), ("AutoContrast", 0.7, 3)),
        (("ShearX", 0.7, 2), ("Invert", 0.1, 5)),
    ),
}


# The policy our laptop search ends with: the 5 best policies of seed 0's controller search in
# `sotazoo repro autoaugment --long` (results/long/autoaugment.json, from commit d38fa7f2a2),
# concatenated best first as in §3 (`search.final_policy`; a test checks it against that file).
# Under its seconds-long child the controller settled on Posterize, which barely changes the
# near-binary upsampled digits: a mild policy, as such a short reward favours.
SEARCHED: tuple[SubPolicy, ...] = (
    (('Posterize', 0.6, 9), ('Posterize', 0.2, 9)),
    (('Posterize', 0.2, 2), ('Posterize', 0.6, 9)),
    (('Posterize', 0.6, 9), ('Posterize', 0.6, 2)),
    (('Posterize', 0.6, 9), ('Posterize', 0.6, 9)),
    (('Posterize', 0.0, 9), ('Posterize', 0.0, 2)),
    (('ShearX', 0.1, 9), ('Posterize', 0.6, 9)),
    (('Posterize', 0.2, 2), ('Posterize', 0.2, 9)),
    (('Posterize', 0.6, 2), ('Posterize', 0.6, 9)),
    (('Posterize', 0.6, 7), ('Posterize', 0.6, 7)),
    (('Posterize', 0.7, 9), ('Brightness', 0.1, 9)),
    (('Posterize', 0.0, 9), ('Posterize', 0.6, 2)),
    (('Posterize', 0.6, 9), ('ShearY', 0.6, 2)),
    (('Posterize', 0.6, 9), ('Posterize', 0.6, 9)),
    (('Posterize', 0.6, 9), ('Posterize', 0.5, 1)),
    (('Posterize', 0.2, 2), ('Posterize', 0.0, 9)),
    (('AutoContrast', 0.6, 9), ('Posterize', 0.6, 7)),
    (('Posterize', 0.2, 9), ('Posterize', 0.7, 9)),
    (('Posterize', 0.6, 9), ('Posterize', 0.2, 2)),
    (('Posterize', 0.6, 9), ('Posterize', 0.2, 9)),
    (('Posterize', 0.7, 9), ('Posterize', 0.6, 9)),
    (('AutoContrast', 0.2, 9), ('Posterize', 0.2, 1)),
    (('Posterize', 0.6, 7), ('Brightness', 0.1, 9)),
    (('Posterize', 0.2, 9), ('Posterize', 0.6, 9)),
    (('Posterize', 0.6, 9), ('Posterize', 0.0, 9)),
    (('Posterize', 0.0, 9), ('Posterize', 0.6, 9)),
)
