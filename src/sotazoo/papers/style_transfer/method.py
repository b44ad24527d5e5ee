"""The statistics, losses and the optimisation of the three families the review compares.

Style, in the review's reading, is a statistic of feature activations that ignores where things
are: Gatys et al. match Gram matrices G = F F^T / (C H W) of the (C, HW) features F at several
layers (a quadratic-kernel MMD between the two sets of feature vectors, Li et al. 2017); AdaIN
matches only each channel's mean and standard deviation. Content is the feature map itself at a
deeper layer. All three families minimise

    L = content_weight * sum_l ||F_l(y) - F_l(c)||^2 + style_weight * sum_l d(stats_l(y), stats_l(s))

and differ in what they optimise: Gatys et al. the pixels of y, for each pair, with L-BFGS
(`gatys`); Johnson et al. a network y = T(c) for one style s, trained once over many contents;
AdaIN a decoder y = D(AdaIN(E(c), E(s))) for any s, whose content target is the AdaIN output
itself and whose style distance is between means and standard deviations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.nn import functional as F

from sotazoo.errors import InputError

Features = Callable[[torch.Tensor, Sequence[str]], list[torch.Tensor]]


def gram(f: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C): F F^T / (C H W), the normalisation of the PyTorch example that
    Johnson et al.'s Eq. (4) also uses."""
    b, c, h, w = f.shape
    x = f.reshape(b, c, h * w)  # (B, C, HW)
    return x @ x.transpose(1, 2) / (c * h * w)


def mean_std(f: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and standard deviation over the positions, each (B, C, 1, 1):
    AdaIN's release takes the unbiased variance plus `eps` under the square root."""
    x = f.flatten(2)  # (B, C, HW)
    return x.mean(2)[..., None, None], (x.var(2, unbiased=True) + eps).sqrt()[..., None, None]


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """AdaIN(x, y) = sigma(y) (x - mu(x)) / sigma(x) + mu(y), per sample and channel (Eq. 8)."""
    if content.shape[:2] != style.shape[:2]:
        raise InputError(f"adain: content features {tuple(content.shape)} and style features "
                         f"{tuple(style.shape)} differ in batch or channels")  # fmt: skip
    mc, sc = mean_std(content, eps)
    ms, ss = mean_std(style, eps)
    return (content - mc) / sc * ss + ms


def content_loss(y: Sequence[torch.Tensor], target: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean squared feature difference, summed over the content layers."""
    return sum(F.mse_loss(a, b) for a, b in zip(y, target, strict=True))


def gram_style_loss(y: Sequence[torch.Tensor], style_grams: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean squared Gram difference, summed over the style layers with equal weights; a style
    Gram of batch 1 applies to every image of y."""
    return sum(F.mse_loss(gram(a), g.expand(a.shape[0], -1, -1)) for a, g in zip(y, style_grams, strict=True))


def stats_style_loss(y: Sequence[torch.Tensor], style: Sequence[torch.Tensor], eps: float = 1e-5) -> torch.Tensor:
    """AdaIN's style loss: squared differences of the channel means plus of the standard
    deviations, summed over the layers (Eq. 13)."""
    total = torch.zeros(())
    for a, b in zip(y, style, strict=True):
        ma, sa = mean_std(a, eps)
        mb, sb = mean_std(b, eps)
        total = total + F.mse_loss(ma, mb.expand_as(ma)) + F.mse_loss(sa, sb.expand_as(sa))
    return total


def gatys(content: torch.Tensor, style: torch.Tensor, features: Features, *, content_layers: Sequence[str],
          style_layers: Sequence[str], content_weight: float = 1.0, style_weight: float = 1e3,
          steps: int = 100, init: str = "content", seed: int = 0,
          progress: Callable[[int, float], None] | None = None) -> tuple[torch.Tensor, list[float]]:  # fmt: skip
    """Gatys et al.: optimise the pixels of the output with L-BFGS for `steps` iterations (calls
    of torch.optim.LBFGS with `max_iter=1`, sharing one history, each with a strong-Wolfe line
    search of at most 20 evaluations).

    Args:
        content: (1, 3, H, W) in [0, 1]; style: (1, 3, H', W') in [0, 1].
        features: `features(x, layers)` -> the activations of `layers` (a `VGGFeatures`).
        init: "content" (start from the content image) or "noise" (uniform, seeded).

    Returns:
        the stylised image (1, 3, H, W), clamped to [0, 1], and the total loss before every step.
    """
    if content.ndim != 4 or content.shape[0] != 1 or style.ndim != 4 or style.shape[0] != 1:
        raise InputError(f"gatys: one content and one style image (1, 3, H, W), got "
                         f"{tuple(content.shape)} and {tuple(style.shape)}")  # fmt: skip
    if init not in ("content", "noise"):
        raise InputError(f"gatys: init must be 'content' or 'noise', got {init!r}")
    with torch.no_grad():
        c_target = [f.detach() for f in features(content, content_layers)]
        s_grams = [gram(f).detach() for f in features(style, style_layers)]
    g = torch.Generator().manual_seed(seed)
    x0 = content.clone() if init == "content" else torch.rand(content.shape, generator=g)
    x = x0.requires_grad_(True)
    # no early stop on small gradients or changes (as neural-style's tolX = tolFun = -1): the
    # losses of small feature networks are small numbers
    opt = torch.optim.LBFGS([x], lr=1.0, max_iter=1, max_eval=20, history_size=50, line_search_fn="strong_wolfe",
                            tolerance_grad=0.0, tolerance_change=0.0)  # fmt: skip
    layers = list(dict.fromkeys([*content_layers, *style_layers]))
    losses: list[float] = []

    def closure() -> torch.Tensor:
        opt.zero_grad()
        out = dict(zip(layers, features(x, layers), strict=True))
        loss = content_weight * content_loss([out[k] for k in content_layers], c_target)
        loss = loss + style_weight * gram_style_loss([out[k] for k in style_layers], s_grams)
        loss.backward()
        return loss

    for step in range(steps):
        loss = float(opt.step(closure).detach())
        losses.append(loss)
        if progress is not None:
            progress(step, loss)
    return x.detach().clamp(0, 1), losses
