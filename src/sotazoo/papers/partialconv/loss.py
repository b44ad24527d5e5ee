"""The paper's loss (Sec. 3.3, Eq. 1-7 of the loss section), size-averaged as the authors'
errata says (each L1 term a mean over its tensor's elements, not a sum):

    L = L_valid + 6 L_hole + 0.05 L_perc + 120 (L_style_out + L_style_comp) + 0.1 L_tv

- L_valid, L_hole: L1 of the output's error on the known pixels (M) and in the hole (1 - M),
  each divided by the number of elements of the image (not of the region): N_Igt of Eq. 1-2.
- L_perc: for each feature layer p, L1 between Psi_p(I_out) and Psi_p(I_gt), and between
  Psi_p(I_comp) and Psi_p(I_gt); the paper's features are VGG-16's pool1, pool2 and pool3.
- L_style: L1 between Gram matrices K_p Psi_p^T Psi_p (K_p = 1 / (C_p H_p W_p)) of the output
  and of the ground truth, and of the composite and the ground truth.
- L_tv: L1 between horizontally and vertically adjacent pixels of I_comp where both lie in the
  hole dilated by one pixel (region P of the paper), divided by the image's number of elements.

`features` maps an image batch to its list of feature maps; the perceptual and style terms are
left out (0) when it is None, as in the laptop reproduction's ablation-free loss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.nn import functional as F

WEIGHTS = {"valid": 1.0, "hole": 6.0, "perceptual": 0.05, "style_out": 120.0,
           "style_comp": 120.0, "tv": 0.1}  # fmt: skip


def gram(x: torch.Tensor) -> torch.Tensor:
    """K_p Psi^T Psi: (B, C, C) Gram matrices of (B, C, H, W) features, K_p = 1 / (C H W)."""
    b, c, h, w = x.shape
    f = x.reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def dilated_hole(mask: torch.Tensor) -> torch.Tensor:
    """1 on the hole (mask 0) grown by one pixel in the 8 directions: the region P of L_tv."""
    hole = 1 - mask[:, :1]
    return (F.max_pool2d(hole, 3, stride=1, padding=1) > 0).to(mask.dtype)


def tv_loss(comp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 of adjacent differences of `comp` for pixel pairs that both lie in the dilated hole,
    divided by the number of elements of `comp`."""
    p = dilated_hole(mask)
    dx = (comp[..., :, 1:] - comp[..., :, :-1]).abs() * (p[..., :, 1:] * p[..., :, :-1])
    dy = (comp[..., 1:, :] - comp[..., :-1, :]).abs() * (p[..., 1:, :] * p[..., :-1, :])
    return (dx.sum() + dy.sum()) / comp.numel()


def pconv_loss(
    output: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    *,
    features: Callable[[torch.Tensor], Sequence[torch.Tensor]] | None = None,
    weights: dict[str, float] = WEIGHTS,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted total and each term (as floats). `mask` is 1 on known pixels, with one
    channel or the image's."""
    mask = mask.expand_as(target).to(target.dtype)
    comp = mask * target + (1 - mask) * output
    n = target.numel()
    terms = {
        "valid": (mask * (output - target)).abs().sum() / n,
        "hole": ((1 - mask) * (output - target)).abs().sum() / n,
        "tv": tv_loss(comp, mask),
    }
    if features is not None:
        with torch.no_grad():
            f_gt = [f.detach() for f in features(target)]
        f_out, f_comp = features(output), features(comp)
        terms["perceptual"] = sum(F.l1_loss(o, g) + F.l1_loss(c, g)
                                  for o, c, g in zip(f_out, f_comp, f_gt, strict=True))  # fmt: skip
        grams = [gram(g) for g in f_gt]
        terms["style_out"] = sum(F.l1_loss(gram(o), g) for o, g in zip(f_out, grams, strict=True))
        terms["style_comp"] = sum(F.l1_loss(gram(c), g)
                                  for c, g in zip(f_comp, grams, strict=True))  # fmt: skip
    total = sum(weights[k] * v for k, v in terms.items())
    return total, {k: float(v.detach()) for k, v in terms.items()}
