"""Image pre-processing shared by Python and the site's browser demos.

The browser demos (`site/static/kit.mjs`) repeat these steps in JavaScript with the same
arithmetic, so that a demo's input tensor equals the one Python builds from the same file:

1. decode to 8-bit RGB by the rules below, scale to [0, 1] as float32;
2. centre-crop to a square of side min(H, W), offset floor((H - side) / 2);
3. resize to `size` x `size` with bilinear interpolation, half-pixel centres, no antialiasing
   (`torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`); skipped when the
   crop already has that size;
4. normalise per channel: (x - mean) / std; layout (1, 3, size, size).

Step 1's rules are those of Chromium's `createImageBitmap` drawn on an opaque 2D canvas (what
`decodeImage` does), checked value for value in headless Chromium
(`tests/browser/test_image_formats.py`) on PNG (1- to 16-bit, greyscale, palette, alpha, tRNS,
animated), JPEG (grey, RGB, progressive, CMYK, every EXIF orientation), GIF, WebP, BMP, ICO and
opaque AVIF:

- size: at most `MAX_IMAGE_PIXELS` pixels, read from the file's header before any pixel is
  decoded (`InputError` otherwise; the browser checks the same header size);
- orientation: the EXIF orientation tag is applied, as browsers (and photo viewers) do;
- 16-bit samples keep their high byte, v >> 8 (libpng's strip_16, what Chromium does and what
  Pillow does itself for 16-bit RGB(A) PNGs); 1-, 2- and 4-bit greyscale scale up to 0..255;
- greyscale is copied to R, G and B; palette images take their palette's colours;
- CMYK (Adobe JPEGs) becomes floor((255 - C) * (255 - K) / 255) per channel, Chromium's formula;
- alpha (an alpha channel, a PNG or GIF transparent colour) is composited on black in 8-bit,
  round(v * a / 255): opaque pixels are untouched, transparent ones become black. Dropping
  alpha instead cannot be mirrored, since a canvas stores premultiplied colours (a transparent
  pixel's colour is lost there);
- no colour management: ICC profiles and PNG gamma are ignored on both sides
  (`colorSpaceConversion: 'none'`);
- an animated file gives its first frame.

Formats only Python reads (TIFF, PGM/PPM, ...) follow the same rules; 32-bit integer samples
within 0..65535 (how Pillow gives 16-bit PGM) are 16-bit, other 32-bit or floating-point samples
are refused as having no fixed range. One known difference: Chromium (156) reads the alpha plane
of an AVIF file written by Pillow as if in limited range, (a - 16) * 255 / 219, where Pillow reads
it in full range, so semi-transparent AVIF pixels differed by up to 20 levels in our check.

A weights entry carries the parameters as `transforms = {"size", "mean", "std", ...}`.

The other demo inputs have mirrors too: `seeded_normal` (the noise of a seed, bit for bit up to
float32 rounding of the transcendental functions), `tokenize` (words -> vocabulary ids) and
`hole_mask` / `mask_image` (the default inpainting hole; holes are zeroed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sotazoo.errors import InputError

# ImageNet's per-channel mean and std of RGB in [0, 1] (torchvision's, the usual normalisation).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The decoded-size cap: 50 megapixels (e.g. 8660 x 5773) is above the photographs of most
# cameras and phones (12-48 MP) and 1000 times a 224 x 224 model input, yet far below what
# exhausts memory: decoding takes about 15 bytes a pixel at the peak (the 8-bit image, then its
# float32 copy), 0.75 GB at the cap. Without it a 92-megapixel PNG of one colour, 90 kB on disk,
# took 1.9 GB. The browser demos refuse the same size (kit.mjs, MAX_IMAGE_PIXELS).
MAX_IMAGE_PIXELS = 50_000_000

# EXIF orientation tag -> the transpose that shows the image upright (as ImageOps.exif_transpose).
_ORIENTATION = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
                6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}  # fmt: skip


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as float32 RGB in [0, 1], shape (3, H, W), by the rules above.

    Raises `InputError` naming the file when it is missing, a folder, not an image, truncated,
    empty, larger than `MAX_IMAGE_PIXELS` (checked before decoding), or of a sample format
    without a fixed range (32-bit or floating-point).
    """
    import re
    import struct
    import warnings

    from PIL import Image

    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder, not an image file")
    if not path.is_file():
        raise InputError(f"image file {path} does not exist")
    # What Pillow's plugins raise on a malformed file: a file that fails here is a bad input.
    bad_file = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)
    im = None
    try:
        with warnings.catch_warnings():  # the cap below is lower than Pillow's warning level
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)  # reads the header only
        w, h = im.size
        if w * h > MAX_IMAGE_PIXELS:
            raise _too_large(path, (w, h), w * h)
        if w * h == 0:
            raise InputError(f"{path} has no pixels (size {w} x {h})")
        im.load()
        rgb = _rgb8(im, path)  # (H, W, 3) uint8
    except InputError:
        raise
    except Image.DecompressionBombError as e:  # over Pillow's own limit: the count in its message
        found = re.search(r"\((\d+) pixels\)", str(e))
        raise _too_large(path, None, int(found[1]) if found else None) from None
    except bad_file as e:
        raise InputError(f"{path} is not a readable image ({e})") from e
    finally:
        if im is not None:
            im.close()  # frees the decoded pixels too (leaving a `with` block does not)
    # float32 in place, channel by channel: the 8-bit image plus one float copy at the peak.
    out = np.empty((3, *rgb.shape[:2]), dtype=np.float32)
    for c in range(3):
        np.divide(rgb[..., c], np.float32(255.0), out=out[c], dtype=np.float32)
    return out


