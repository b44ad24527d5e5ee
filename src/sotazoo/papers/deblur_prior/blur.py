"""Motion blur made offline: random camera-shake kernels, blurred images, and the kernel
similarity that scores an estimated kernel.

Kernels (`shake_kernel`) are random camera-shake trajectories in the spirit of Boracchi and Foi
(2012), whose generator the paper uses for its 200 training kernels (Section 3.3): a point
moves along a path whose turning rate drifts smoothly (curvature that wanders and relaxes toward
a straight line), whose speed varies slowly (the hand slows and speeds up: dwell makes bright
spots) and which rarely turns back abruptly; positions are splatted bilinearly onto a K x K
grid, centred on the centre of mass, and normalised to sum 1. `anxiety` in [0, 1] scales the
wandering, the speed changes and the chance of a turn (0: a straight line at constant speed).
Ours: the model and its constants are not Boracchi and Foi's code.

Blurred images (`blur`) are the sharp image convolved with the kernel where the kernel lies
wholly inside it ("valid"): a crop larger by K - 1 is blurred, so the blurred border is real
blur, not a wrap or a padding, plus Gaussian noise (sigma 0.01 in the paper's data).
"""

from __future__ import annotations

import numpy as np

from sotazoo.errors import InputError


def shake_kernel(size: int, rng: np.random.Generator, *, anxiety: float | None = None,
                 length: float | None = None, steps: int = 400) -> np.ndarray:  # fmt: skip
    """A (size, size) float64 camera-shake kernel, non-negative, summing to 1. `length`: the
    trajectory's length in pixels (default: uniform in [size / 3, size - 2]); `anxiety` in
    [0, 1] (default uniform in [0, 1]): how much the direction wanders and how often it turns."""
    if size < 3 or size % 2 == 0:
        raise InputError(f"a kernel size is odd and at least 3, got {size}")
    anxiety = float(rng.uniform(0, 1)) if anxiety is None else float(anxiety)
    length = float(rng.uniform(size / 3, size - 2)) if length is None else float(length)
    theta, omega = rng.uniform(0, 2 * np.pi), 0.0
    speed = np.exp(0.5 * anxiety * _smooth(rng.standard_normal(steps), 20))  # hand slows, speeds
    pos = np.zeros(steps, dtype=np.complex128)
    for t in range(1, steps):
        # the turning rate drifts smoothly (curvature), pulled back toward a straight line
        omega = 0.97 * omega + anxiety * 0.02 * rng.standard_normal()
        theta += omega
        if rng.uniform() < 0.004 * anxiety:  # an abrupt shake: back by about 180 degrees
            theta += np.pi + rng.uniform(-0.5, 0.5)
        pos[t] = pos[t - 1] + speed[t] * np.exp(1j * theta)
    seg = np.abs(np.diff(pos)).sum()
    pos = pos * (length / seg) if seg > 0 else pos
    return splat(pos - pos.mean(), size)


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    k = np.ones(width) / width
    return np.convolve(x, k, mode="same") * np.sqrt(width)


def splat(path: np.ndarray, size: int) -> np.ndarray:
    """Positions (complex x + iy, pixels, 0 = the centre) -> a normalised (size, size) kernel:
    each position shares its weight bilinearly among its four neighbouring pixels; positions
    beyond the grid are clipped into it."""
    c = size // 2
    x = np.clip(path.real + c, 0, size - 1 - 1e-9)
    y = np.clip(path.imag + c, 0, size - 1 - 1e-9)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    k = np.zeros((size, size))
    for dy, dx, w in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)),
                      (1, 1, fy * fx)):  # fmt: skip
        np.add.at(k, (np.minimum(y0 + dy, size - 1), np.minimum(x0 + dx, size - 1)), w)
    return k / k.sum()


def blur(sharp_large: np.ndarray, kernel: np.ndarray, noise: float,
         rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """(H + K - 1, W + K - 1) sharp -> (H, W) blurred (valid convolution) + N(0, noise^2)."""
    from scipy.signal import fftconvolve

    k = np.asarray(kernel, dtype=np.float64)
    if sharp_large.ndim != 2 or min(sharp_large.shape) < k.shape[0]:
        raise InputError(f"need a 2-D image larger than the {k.shape} kernel, got "
                         f"{sharp_large.shape}")  # fmt: skip
    b = fftconvolve(np.asarray(sharp_large, dtype=np.float64), k, mode="valid")
    return b + rng.normal(0, noise, b.shape) if noise else b


def kernel_similarity(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Hu and Yang's (2012) kernel similarity: the largest normalised cross-correlation of the
    two kernels over all relative shifts, in [0, 1] for non-negative kernels (1 = the same
    kernel up to a translation)."""
    from scipy.signal import correlate

    a, b = np.asarray(estimate, np.float64), np.asarray(truth, np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 0.0
    return float(correlate(a, b, mode="full").max() / (na * nb))
