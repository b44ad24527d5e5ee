"""Bicubic resizing two ways: MATLAB's `imresize`, and what torch/PIL compute.

Super-resolution benchmarks (Set5, Set14, B100, Urban100, DIV2K's bicubic track) make their
low-resolution inputs with MATLAB's `imresize(hr, 1/s, 'bicubic')`, and papers such as EDSR and
DBPN report their "Bicubic" baseline with the same function upscaling. Two bicubic resizers are
common in Python and they are *not* the same function:

- `imresize_matlab` is our numpy implementation of MATLAB's algorithm, written from its
  definition. Each output sample x (1-based) maps to the input coordinate
  u = x/s + 0.5·(1 − 1/s); it is the weighted sum of the inputs j within half a kernel width of
  u, with weights h(u − j) normalised to sum to 1. h is the cubic convolution kernel of Keys
  (1981) with a = −0.5 (`cubic`). When downscaling (s < 1) the kernel is stretched to
  h(x) = s·cubic(s·x) and its width 4 becomes 4/s — the antialiasing low-pass. Indices that
  fall outside the image are *mirrored* (…, 2, 1, 1, 2, …, n, n, n−1, …), so every tap keeps
  its weight. The output size is ceil(s·n).
- `imresize_torch` is `torch.nn.functional.interpolate(mode="bicubic", antialias=True)`, which
  is PIL's `Image.resize(..., BICUBIC)`: the same a = −0.5 kernel, stretched the same way when
  downscaling, but at the border the taps that fall outside are *dropped* and the remaining
  weights renormalised, and the output size is floor(s·n).

Where the kernel stays inside the image the two agree to rounding; where it reaches outside
(within about two pixels of the border, counted on the coarser of the two grids) they differ.
SR metrics crop only `scale` pixels, so part of that band is measured; `compare_bicubic` says
by how much it moves benchmark numbers (`python -m sotazoo.metrics.bicubic`). Torch's *default* bicubic
(antialias=False) is a third function: Keys' kernel with a = −0.75, never stretched.

MATLAB resizes a `uint8` image in `uint8`: it rounds (and saturates) after each of its two 1-D
passes. We return float64 and leave the final rounding to the caller (`to_uint8`);
`quantize_between_passes=True` reproduces the intermediate rounding too, and `bicubic_degrade`
uses it. (That per-pass rounding, with mirrored indices, is what matched R2015b's uint8 output
bit for bit in the check of fatheral/matlab_imresize. We have no MATLAB to check against here:
the tests check the definition by hand, and the nine border-independent values of a MATLAB
output printed in 2013, whose release evidently replicated the edge pixel instead of mirroring.)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "bicubic_degrade",
    "cubic",
    "imresize_matlab",
    "imresize_torch",
    "modcrop",
    "torch_bicubic",
    "to_uint8",
]

# MATLAB's bicubic kernel spans [-2, 2]: width 4 input samples (stretched by 1/s when downscaling).
_KERNEL_WIDTH = 4.0


def cubic(x: np.ndarray) -> np.ndarray:
    """The cubic convolution kernel of Keys (1981, Eq. 15) with a = -0.5.

    W(x) = (a+2)|x|³ − (a+3)|x|² + 1        for |x| ≤ 1,
    W(x) = a|x|³ − 5a|x|² + 8a|x| − 4a      for 1 < |x| ≤ 2,
    W(x) = 0                                otherwise.

    With a = −0.5 it interpolates (W(0) = 1, W(±1) = W(±2) = 0) and reproduces polynomials up to
    degree 2 exactly, which the tests use.
    """
    ax = np.abs(np.asarray(x, dtype=np.float64))
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def _contributions(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights and 0-based input indices, each (out_len, taps), of one 1-D resize.

    Row i holds the taps whose weighted sum is output sample i.
    """
    if scale < 1:
        # Antialiasing: stretch the kernel by 1/s (and scale it by s so it still integrates to 1).
        def kernel(d: np.ndarray) -> np.ndarray:
            return scale * cubic(scale * d)

        width = _KERNEL_WIDTH / scale
    else:
        kernel, width = cubic, _KERNEL_WIDTH

    # Output sample x (1-based) sits at input coordinate u: the pixel centres of both grids
    # line up at the image edges (x = 0.5 ↔ u = 0.5).
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    # Leftmost tap, and enough taps (width + 2) to cover the support wherever u falls.
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left[:, None] + np.arange(taps)  # 1-based, (out_len, taps)
    weights = kernel(u[:, None] - idx)
    weights /= weights.sum(axis=1, keepdims=True)

    # Symmetric reflection of out-of-range indices: the sequence 1..n, n..1 repeated, so that
    # index 0 reads pixel 1, index -1 reads pixel 2, index n+1 reads pixel n.
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    indices = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]

    # Drop the tap columns that weigh zero for every output sample (the kernel's support is
    # narrower than `taps` at most positions); this changes no value, only the work.
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


def _resize_axis(img: np.ndarray, axis: int, out_len: int, scale: float) -> np.ndarray:
    """Resize float64 `img` along one axis (the other axes ride along)."""
    weights, indices = _contributions(img.shape[axis], out_len, scale)
    src = np.moveaxis(img, axis, 0)  # (in_len, ...)
    out = np.zeros((out_len, *src.shape[1:]), dtype=np.float64)
    column = (-1,) + (1,) * (src.ndim - 1)  # one weight per output sample, broadcast
    # Accumulate tap by tap: memory stays at the output's size even for wide (×1/4) kernels.
    for k in range(weights.shape[1]):
        out += weights[:, k].reshape(column) * src[indices[:, k]]
    return np.moveaxis(out, 0, axis)


