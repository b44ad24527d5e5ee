"""PSNR and SSIM as super-resolution papers report them.

The convention of the SR benchmarks (Set5, Set14, B100, Urban100; used by EDSR, DBPN and most
papers since SRCNN):

1. the SR output is quantised to uint8 first (the images are saved, then measured) — the caller
   rounds (`sotazoo.resize.to_uint8`, or `sr_metrics`, which does it);
2. both images go to Y of YCbCr, ITU-R BT.601 as MATLAB's `rgb2ycbcr` computes it
   (`rgb_to_y`), kept in float — MATLAB scripts that call `rgb2ycbcr` on uint8 images round Y
   to integers as well, which moves PSNR by a few hundredths of a dB;
3. `border` pixels are cropped from every side: `scale` for the benchmarks, EDSR's
   `calc_psnr` included. (EDSR measures its DIV2K validation images on RGB instead, cropping
   scale + 6: `psnr_rgb(sr, hr, scale=s, border=s + 6)`.)
4. PSNR = 10·log10(255² / MSE); SSIM is Wang et al.'s (2004) with an 11×11 Gaussian window of
   σ = 1.5, K1 = 0.01, K2 = 0.03, population (not sample) statistics, averaged over the
   positions where the window fits — the settings of their MATLAB `ssim_index`. scikit-image
   does the arithmetic.
"""

from __future__ import annotations

import numpy as np
import torch

from sotazoo.resize import to_uint8

__all__ = ["psnr_rgb", "psnr_y", "rgb_to_y", "sr_metrics", "ssim_y"]

# ITU-R BT.601 luma for R, G, B in [0, 255] (MATLAB's rgb2ycbcr): Y = 16 + (c · RGB) / 255.
_Y_COEFFS = (65.481, 128.553, 24.966)
# The Gaussian SSIM window is 11×11 (σ = 1.5, truncated at 3.5σ); smaller images cannot be scored.
_SSIM_WINDOW = 11


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Luma Y in [16, 235] of an RGB image in [0, 255] (BT.601, MATLAB's `rgb2ycbcr`).

    Args:
        img: H×W×3 array, uint8 or float in [0, 255].

    Returns:
        H×W float64 array, not rounded.
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"rgb_to_y expects an HxWx3 RGB array, got shape {img.shape}")
    rgb = img.astype(np.float64)
    # Elementwise, not a matrix product: BLAS would round differently by memory layout, and
    # two equal images must give bit-equal Y (PSNR +inf, not 330 dB).
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return 16.0 + (_Y_COEFFS[0] * r + _Y_COEFFS[1] * g + _Y_COEFFS[2] * b) / 255.0


def _check_pair(sr: np.ndarray, hr: np.ndarray, border: int, min_side: int = 1) -> None:
    if sr.shape != hr.shape:
        raise ValueError(f"sr shape {sr.shape} and hr shape {hr.shape} differ")
    if sr.ndim != 3 or sr.shape[-1] != 3:
        raise ValueError(f"expected HxWx3 RGB images, got shape {sr.shape}")
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    h, w = sr.shape[:2]
    if min(h, w) - 2 * border < min_side:
        raise ValueError(
            f"image {h}x{w} is too small for a border of {border}: "
            f"at least {min_side}x{min_side} pixels must remain after cropping"
        )


def _crop(img: np.ndarray, border: int) -> np.ndarray:
    if border == 0:
        return img
    return img[border:-border, border:-border]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import peak_signal_noise_ratio

    # Identical images have MSE 0 and PSNR +inf; say so without a divide-by-zero warning.
    with np.errstate(divide="ignore"):
        return float(peak_signal_noise_ratio(b, a, data_range=255))


def psnr_y(sr: np.ndarray, hr: np.ndarray, *, scale: int, border: int | None = None) -> float:
    """PSNR in dB on the Y channel, `border` pixels cropped from every side.

    Args:
        sr: the super-resolved image, H×W×3, uint8 or float in [0, 255]. Benchmarks measure the
            output after rounding it to uint8; a float image is measured as it is.
        hr: the ground truth, same shape, uint8 or float in [0, 255].
        scale: the SR factor.
        border: pixels cropped from each side; `scale` when not given.

    Returns:
        PSNR in dB, +inf when the cropped Y channels are identical.
    """
    border = scale if border is None else border
    _check_pair(sr, hr, border)
    return _psnr(_crop(rgb_to_y(sr), border), _crop(rgb_to_y(hr), border))


def psnr_rgb(sr: np.ndarray, hr: np.ndarray, *, scale: int, border: int | None = None) -> float:
    """PSNR in dB over the three RGB channels, `border` pixels cropped; see `psnr_y`."""
    border = scale if border is None else border
    _check_pair(sr, hr, border)
    a = _crop(np.asarray(sr, dtype=np.float64), border)
    b = _crop(np.asarray(hr, dtype=np.float64), border)
    return _psnr(a, b)


def ssim_y(sr: np.ndarray, hr: np.ndarray, *, scale: int, border: int | None = None) -> float:
    """SSIM on the Y channel, `border` pixels cropped, with Wang et al.'s MATLAB settings.

    Args:
        sr: the super-resolved image, H×W×3, uint8 or float in [0, 255] (see `psnr_y`).
        hr: the ground truth, same shape.
        scale: the SR factor.
        border: pixels cropped from each side; `scale` when not given.

    Returns:
        mean SSIM over the window positions inside the cropped image (1.0 when identical).
    """
    from skimage.metrics import structural_similarity

    border = scale if border is None else border
    _check_pair(sr, hr, border, min_side=_SSIM_WINDOW)
    a, b = _crop(rgb_to_y(sr), border), _crop(rgb_to_y(hr), border)
    return float(
        structural_similarity(
            a,
            b,
            data_range=255,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def tensor_to_uint8(x: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> H×W×3 uint8, rounded as MATLAB does (an SR output saved as
    an image, before it is scored)."""
    return to_uint8(x.detach().to("cpu", torch.float64).permute(1, 2, 0).numpy() * 255.0)


def sr_metrics(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> dict[str, float]:
    """Benchmark PSNR and SSIM on Y of a batch of SR outputs.

    Both tensors are quantised to uint8 (×255, rounded half away from zero, clipped) before
    measuring, as when the outputs are saved as images; `scale` pixels are cropped.

    Args:
        sr: (3, H, W) or (B, 3, H, W) float tensor in [0, 1], any device.
        hr: the ground truth, same shape.
        scale: the SR factor (and the border cropped).

    Returns:
        {"psnr": mean PSNR on Y in dB, "ssim": mean SSIM on Y}, means over the batch of the
        per-image values.
    """
    if sr.shape != hr.shape:
        raise ValueError(f"sr shape {tuple(sr.shape)} and hr shape {tuple(hr.shape)} differ")
    if sr.ndim == 3:
        sr, hr = sr[None], hr[None]
    if sr.ndim != 4 or sr.shape[1] != 3:
        raise ValueError(f"expected (3, H, W) or (B, 3, H, W) tensors, got {tuple(sr.shape)}")
    psnrs, ssims = [], []
    for s, h in zip(sr, hr, strict=True):
        s8, h8 = tensor_to_uint8(s), tensor_to_uint8(h)
        psnrs.append(psnr_y(s8, h8, scale=scale))
        ssims.append(ssim_y(s8, h8, scale=scale))
    return {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims))}
