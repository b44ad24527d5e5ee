"""The paper's blind deblurring solver (Section 4, Algorithm 1): MAP with an L0 gradient prior
and the learned prior, by half-quadratic splitting, coarse to fine.

Energy (Eq. 4): ||I * k - B||^2 + gamma ||k||^2 + mu ||grad I||_0 + lambda f(I), with
lambda = mu = 0.004 and gamma = 2 (Section 6). Splitting (Eq. 7) adds alpha ||grad I - g||^2 +
beta ||I - u||^2, so that each sub-problem is easy:

- g (Eq. 10): the L0 hard threshold of Pan et al. 2014: g = grad I where |grad I|^2 >= mu / alpha,
  else 0 (both directions together);
- u (Eqs. 11-12): s_max = 10 gradient steps u <- u - eta [beta (u - I) + lambda df/du] from
  u = I, eta = 0.1, df/du by back-propagation through the classifier;
- I (Eq. 9): a closed form in the Fourier domain (periodic boundaries);
- k (Eq. 13): min ||grad I * k - grad B||^2 + gamma ||k||^2 in the Fourier domain, cut to the
  kernel's support, negative entries set to 0, normalised to sum 1.

Per pyramid level the I- and k-steps alternate `iter_max` = 5 times; the estimate is upsampled
to start the next level. Without the prior (lambda = 0, the paper's "L0 only" ablation of
Section 7.2) the u-step vanishes and the I-step is Pan et al.'s L0 restoration.

Ours, where the paper leaves it to its supplement or to earlier work (applied alike with and
without the prior): alpha and beta start at 2 mu and double up to 1e5 within each I-step (the
continuation of Pan et al.'s L0 code), beta equal to alpha; the pyramid shrinks by sqrt(1/2) per
level down to a 5x5 kernel, started from a 3x3 box; entries below 5 % of the kernel's largest are
set to 0 before normalising; the blurred image is padded by the kernel size with a linear
blend that makes it periodic (the idea of Liu and Jia's boundary handling); and the final
image is the L0 restoration with the final kernel and mu / 2 (the paper uses Pan et al.'s
L0 intensity-and-gradient deconvolution).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from sotazoo.errors import InputError


@dataclass(frozen=True, kw_only=True)
class SolverConfig:
    kernel_size: int = 15  # odd: the support of the estimated kernel
    lam: float = 0.004  # lambda, the learned prior's weight (0: without it)
    mu: float = 0.004  # mu, the L0 gradient weight
    gamma: float = 2.0  # gamma, the kernel's L2 weight
    eta: float = 0.1  # the u-step's step size
    s_max: int = 10  # u-steps per I-step iteration
    iter_max: int = 5  # I/k alternations per pyramid level
    weight_max: float = 1e5  # alpha and beta's continuation stops here
    level_ratio: float = math.sqrt(0.5)
    min_kernel: int = 5  # the coarsest level's kernel size
    prune: float = 0.05  # kernel entries below this share of the largest are set to 0
    final_weight: float = 0.01  # the final non-blind deconvolution's gradient weight
    per_pixel: bool = True  # lambda weighs f once per pixel of the scored image (module doc)

    def __post_init__(self) -> None:
        if self.kernel_size < 3 or self.kernel_size % 2 == 0:
            raise InputError(f"kernel_size must be odd and at least 3, got {self.kernel_size}")
        if min(self.mu, self.gamma, self.eta) <= 0 or self.lam < 0:
            raise InputError("mu, gamma and eta must be positive and lam non-negative")


@dataclass
class Deblurred:
    image: np.ndarray  # (H, W) float64, the final non-blind restoration
    kernel: np.ndarray  # (K, K) float64, non-negative, sums to 1
    levels: list[int]  # kernel size per pyramid level, coarse to fine


# ---------------------------------------------------------------- Fourier helpers


def psf2otf(k: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """The transfer function of kernel `k` on a periodic grid of `shape`: k zero-padded, its
    centre moved to (0, 0), 2-D FFT."""
    pad = torch.zeros(shape, dtype=k.dtype)
    kh, kw = k.shape
    pad[:kh, :kw] = k
    pad = torch.roll(pad, (-(kh // 2), -(kw // 2)), (0, 1))
    return torch.fft.fft2(pad)


def otf2psf(otf: torch.Tensor, size: int) -> torch.Tensor:
    """The (size, size) centred kernel of a transfer function (the inverse of `psf2otf`)."""
    k = torch.fft.ifft2(otf).real
    k = torch.roll(k, (size // 2, size // 2), (0, 1))
    return k[:size, :size]


def grad(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences with periodic boundaries: (d/dx, d/dy)."""
    return torch.roll(x, -1, 1) - x, torch.roll(x, -1, 0) - x


