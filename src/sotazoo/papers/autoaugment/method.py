"""AutoAugment's operations, its published policies, and the per-image sampling that uses them.

Paper: Cubuk et al., "AutoAugment: Learning Augmentation Policies from Data" (arXiv 1805.09501).
Official code: tensorflow/models research/autoaugment (`augmentation_transforms.py`,
`policies.py`; PIL, CIFAR only) and the TF-TPU `models/official/efficientnet/autoaugment.py`.
Ours: both back-ends, the magnitude table, the sampling; no code is taken from either, nor from
torchvision or timm (tests/papers/test_autoaugment.py uses torchvision as the oracle).

The idea (§3). A policy is a list of sub-policies; a sub-policy is two operations, each an
(op, probability, magnitude bin) triple drawn from 16 ops, 11 probabilities and 10 magnitude
bins. To augment an image, pick one sub-policy uniformly, then run its two ops in order, each
with its probability. The search found 5 policies of 5 sub-policies per dataset; the published
policy is their concatenation, 25 sub-policies (Appendix tables). The ops themselves are PIL's
(`ImageOps`, `ImageEnhance`, `Image.transform`), as in the official code: what the search
learned is which ops, how likely and how strong.

Conventions, ours where the sources disagree (see `RANGES` for each op):
- Bin k of 0..9 maps linearly onto the paper's range, bin 0 and bin 9 on its two ends ("10
  uniformly spaced values", §3). The official code divides by PARAMETER_MAX = 10 instead, so its
  bin 9 is 90% of the range; `max_level=10` reproduces that.
- Signs (shear, translate, rotate) are drawn with probability 1/2 per op, as the official code
  does. Positive: shear as PIL's (1, m, 0, 0, 1, 0) (output x samples input x + m y); translate
  moves the content right / down; rotate is counter-clockwise.
- Pixel ranges are the paper's (translate 150, Cutout 60) read at 331 px and scaled to the
  image; the official CIFAR code uses 10 and 20 px at 32 px instead.
- Every random draw comes from the generator passed in (`random.Random` or `torch.Generator`),
  never from a global one. In a DataLoader, give each worker its own generator.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image, ImageEnhance, ImageOps
from torchvision.transforms import InterpolationMode

from sotazoo.errors import InputError
from sotazoo.papers.autoaugment.policies import POLICIES, SubPolicy

Img: TypeAlias = Image.Image | torch.Tensor  # PIL "L"/"RGB", or (C, H, W) uint8 / float in [0, 1]
Rng: TypeAlias = random.Random | torch.Generator

# The search space of §3 (and the appendix's table of operations), in the paper's order.
OPS = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "AutoContrast", "Invert",
       "Equalize", "Solarize", "Posterize", "Contrast", "Color", "Brightness", "Sharpness",
       "Cutout", "SamplePairing")  # fmt: skip
MAX_LEVEL = 9  # bins 0..9
# The side at which the paper's pixel ranges are read. The paper does not name it; 331 px is
# torchvision's reading (150/331 of the side) and AmoebaNet's ImageNet input size.
REFERENCE_SIZE = 331


@dataclass(frozen=True)
class OpRange:
    """An op's parameter at bin 0 (`start`) and at the top bin (`end`), linear in between."""

    start: float
    end: float
    signed: bool  # a random sign multiplies the value
    unit: str