def _too_large(path: Path, size: tuple[int, int] | None, pixels: int | None) -> InputError:
    cap = MAX_IMAGE_PIXELS / 1e6
    if pixels is None:
        what = "too many pixels to decode"
    else:
        dims = f"{size[0]} x {size[1]} pixels, " if size else ""
        what = f"{dims}{pixels / 1e6:.1f} megapixels decoded"
    return InputError(
        f"{path} is {what}: above the cap of {cap:g} megapixels "
        "(sotazoo.transforms.MAX_IMAGE_PIXELS); scale it down first, e.g. to 4000 pixels on its "
        "longer side (the models see a few hundred pixels a side)"
    )


def _rgb8(im: Any, path: Path) -> np.ndarray:
    """A loaded Pillow image -> (H, W, 3) uint8 RGB, upright, alpha composited on black."""
    import struct

    from PIL import Image

    try:
        turn = _ORIENTATION.get(im.getexif().get(0x0112, 1))
    except (SyntaxError, ValueError, struct.error, IndexError, TypeError):  # unreadable EXIF
        turn = None  # shown as stored, as browsers do
    if turn is not None:
        im = im.transpose(getattr(Image.Transpose, turn))
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        v = np.asarray(im)
        if mode == "I" and v.size and (v.min() < 0 or v.max() > 65535):
            raise InputError(
                f"{path} holds 32-bit integer samples (range {v.min()}..{v.max()}), which have "
                "no fixed scale; save it as an 8- or 16-bit PNG"
            )
        grey = (v.astype(np.uint16) >> 8).astype(np.uint8)  # the high byte, as libpng strip_16
        if isinstance(im.info.get("transparency"), int):  # a PNG tRNS grey value: alpha 0
            grey[v == im.info["transparency"]] = 0
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "F":
        raise InputError(
            f"{path} holds floating-point samples, which have no fixed scale; "
            "save it as an 8- or 16-bit PNG"
        )
    if mode == "CMYK":  # Chromium's formula, floored (Pillow's convert rounds)
        cmyk = np.asarray(im).astype(np.uint16)
        keep = 255 - cmyk[..., 3:]
        return ((255 - cmyk[..., :3]) * keep // 255).astype(np.uint8)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgba = np.asarray(im.convert("RGBA"))
        a = rgba[..., 3:].astype(np.uint16)
        return ((rgba[..., :3] * a + 127) // 255).astype(np.uint8)  # round(v * a / 255)
    return np.asarray(im if mode == "RGB" else im.convert("RGB"))


def center_crop_square(image: np.ndarray) -> np.ndarray:
    """The centred square of side min(H, W) of a (3, H, W) image."""
    _, h, w = image.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[:, top : top + side, left : left + side]


def resize_bilinear(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of a (3, H, W) float image to (3, size, size), half-pixel centres."""
    import torch
    import torch.nn.functional as F

    if image.shape[1:] == (size, size):
        return image
    x = torch.from_numpy(np.ascontiguousarray(image))[None]  # (1, 3, H, W)
    y = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    return y[0].numpy()


def _resize_hw(image: np.ndarray, h: int, w: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(image))[None]
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)[0].numpy()


def letterbox(image: np.ndarray, size: int, fill: float) -> tuple[np.ndarray, tuple[float, ...]]:
    """Darknet's test-time resize (`letterbox_image`, image.c): the whole (3, H, W) image scaled
    to fit a `size` square with its aspect ratio kept, centred on `fill`. Returns the canvas and
    (sx, sy, px, py): a point (x, y) of the canvas is ((x - px) / sx, (y - py) / sy) in the file."""
    _, h, w = image.shape
    if size / w < size / h:
        nw, nh = size, max(1, h * size // w)
    else:
        nw, nh = max(1, w * size // h), size
    canvas = np.full((3, size, size), fill, dtype=np.float32)
    px, py = (size - nw) // 2, (size - nh) // 2
    canvas[:, py : py + nh, px : px + nw] = _resize_hw(image, nh, nw)
    return canvas, (nw / w, nh / h, float(px), float(py))


def resize_min_max(
    image: np.ndarray, min_size: int, max_size: int
) -> tuple[np.ndarray, tuple[float, float]]:
    """torchvision's detection resize (`GeneralizedRCNNTransform`): scale so the short side is
    `min_size` unless the long side would pass `max_size`, then it is `max_size`. Returns the
    image and (sx, sy): a point (x, y) of it is (x / sx, y / sy) in the file."""
    _, h, w = image.shape
    scale = min(min_size / min(h, w), max_size / max(h, w))
    nh, nw = max(1, int(h * scale)), max(1, int(w * scale))  # torchvision floors the size too
    return _resize_hw(image, nh, nw), (nw / w, nh / h)


def normalize(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    m = np.asarray(mean, dtype=np.float32)[:, None, None]
    s = np.asarray(std, dtype=np.float32)[:, None, None]
    return (image - m) / s


def preprocess(image: np.ndarray | str | Path, transforms: Mapping[str, Any]) -> np.ndarray:
    """Steps 1-4 above: a file or a (3, H, W) [0, 1] array -> a (1, 3, size, size) batch."""
    if not isinstance(image, np.ndarray):
        image = load_image(image)
    if image.ndim != 3 or image.shape[0] != 3:
        raise InputError(f"expected an RGB image of shape (3, H, W), got {tuple(image.shape)}")
    x = resize_bilinear(center_crop_square(image), int(transforms["size"]))
    return normalize(x, transforms["mean"], transforms["std"])[None].astype(np.float32)


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write a (3, H, W) [0, 1] float image as an 8-bit RGB PNG (rounded to nearest)."""
    from PIL import Image

    rgb = np.clip(np.rint(image.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, "RGB").save(path, format="PNG")
    return path


def _mulberry32(seed: int):
    """mulberry32, in uint32 arithmetic exactly as the JavaScript (`Math.imul`, `>>> 0`)."""
    a = seed & 0xFFFFFFFF
    m = 0xFFFFFFFF
    while True:
        a = (a + 0x6D2B79F5) & m
        t = a
        t = ((t ^ (t >> 15)) * (t | 1)) & m
        t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & m)) & m
        yield (t ^ (t >> 14)) & m


def seeded_normal(seed: int, n: int) -> np.ndarray:
    """`n` standard-normal float32 values of `seed`: Box-Muller on mulberry32's draws."""
    import math

    draws = _mulberry32(seed)
    out = np.empty(n, dtype=np.float32)
    for i in range(0, n, 2):
        u1 = (next(draws) + 1) / 4294967296.0  # (0, 1]
        u2 = next(draws) / 4294967296.0  # [0, 1)
        r = math.sqrt(-2.0 * math.log(u1))
        out[i] = r * math.cos(2.0 * math.pi * u2)
        if i + 1 < n:
            out[i + 1] = r * math.sin(2.0 * math.pi * u2)
    return out


def tokenize(
    text: str, vocab: Mapping[str, int], max_len: int, *, pad: int = 0, unk: int = 1
) -> np.ndarray:
    """Lower-case words (a-z, 0-9, apostrophe) -> ids, unknown -> `unk`, padded to `max_len`."""
    import re

    words = re.findall(r"[a-z0-9']+", text.lower())[:max_len]
    ids = np.full(max_len, pad, dtype=np.int64)
    for i, w in enumerate(words):
        ids[i] = vocab.get(w, unk)
    return ids


def hole_mask(size: int) -> np.ndarray:
    """The default inpainting mask (size, size): 1 = known pixel, 0 = the centred square hole."""
    m = np.ones((size, size), dtype=np.float32)
    a = size // 4
    m[a : a + size // 2, a : a + size // 2] = 0
    return m


def mask_image(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Zero the holes of a normalised (..., 3, H, W) image."""
    return (image * mask).astype(np.float32)