def imresize_matlab(
    img: np.ndarray,
    scale: float | None = None,
    *,
    output_shape: tuple[int, int] | None = None,
    quantize_between_passes: bool = False,
) -> np.ndarray:
    """MATLAB's `imresize(img, scale)` (default 'bicubic', antialiasing on), in numpy.

    Args:
        img: an H×W or H×W×C array, any real dtype; values are used as they are (a uint8 image
            is resized in [0, 255]).
        scale: the factor s applied to both height and width; the output is ceil(s·H)×ceil(s·W).
        output_shape: (height, width) instead of `scale`; the factor of each axis is then
            out/in, as in `imresize(img, [h w])`.
        quantize_between_passes: round and clip to [0, 255] after the first 1-D pass, as MATLAB
            does when `img` is uint8 (it resizes in uint8). With it, `to_uint8` of the result
            equals MATLAB's uint8 output; without it, all arithmetic stays in float64.

    Returns:
        float64 array of the new size, neither clipped nor rounded (use `to_uint8`).

    Raises:
        ValueError: if neither or both of `scale` and `output_shape` are given, a factor is not
            positive, or `img` is not 2-D or 3-D.
    """
    if img.ndim not in (2, 3):
        raise ValueError(f"imresize_matlab expects an HxW or HxWxC array, got shape {img.shape}")
    if (scale is None) == (output_shape is None):
        raise ValueError("give exactly one of scale and output_shape")
    in_hw = img.shape[:2]
    if scale is not None:
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        scales = (float(scale), float(scale))
        out_hw = tuple(math.ceil(scale * n) for n in in_hw)
    else:
        out_hw = tuple(int(n) for n in output_shape)
        if len(out_hw) != 2 or min(out_hw) < 1:
            raise ValueError(f"output_shape must be two positive sizes, got {output_shape}")
        scales = (out_hw[0] / in_hw[0], out_hw[1] / in_hw[1])

    # MATLAB resizes the axis with the smaller factor first (height first on a tie), which is
    # cheaper when shrinking and decides where the uint8 intermediate is rounded.
    order = sorted(range(2), key=lambda a: scales[a])
    out = np.asarray(img, dtype=np.float64)
    for step, axis in enumerate(order):
        out = _resize_axis(out, axis, out_hw[axis], scales[axis])
        if quantize_between_passes and step == 0:
            out = to_uint8(out).astype(np.float64)
    return out


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Convert to uint8 the way MATLAB's `uint8()` does: round half away from zero, saturate.

    numpy's `round` rounds half to even (2.5 -> 2); MATLAB gives 3. NaN becomes 0, as in MATLAB.
    """
    x = np.asarray(x, dtype=np.float64)
    rounded = np.sign(x) * np.floor(np.abs(x) + 0.5)
    return np.nan_to_num(np.clip(rounded, 0, 255), nan=0.0).astype(np.uint8)


def imresize_torch(img: np.ndarray, scale: float) -> np.ndarray:
    """Bicubic resize by torch (= PIL): `interpolate(mode="bicubic", antialias=True)`.

    Args:
        img: an H×W or H×W×C array, any real dtype.
        scale: the factor applied to both axes; the output is floor(s·H)×floor(s·W), and the
            sampling grid uses `scale` itself (`recompute_scale_factor=False`).

    Returns:
        float64 array, neither clipped nor rounded.
    """
    return torch_bicubic(img, scale, antialias=True)


def torch_bicubic(img: np.ndarray, scale: float, *, antialias: bool) -> np.ndarray:
    # antialias=False is torch's default bicubic: Keys' kernel with a = -0.75 (OpenCV's), never
    # stretched; antialias=True switches to PIL's a = -0.5 kernel, stretched when downscaling.
    import torch
    import torch.nn.functional as F

    if img.ndim not in (2, 3):
        raise ValueError(f"imresize_torch expects an HxW or HxWxC array, got shape {img.shape}")
    x = torch.from_numpy(np.asarray(img, dtype=np.float64))
    x = x[None, None] if x.ndim == 2 else x.permute(2, 0, 1)[None]  # (1, C, H, W)
    y = F.interpolate(
        x,
        scale_factor=scale,
        mode="bicubic",
        antialias=antialias,
        align_corners=False,
        recompute_scale_factor=False,
    )
    y = y[0, 0] if img.ndim == 2 else y[0].permute(1, 2, 0)  # (H', W'[, C])
    return np.ascontiguousarray(y.numpy())


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom and right edges so that height and width are multiples of `scale`."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def bicubic_degrade(hr_uint8: np.ndarray, scale: int) -> np.ndarray:
    """The LR image of the SR benchmarks: `imresize(modcrop(hr, s), 1/s)` in MATLAB, as uint8.

    This is how the Set5/Set14/B100/Urban100 LR files, DIV2K's bicubic track, and the EDSR and
    DBPN training pairs were made: crop HR to a multiple of the scale, shrink it with MATLAB's
    antialiased bicubic (uint8 in, so rounded after each pass), and store as uint8.

    Args:
        hr_uint8: the high-resolution image, H×W or H×W×C, uint8.
        scale: the integer SR factor s.

    Returns:
        uint8 array of size (H // s)×(W // s).
    """
    if hr_uint8.dtype != np.uint8:
        raise ValueError(f"bicubic_degrade expects a uint8 image, got {hr_uint8.dtype}")
    if scale < 1 or int(scale) != scale:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    hr = modcrop(hr_uint8, scale)
    if min(hr.shape[:2]) == 0:
        raise ValueError(f"image {hr_uint8.shape[:2]} is smaller than the scale {scale}")
    return to_uint8(imresize_matlab(hr, 1 / scale, quantize_between_passes=True))


# ---- how much the choice of bicubic moves the numbers ------------------------------------------