_ENHANCE = OpRange(0.1, 1.9, False, "enhance factor (1 = identity)")
# Paper §3 ranges. Where the official CIFAR code (augmentation_transforms.py, "official") or the
# TF-TPU code (autoaugment.py, "TPU") differ, the comment says how.
RANGES: dict[str, OpRange] = {
    # official: PIL (1, level, 0, 0, 1, 0) at 32x32, as ours; torchvision: atan(level) degrees
    "ShearX": OpRange(0.0, 0.3, True, "shear coefficient"),
    "ShearY": OpRange(0.0, 0.3, True, "shear coefficient"),
    # paper: 150 px at 331; official: 10 px at 32 (int); TPU: 250 px at any size
    "TranslateX": OpRange(0.0, 150 / REFERENCE_SIZE, True, "fraction of the width, floored"),
    "TranslateY": OpRange(0.0, 150 / REFERENCE_SIZE, True, "fraction of the height, floored"),
    "Rotate": OpRange(0.0, 30.0, True, "degrees"),  # official: whole degrees (int)
    # paper [0, 256]; official and TPU: 256 - level * 25.6; bin 9 inverts every pixel
    "Solarize": OpRange(256.0, 0.0, False, "threshold: pixels >= it are inverted"),
    # The posterize gotcha. Paper: [4, 8] bits. Official: 4 - int(0.4 level) bits (4 down to 1,
    # outside the paper's range); TPU: int(0.4 level) bits (0 up to 3). Ours: the paper's range,
    # strength growing with the bin as for every other op: 8 bits at bin 0, 4 at bin 9, rounded.
    "Posterize": OpRange(8.0, 4.0, False, "bits kept, rounded"),
    # paper [0.1, 1.9], unsigned, bin 0 = 0.1 (official: 0.1 + 1.8 level / 10). torchvision and
    # timm's "Increasing" variants use 1 +- 0.9 level / 9 with a random sign instead.
    "Contrast": _ENHANCE,
    "Color": _ENHANCE,
    "Brightness": _ENHANCE,
    "Sharpness": _ENHANCE,
    # paper [0, 60] px; official: 20 px at 32 (int); TPU: 100 px at any size
    "Cutout": OpRange(0.0, 60 / REFERENCE_SIZE, False, "side, fraction of the shorter side"),
    # paper [0, 0.4]: "linearly add the image with another image ... with weight magnitude";
    # neither official code has it (nor torchvision). Ours: (1 - w) x + w x_other.
    "SamplePairing": OpRange(0.0, 0.4, False, "weight of the other image"),
}  # AutoContrast, Invert, Equalize take no magnitude; the tables still give them a bin.


def check_image(img: object, name: str = "image") -> None:
    """`InputError` naming the problem unless `img` is one image the ops take: a PIL "L" or
    "RGB" image, or a (C, H, W) tensor with 1 or 3 channels, uint8 or float in [0, 1]."""
    if isinstance(img, Image.Image):
        if img.mode not in ("L", "RGB"):
            raise InputError(f"{name}: PIL mode {img.mode!r}; convert it to 'RGB' or 'L' first")
        if min(img.size) < 1:
            raise InputError(f"{name}: empty image of size {img.size}")
        return
    if not isinstance(img, torch.Tensor):
        raise InputError(f"{name}: expected a PIL image or a (C, H, W) tensor, "
                         f"got {type(img).__name__}")  # fmt: skip
    if img.dim() != 3:
        hint = " (one image: augment a batch image by image)" if img.dim() == 4 else ""
        raise InputError(f"{name}: expected one (C, H, W) image, got shape "
                         f"{tuple(img.shape)}{hint}")  # fmt: skip
    if img.shape[0] not in (1, 3):
        raise InputError(f"{name}: expected 1 or 3 channels, got {img.shape[0]}")
    if min(img.shape[1:]) < 1:
        raise InputError(f"{name}: empty image of shape {tuple(img.shape)}")
    if img.dtype == torch.uint8:
        return
    if img.dtype not in (torch.float32, torch.float64):
        raise InputError(f"{name}: dtype {img.dtype}; expected uint8, or float in [0, 1]")
    bad = int((~torch.isfinite(img)).sum())
    if bad:
        raise InputError(f"{name}: {bad} NaN or infinite values")
    lo, hi = float(img.min()), float(img.max())
    if lo < 0 or hi > 1:
        raise InputError(f"{name}: float values in [{lo:g}, {hi:g}]; expected [0, 1] "
                         "(divide 8-bit values by 255)")  # fmt: skip


def _hw(img: Img) -> tuple[int, int]:
    return (img.height, img.width) if isinstance(img, Image.Image) else tuple(img.shape[-2:])


