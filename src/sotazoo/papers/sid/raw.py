"""Raw data for SID: packing a sensor's mosaic into channels as the official code does, the
amplification ratio, and a simulator that turns an sRGB photograph into the short-exposure raw
of the same scene, so that the reproduction needs no raw files.

Packing (official `pack_raw`): the black level is subtracted, the range scaled to [0, 1] by
(white - black), and the mosaic rearranged into channels. Bayer (Sony, black 512, white 16383):
the 2x2 cell's (0, 0), (0, 1), (1, 1), (1, 0) sites, i.e. R, G, B, G for an RGGB sensor, at half
resolution. X-Trans (Fuji, black 1024): the 6x6 cell into 9 channels at a third of the
resolution, with the official code's site table (`XTRANS_SITES`). The input the network sees is
the packed raw times the ratio of exposures, capped at 300 (`amplify`), clipped at 1.

The simulator (`simulate_short_exposure`), ours, the reverse of a camera pipeline, in float64:
sRGB -> linear (the sRGB transfer function inverted), the white-balance gains undone (the raw
records the scene before white balance), an RGGB mosaic, scaled to the sensor's range and the
exposure divided by the ratio, then Poisson shot noise (electrons, `gain` digital numbers per
electron) and Gaussian read noise, the black level added, rounded and clipped to 14 bits. The
paper's long exposures are processed by LibRaw with the camera's white balance; the simulator's
ground truth is the sRGB photograph it started from.

Real files: `read_raw` reads a Bayer raw file through rawpy (LibRaw, an optional install),
turned to start at a red site, with its black and white levels; `pad_to` pads a packed raw to the
sides the network takes (multiples of 16).
"""

from __future__ import annotations

import numpy as np

from sotazoo.errors import InputError

SONY = {"black": 512, "white": 16383}  # train_Sony.py
FUJI = {"black": 1024, "white": 16383}  # train_Fuji.py
MAX_RATIO = 300  # test_Sony.py: ratio = min(t_long / t_short, 300)
WHITE_BALANCE = (2.0, 1.0, 1.6)  # the simulator's R, G, B gains: daylight-like
BAYER_SITES = ((0, 0), (0, 1), (1, 1), (1, 0))  # R, G, B, G of an RGGB cell
# X-Trans: per packed channel, the four (row, col) sites in the 6x6 cell that fill its 2x2
# output block at (0, 0), (0, 1), (1, 0), (1, 1) (channels 0-4), or the (row, col) offsets of a
# 3x3 grid read at every output pixel (channels 5-8) -- the official pack_raw's table.
XTRANS_SITES = (
    ((0, 0), (0, 4), (3, 1), (3, 3)),
    ((0, 2), (0, 5), (3, 2), (3, 5)),
    ((0, 1), (0, 3), (3, 0), (3, 4)),
    ((1, 2), (2, 5), (5, 2), (4, 5)),
    ((2, 2), (1, 5), (4, 2), (5, 5)),
)
XTRANS_GRID = ((1, 0), (1, 1), (2, 0), (2, 1))


def _normalised(raw: np.ndarray, black: int, white: int) -> np.ndarray:
    raw = np.asarray(raw)
    if raw.ndim != 2:
        raise InputError(f"a raw mosaic is 2-D (H, W), got shape {raw.shape}")
    return np.maximum(raw.astype(np.float32) - black, 0) / (white - black)


def pack_bayer(raw: np.ndarray, *, black: int = SONY["black"], white: int = SONY["white"]):
    """(H, W) Bayer mosaic -> (4, H/2, W/2) float32 in [0, 1]; H and W must be even."""
    im = _normalised(raw, black, white)
    h, w = im.shape
    if h % 2 or w % 2:
        raise InputError(f"a Bayer mosaic has even sides, got {h}x{w}")
    return np.stack([im[r::2, c::2] for r, c in BAYER_SITES])


def unpack_bayer(packed: np.ndarray) -> np.ndarray:
    """The inverse of `pack_bayer`'s rearrangement: (4, h, w) -> (2h, 2w) (values as given)."""
    _, h, w = packed.shape
    out = np.empty((2 * h, 2 * w), dtype=packed.dtype)
    for ch, (r, c) in enumerate(BAYER_SITES):
        out[r::2, c::2] = packed[ch]
    return out