def _diff_otfs(shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The transfer functions of `grad`'s two differences."""
    dx = torch.zeros(shape, dtype=torch.float64)
    dx[0, 0], dx[0, -1] = -1.0, 1.0
    dy = torch.zeros(shape, dtype=torch.float64)
    dy[0, 0], dy[-1, 0] = -1.0, 1.0
    return torch.fft.fft2(dx), torch.fft.fft2(dy)


def wrap_pad(b: np.ndarray, pad: int) -> np.ndarray:
    """`b` with `pad` rows and columns appended below and to the right, filled by a linear blend
    from its last row (column) to its first, so that the result is periodic without a jump."""
    h, w = b.shape
    t = (np.arange(1, 2 * pad + 1) / (2 * pad + 1))[:, None]
    rows = (1 - t) * b[-1][None] + t * b[0][None]
    b = np.concatenate([b, rows], 0)
    cols = (1 - t) * b[:, -1][None] + t * b[:, 0][None]
    return np.concatenate([b, cols.T], 1)


# ---------------------------------------------------------------- the sub-problems


def restore(b: torch.Tensor, k: torch.Tensor, cfg: SolverConfig, *, mu: float,
            prior: Callable[[torch.Tensor], torch.Tensor] | None, interior: tuple[int, int]):  # fmt: skip
    """The I-step with its g- and u-steps, alpha = beta doubling from 2 mu to `weight_max`.
    `prior` maps an image (h, w) to f; it sees only the `interior` (the unpadded image)."""
    shape = tuple(b.shape)
    fk = psf2otf(k, shape)
    fdx, fdy = _diff_otfs(shape)
    fb = torch.fft.fft2(b)
    data_num, data_den = fk.conj() * fb, fk.abs() ** 2
    grad_den = fdx.abs() ** 2 + fdy.abs() ** 2
    use_prior = prior is not None and cfg.lam > 0
    x, weight = b.clone(), 2 * mu
    while weight < cfg.weight_max:
        gx, gy = grad(x)
        keep = (gx**2 + gy**2) >= mu / weight  # Eq. 10
        gx, gy = gx * keep, gy * keep
        num = data_num + weight * (fdx.conj() * torch.fft.fft2(gx) + fdy.conj() * torch.fft.fft2(gy))
        den = data_den + weight * grad_den
        if use_prior:
            beta = min(weight, 1 / cfg.eta)  # beyond 1 / eta the u-step's gradient step diverges
            u = _u_step(x, beta, prior, cfg, interior)
            num, den = num + beta * torch.fft.fft2(u), den + beta
        x = torch.fft.ifft2(num / den).real  # Eq. 9
        weight *= 2
    return x


def _u_step(x: torch.Tensor, beta: float, prior, cfg: SolverConfig, interior) -> torch.Tensor:
    """Eq. 12: s_max gradient steps on beta ||u - I||^2 + lambda f(u) (the paper's step drops
    the 2 of the quadratic's derivative, as written), from u = I."""
    h, w = interior
    u = x.clone()
    lam = cfg.lam * (h * w if cfg.per_pixel else 1)
    for _ in range(cfg.s_max):
        inner = u[:h, :w].detach().float().requires_grad_(True)
        (df,) = torch.autograd.grad(prior(inner), inner)
        step = beta * (u - x)
        step[:h, :w] += lam * df.double()
        u = u - cfg.eta * step
    return u


def estimate_kernel(x: torch.Tensor, b: torch.Tensor, size: int, cfg: SolverConfig) -> torch.Tensor:
    """Eq. 13 on both gradient directions, then non-negative, pruned, normalised."""
    xs, bs = grad(x), grad(b)
    num = sum(torch.fft.fft2(a).conj() * torch.fft.fft2(c) for a, c in zip(xs, bs, strict=True))
    den = sum(torch.fft.fft2(a).abs() ** 2 for a in xs) + cfg.gamma
    k = otf2psf(num / den, size).clamp(min=0)
    k[k < cfg.prune * k.max()] = 0
    return _clean_kernel(k)


def _clean_kernel(k: torch.Tensor) -> torch.Tensor:
    """Keep the connected parts of the support (8-neighbours) that hold at least a tenth of the
    kernel's mass, move its centre of mass to the centre pixel (a translation the image absorbs)
    and normalise; the identity when nothing is left."""
    from scipy import ndimage

    a = k.numpy()
    labels, n = ndimage.label(a > 0, structure=np.ones((3, 3)))
    if n:
        mass = ndimage.sum(a, labels, range(1, n + 1))
        keep = np.isin(labels, 1 + np.flatnonzero(mass >= 0.1 * mass.sum()))
        a = a * keep
    size = a.shape[0]
    if not a.sum() > 0:
        a = np.zeros_like(a)
        a[size // 2, size // 2] = 1
        return torch.from_numpy(a)
    cy, cx = ndimage.center_of_mass(a)
    a = ndimage.shift(a, (size // 2 - cy, size // 2 - cx), order=1, mode="constant")
    a = np.clip(a, 0, None)
    return torch.from_numpy(a / a.sum())


def _resize(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(img))[None, None]
    return F.interpolate(t, size=shape, mode="bilinear", align_corners=False)[0, 0].numpy()


def _odd(n: float) -> int:
    n = max(3, int(math.floor(n)))
    return n if n % 2 else n + 1


# ---------------------------------------------------------------- the solver


def deblur(blurred: np.ndarray, cfg: SolverConfig = SolverConfig(),
           prior: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Deblurred:  # fmt: skip
    """Blind deblurring of a grayscale image (H, W) in [0, 1]. `prior`: f, from an (h, w)
    float32 image to the probability that it is blurred (`classifier_prior`); None, or
    cfg.lam = 0, solves without the learned prior."""
    b0 = np.asarray(blurred, dtype=np.float64)
    if b0.ndim != 2:
        raise InputError(f"expected a grayscale (H, W) image, got shape {b0.shape}")
    if not np.isfinite(b0).all():
        raise InputError("the blurred image has NaN or infinite values")
    if min(b0.shape) < 2 * cfg.kernel_size:
        raise InputError(f"a {b0.shape[0]}x{b0.shape[1]} image is too small for a "
                         f"{cfg.kernel_size}x{cfg.kernel_size} kernel")  # fmt: skip
    sizes = [cfg.kernel_size]
    while _odd(sizes[-1] * cfg.level_ratio) >= cfg.min_kernel and _odd(sizes[-1] * cfg.level_ratio) < sizes[-1]:
        sizes.append(_odd(sizes[-1] * cfg.level_ratio))
    sizes.reverse()
    k = torch.full((3, 3), 1 / 9, dtype=torch.float64)
    x = None
    for size in sizes:
        scale = size / cfg.kernel_size
        shape = (max(2 * size, round(b0.shape[0] * scale)), max(2 * size, round(b0.shape[1] * scale)))
        b_level = _resize(b0, shape) if shape != b0.shape else b0
        b = torch.from_numpy(wrap_pad(b_level, size))
        k = _resize_kernel(k, size)
        for _ in range(cfg.iter_max):
            x = restore(b, k, cfg, mu=cfg.mu, prior=prior, interior=shape)
            k = estimate_kernel(x, b, size, cfg)
    final = deconvolve(b0, k.numpy(), cfg.final_weight)
    return Deblurred(image=final.clip(0, 1), kernel=k.numpy(), levels=sizes)


def deconvolve(blurred: np.ndarray, kernel: np.ndarray, weight: float) -> np.ndarray:
    """Non-blind deconvolution with a Gaussian gradient prior: argmin ||k * I - B||^2 +
    weight ||grad I||^2, in closed form in the Fourier domain (B padded as `deblur` pads it)."""
    b0 = np.asarray(blurred, dtype=np.float64)
    b = torch.from_numpy(wrap_pad(b0, kernel.shape[0]))
    fk = psf2otf(torch.from_numpy(np.asarray(kernel, dtype=np.float64)), tuple(b.shape))
    fdx, fdy = _diff_otfs(tuple(b.shape))
    x = torch.fft.ifft2(fk.conj() * torch.fft.fft2(b)
                        / (fk.abs() ** 2 + weight * (fdx.abs() ** 2 + fdy.abs() ** 2))).real  # fmt: skip
    return x[: b0.shape[0], : b0.shape[1]].numpy()


def _resize_kernel(k: torch.Tensor, size: int) -> torch.Tensor:
    if k.shape[0] != size:
        k = F.interpolate(k[None, None], size=(size, size), mode="bilinear", align_corners=False)[0, 0]
    k = k.clamp(min=0)
    return k / k.sum()


def classifier_prior(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """f(I) of a `BlurClassifier` on one (h, w) image, for `deblur`."""
    model = model.eval()
    for p in model.parameters():
        p.requires_grad_(False)

    def f(img: torch.Tensor) -> torch.Tensor:
        return model.score(img[None, None])[0]

    return f