def magnitude(
    op: str, level: float, size: tuple[int, int] = (REFERENCE_SIZE, REFERENCE_SIZE),
    *, max_level: float = MAX_LEVEL,
) -> float | int | None:  # fmt: skip
    """The op's unsigned parameter at bin `level` for an image of `size` (H, W): degrees, pixels,
    bits, a factor, a threshold or a weight as `RANGES` says; None for ops without one."""
    if op not in OPS:
        raise ValueError(f"unknown AutoAugment op {op!r}")
    if not 0 <= level <= max_level:
        raise ValueError(f"magnitude bin {level} outside 0..{max_level}")
    r = RANGES.get(op)
    if r is None:
        return None
    v = r.start + (r.end - r.start) * level / max_level
    side = {"TranslateX": size[1], "TranslateY": size[0], "Cutout": min(size)}.get(op)
    if side is not None:  # whole pixels; the epsilon keeps exact products (150 at 331) exact
        return math.floor(v * side + 1e-9)
    return round(v) if op == "Posterize" else v


# The four enhance ops blend with a degenerate image (black, grey, the mean grey, a blur).
_PIL_ENHANCE = {
    "Contrast": ImageEnhance.Contrast,
    "Color": ImageEnhance.Color,
    "Brightness": ImageEnhance.Brightness,
    "Sharpness": ImageEnhance.Sharpness,
}
_TENSOR_ENHANCE = {
    "Contrast": TF.adjust_contrast,
    "Color": TF.adjust_saturation,
    "Brightness": TF.adjust_brightness,
    "Sharpness": TF.adjust_sharpness,
}


def _fill(img: Img, fill: int | Sequence[int]) -> tuple[int, ...]:
    channels = len(img.getbands()) if isinstance(img, Image.Image) else img.shape[-3]
    return tuple(fill) if isinstance(fill, Sequence) else (int(fill),) * channels


def _pil(img: Image.Image, op: str, v, sign: int, fill: tuple[int, ...], resample, center, other):
    color = fill[0] if len(fill) == 1 else fill
    if op in ("ShearX", "ShearY", "TranslateX", "TranslateY"):
        # Image.transform's data (a, b, c, d, e, f): output (x, y) samples input (ax+by+c, dx+ey+f)
        data = {"ShearX": (1, sign * v, 0, 0, 1, 0), "ShearY": (1, 0, 0, sign * v, 1, 0),
                "TranslateX": (1, 0, -sign * v, 0, 1, 0),
                "TranslateY": (1, 0, 0, 0, 1, -sign * v)}[op]  # fmt: skip
        return img.transform(img.size, Image.Transform.AFFINE, data, resample, fillcolor=color)
    if op == "Rotate":
        return img.rotate(sign * v, resample, fillcolor=color)
    if op == "Solarize":
        return ImageOps.solarize(img, v)
    if op == "Posterize":
        return ImageOps.posterize(img, v)
    if op == "Cutout":
        out = img.copy()
        out.paste(color, _cutout_box(img, v, center))
        return out
    if op == "SamplePairing":
        return Image.blend(img, other, v)  # img (1 - v) + other v
    return _PIL_ENHANCE[op](img).enhance(v)


def _tensor(img: torch.Tensor, op: str, v, sign: int, fill, interpolation, center, other):
    unit = 1 / 255 if img.is_floating_point() else 1  # parameters in uint8 units -> image units
    fill_f = [f * unit for f in fill]
    geometry = dict(interpolation=interpolation, fill=fill_f)
    if op in ("ShearX", "ShearY"):  # the shear of PIL's (1, m, 0, 0, 1, 0), about pixel (0, 0)
        deg = math.degrees(math.atan(sign * v))
        shear = [deg, 0.0] if op == "ShearX" else [0.0, deg]
        return TF.affine(img, 0.0, [0.0, 0.0], 1.0, shear, center=[0.0, 0.0], **geometry)
    if op in ("TranslateX", "TranslateY"):
        shift = [sign * v, 0] if op == "TranslateX" else [0, sign * v]
        return TF.affine(img, 0.0, shift, 1.0, [0.0, 0.0], **geometry)
    if op == "Rotate":
        return TF.rotate(img, sign * v, **geometry)
    if op == "Solarize":  # v2 refuses a threshold above the dtype's maximum; 256 inverts nothing
        return img.clone() if v > 255 else TF.solarize(img, v * unit)
    if op == "Posterize":
        return TF.posterize(img, v)
    if op == "Cutout":
        (y0, y1), (x0, x1) = _cutout_box(img, v, center, rows_cols=True)
        out = img.clone()
        out[..., y0:y1, x0:x1] = torch.tensor(fill_f, dtype=img.dtype).view(-1, 1, 1)
        return out
    if op == "SamplePairing":  # as PIL's blend: x + v (other - x), truncated for uint8
        if img.is_floating_point():
            return img + v * (other - img)
        mixed = img.float() + v * (other.float() - img.float())
        return mixed.clamp(0, 255).to(img.dtype)
    return _TENSOR_ENHANCE[op](img, v)