def pack_xtrans(raw: np.ndarray, *, black: int = FUJI["black"], white: int = FUJI["white"]):
    """(H, W) X-Trans mosaic -> (9, H'/3, W'/3) float32, H' and W' the sides cut down to
    multiples of 6, with the official code's channel layout."""
    im = _normalised(raw, black, white)
    h, w = (im.shape[0] // 6) * 6, (im.shape[1] // 6) * 6
    out = np.zeros((9, h // 3, w // 3), dtype=np.float32)
    for ch, sites in enumerate(XTRANS_SITES):
        for (oy, ox), (r, c) in zip(((0, 0), (0, 1), (1, 0), (1, 1)), sites, strict=True):
            out[ch, oy::2, ox::2] = im[r:h:6, c:w:6]
    for k, (r, c) in enumerate(XTRANS_GRID):
        out[5 + k] = im[r:h:3, c:w:3]
    return out


def amplify(packed: np.ndarray, ratio: float) -> np.ndarray:
    """The network's input: the packed raw times the exposure ratio (capped at 300), clipped
    at 1."""
    if not ratio > 0:
        raise InputError(f"the amplification ratio must be positive, got {ratio}")
    return np.minimum(packed * min(float(ratio), MAX_RATIO), 1.0).astype(np.float32)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """The sRGB transfer function inverted (IEC 61966-2-1), on values in [0, 1]."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(np.asarray(x, dtype=np.float64), 0, 1)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def mosaic_rggb(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (H, W): each pixel keeps the colour its RGGB site records."""
    h, w, _ = rgb.shape
    out = np.empty((h, w), dtype=rgb.dtype)
    out[0::2, 0::2] = rgb[0::2, 0::2, 0]
    out[0::2, 1::2] = rgb[0::2, 1::2, 1]
    out[1::2, 0::2] = rgb[1::2, 0::2, 1]
    out[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return out


def simulate_short_exposure(
    srgb: np.ndarray,
    ratio: float,
    rng: np.random.Generator,
    *,
    wb: tuple[float, float, float] = WHITE_BALANCE,
    gain: float = 4.0,  # digital numbers per electron at this ISO
    read_noise: float = 6.0,  # digital numbers, std
    black: int = SONY["black"],
    white: int = SONY["white"],
) -> np.ndarray:
    """The uint16 (H, W) Bayer raw of a short exposure of the scene in `srgb` ((H, W, 3) uint8,
    even sides), `ratio` times shorter than one that fills the sensor's range."""
    srgb = np.asarray(srgb)
    if srgb.ndim != 3 or srgb.shape[2] != 3 or srgb.shape[0] % 2 or srgb.shape[1] % 2:
        raise InputError(f"expected an (H, W, 3) image with even sides, got {srgb.shape}")
    linear = srgb_to_linear(srgb / 255.0) / np.asarray(wb)  # the scene before white balance
    signal = mosaic_rggb(linear) * (white - black) / ratio  # digital numbers above black
    electrons = rng.poisson(np.maximum(signal, 0) / gain)
    noisy = electrons * gain + rng.normal(0, read_noise, signal.shape) + black
    return np.clip(np.round(noisy), 0, white).astype(np.uint16)


def pad_to(packed: np.ndarray, multiple: int = 16) -> tuple[np.ndarray, tuple[int, int]]:
    """Pad a packed raw (C, h, w) at the bottom and right, by reflection, to sides that are
    multiples of `multiple` (the network's 16); returns it and the original (h, w), to crop the
    output back (times the depth-to-space scale)."""
    packed = np.asarray(packed)
    if packed.ndim != 3:
        raise InputError(f"a packed raw is (C, h, w), got shape {packed.shape}")
    h, w = packed.shape[1:]
    ph, pw = -h % multiple, -w % multiple
    if ph >= h or pw >= w:
        raise InputError(f"a packed raw of {h}x{w} is too small to pad to a multiple of {multiple}")
    return np.pad(packed, ((0, 0), (0, ph), (0, pw)), mode="reflect"), (h, w)


def read_raw(path) -> tuple[np.ndarray, int, int]:
    """A Bayer raw file's mosaic, turned to start at a red site (RGGB), and its black and white
    levels, through rawpy (LibRaw; `pip install rawpy`, not installed with sotazoo): give them to
    `pack_bayer(mosaic, black=..., white=...)`. X-Trans and other non-2x2 sensors are refused."""
    try:
        import rawpy
    except ImportError as e:
        raise InputError("reading raw files needs rawpy: pip install rawpy") from e
    try:
        with rawpy.imread(str(path)) as r:
            mosaic = np.array(r.raw_image_visible, dtype=np.uint16)
            pattern = np.asarray(r.raw_pattern)
            desc = bytes(r.color_desc).decode("ascii")
            black = int(round(float(np.mean(r.black_level_per_channel))))
            white = int(r.white_level)
    except (rawpy.LibRawError, OSError) as e:
        raise InputError(f"{path}: not a raw file rawpy can read ({e})") from e
    if pattern.shape != (2, 2):
        raise InputError(f"{path}: a {pattern.shape} colour filter array, not a 2x2 Bayer one "
                         "(an X-Trans file: pack_xtrans needs its own reader)")  # fmt: skip
    colours = [[desc[pattern[y, x]] for x in range(2)] for y in range(2)]
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        if colours[dy][dx] == "R" and colours[1 - dy][1 - dx] == "B":
            h, w = mosaic.shape[0] - dy, mosaic.shape[1] - dx
            return mosaic[dy : dy + h - h % 2, dx : dx + w - w % 2], black, white
    raise InputError(f"{path}: colour filter array {colours} is not a Bayer R/G/B pattern")