def _cutout_box(img: Img, side: int, center: tuple[float, float], *, rows_cols: bool = False):
    """A side x side square at `center` (fractions of H and W), clipped to the image (DeVries &
    Taylor's Cutout, whose centre may lie anywhere in the image)."""
    h, w = _hw(img)
    cy, cx = min(int(center[0] * h), h - 1), min(int(center[1] * w), w - 1)
    y0, x0 = max(cy - side // 2, 0), max(cx - side // 2, 0)
    y1, x1 = min(cy - side // 2 + side, h), min(cx - side // 2 + side, w)
    return ((y0, y1), (x0, x1)) if rows_cols else (x0, y0, x1, y1)


def apply_op(
    img: Img,
    op: str,
    level: float,
    *,
    sign: int = 1,
    center: tuple[float, float] = (0.5, 0.5),
    other: Img | None = None,
    fill: int | Sequence[int] = 128,
    interpolation: str = "nearest",
    max_level: float = MAX_LEVEL,
) -> Img:
    """One op at magnitude bin `level` on a PIL image or a (C, H, W) tensor (uint8, or float in
    [0, 1]). `sign` (+1 / -1) orients shear, translate and rotate; `center` places Cutout;
    `other` is SamplePairing's second image. `fill` (0..255) paints what geometry uncovers and
    Cutout's square: 128 as the TPU code (the official code fills with the dataset mean)."""
    if sign not in (1, -1):
        raise ValueError(f"sign must be +1 or -1, got {sign}")
    check_image(img)
    v = magnitude(op, level, _hw(img), max_level=max_level)
    if op == "SamplePairing":
        if other is None:
            raise InputError("SamplePairing needs `other`, an image of the same size")
        check_image(other, "other")
        if _hw(other) != _hw(img):
            raise InputError(f"SamplePairing: other is {_hw(other)}, the image {_hw(img)} (H, W)")
    if op == "Invert":
        return ImageOps.invert(img) if isinstance(img, Image.Image) else TF.invert(img)
    if op == "Equalize":
        return ImageOps.equalize(img) if isinstance(img, Image.Image) else TF.equalize(img)
    if op == "AutoContrast":
        return ImageOps.autocontrast(img) if isinstance(img, Image.Image) else TF.autocontrast(img)
    fill = _fill(img, fill)
    if isinstance(img, Image.Image):
        resample = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR}
        return _pil(img, op, v, sign, fill, resample[interpolation], center, other)
    return _tensor(img, op, v, sign, fill, InterpolationMode(interpolation), center, other)


@dataclass(frozen=True)
class Draws:
    """Every random choice for one image: replaying them reproduces the image exactly."""

    index: int  # the sub-policy
    apply: tuple[bool, ...]  # whether each of its ops runs
    signs: tuple[int, ...]  # +1 / -1 for each op (used by the signed ops)
    centers: tuple[tuple[float, float], ...]  # each op's Cutout centre, fractions of (H, W)


def _uniforms(rng: Rng, n: int) -> list[float]:
    if isinstance(rng, random.Random):
        return [rng.random() for _ in range(n)]
    if isinstance(rng, torch.Generator):
        return torch.rand(n, generator=rng, dtype=torch.float64).tolist()
    raise TypeError(f"rng must be a random.Random or a torch.Generator, not {type(rng).__name__}")


def draw(policy: Sequence[SubPolicy], rng: Rng) -> Draws:
    """One image's draws: a sub-policy uniformly, then per op u < p to apply it (as the official
    code's `random.random() < probability`: p = 0 never, p = 1 always), a sign and a Cutout
    centre. Always 1 + 4 * ops numbers from `rng`, whatever runs, so streams stay aligned."""
    u = _uniforms(rng, 1 + 4 * max(len(s) for s in policy))
    index = min(int(u[0] * len(policy)), len(policy) - 1)
    ops = policy[index]
    return Draws(
        index=index,
        apply=tuple(u[1 + 4 * i] < p for i, (_, p, _) in enumerate(ops)),
        signs=tuple(1 if u[2 + 4 * i] < 0.5 else -1 for i in range(len(ops))),
        centers=tuple((u[3 + 4 * i], u[4 + 4 * i]) for i in range(len(ops))),
    )


class AutoAugment:
    """Applies a published (or given) policy: per image, one sub-policy picked uniformly, each
    of its ops run with its probability at its magnitude bin.

    Args:
        policy: "imagenet", "cifar10", "svhn" (`POLICIES`) or a sequence of sub-policies.
        rng: a seed, a `random.Random` or a `torch.Generator`; the only source of randomness.
        fill: value (0..255) for uncovered pixels and Cutout.
        interpolation: "nearest" (the official code's PIL default) or "bilinear".
        max_level: the bin that maps to the end of each range; 10 reproduces the official code.
    """

    def __init__(
        self, policy: str | Sequence[SubPolicy] = "imagenet", *, rng: int | Rng,
        fill: int | Sequence[int] = 128, interpolation: str = "nearest",
        max_level: float = MAX_LEVEL,
    ) -> None:  # fmt: skip
        self.policy = POLICIES[policy] if isinstance(policy, str) else tuple(policy)
        for sub in self.policy:
            for op, p, level in sub:
                if op not in OPS or not 0 <= p <= 1 or not 0 <= level <= max_level:
                    raise ValueError(f"bad policy entry {(op, p, level)}")
        self.rng = random.Random(rng) if isinstance(rng, int) else rng
        self.fill, self.interpolation, self.max_level = fill, interpolation, max_level

    def draw(self) -> Draws:
        return draw(self.policy, self.rng)

    def apply(self, img: Img, draws: Draws, *, other: Img | None = None) -> Img:
        """The sub-policy `draws.index` with the given draws (replays a `draw()`)."""
        check_image(img)  # also when no op runs: a bad image never passes through unchecked
        for (op, _, level), run, sign, center in zip(
            self.policy[draws.index], draws.apply, draws.signs, draws.centers, strict=True
        ):
            if run:
                img = apply_op(img, op, level, sign=sign, center=center, other=other,
                               fill=self.fill, interpolation=self.interpolation,
                               max_level=self.max_level)  # fmt: skip
        return img

    def __call__(self, img: Img, *, other: Img | None = None) -> Img:
        """Augment one image; `other` is needed only by SamplePairing (another training image)."""
        return self.apply(img, self.draw(), other=other)


# The card's methods (`[[methods]]`): each published policy, as `sotazoo.create_method` builds it.
def autoaugment_imagenet(*, rng: int | Rng = 0, **options) -> AutoAugment:
    """The ImageNet policy (25 sub-policies, the paper's Appendix table)."""
    return AutoAugment("imagenet", rng=rng, **options)


def autoaugment_cifar10(*, rng: int | Rng = 0, **options) -> AutoAugment:
    """The CIFAR-10 policy (25 sub-policies)."""
    return AutoAugment("cifar10", rng=rng, **options)


def autoaugment_svhn(*, rng: int | Rng = 0, **options) -> AutoAugment:
    """The SVHN policy (25 sub-policies)."""
    return AutoAugment("svhn", rng=rng, **options)
