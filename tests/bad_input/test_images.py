"""Bad image files for `sotazoo.transforms.load_image` / `preprocess` (the decoding rules are in
transforms.py's docstring; tests/browser/test_image_formats.py checks Chromium agrees).

Files are written by Pillow (or byte by byte, for headers Pillow would not write) into one
temporary folder per run; none is committed. The size bombs are headers that claim many pixels
over little or no data, so no case needs the memory it claims.
"""

from __future__ import annotations

import atexit
import re
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sotazoo import transforms
from sotazoo.errors import InputError
from sotazoo.transforms import load_image, preprocess

from .harness import Case, check

# getattr: the corpus also runs against the code from before the cap (for the "before" totals).
MAX_IMAGE_PIXELS = getattr(transforms, "MAX_IMAGE_PIXELS", 50_000_000)
DIR = Path(tempfile.mkdtemp(prefix="sotazoo-bad-images-"))
atexit.register(shutil.rmtree, DIR, ignore_errors=True)
NORM = {"size": 8, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
STEP = 1 / 255  # one 8-bit step: every format reaches [0, 1] through 8-bit samples


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width: int, height: int, depth: int, colour: int, rows, extra: bytes = b"") -> bytes:
    """A PNG written chunk by chunk (Pillow writes no 16-bit RGB or LA): `rows` yields each
    row's unfiltered bytes and is compressed as a stream, so a huge image costs no memory."""
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(b"\x00" + r) for r in rows) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    head = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra
    return head + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def with_header_size(data: bytes, width: int, height: int) -> bytes:
    """A PNG whose IHDR claims `width` x `height` (the CRC recomputed), over the original data."""
    b = bytearray(data)
    b[16:24] = struct.pack(">II", width, height)
    b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])))
    return bytes(b)


def written(name: str, make) -> Path:
    """`DIR/name`, made on first use by `make(path)` (a case's input costs nothing until run)."""
    path = DIR / name
    if not path.exists():
        make(path)
    return path


def small_png(path: Path) -> None:
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path)


def load(name: str, make):
    return lambda: load_image(written(name, make))


# ---------------------------------------------------------------- files that are not images


def truncated(path: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(DIR / "full.png")
    data = (DIR / "full.png").read_bytes()
    path.write_bytes(data[: len(data) // 2])


def no_pixels(path: Path) -> None:  # a valid PNG but for its IHDR: width 0
    small_png(DIR / "small.png")
    path.write_bytes(with_header_size((DIR / "small.png").read_bytes(), 0, 8))


# ---------------------------------------------------------------- size bombs


def bomb_40000(path: Path) -> None:  # 1.6 gigapixels claimed over an 8 x 8 image's data
    small_png(DIR / "small.png")
    path.write_bytes(with_header_size((DIR / "small.png").read_bytes(), 40000, 40000))


def bomb_92mp(path: Path) -> None:  # a real 9600 x 9600 1-bit image: 11 kB on disk, 92 MP
    path.write_bytes(png_bytes(9600, 9600, 1, 0, (bytes(1200) for _ in range(9600))))


def just_over_cap(path: Path) -> None:  # one row more than fits: the cap is a strict bound
    w = 10_000
    h = MAX_IMAGE_PIXELS // w + 1
    path.write_bytes(png_bytes(w, h, 1, 0, (bytes(w // 8) for _ in range(h))))


def cap_message(path: Path, size: str | None) -> str:
    """What a clear over-the-cap error says: the file, its size, the cap, and how to shrink."""
    dims = re.escape(size) + r" pixels, " if size else ""
    return (
        re.escape(str(path)) + rf" is {dims}[\d.]+ megapixels decoded: above the cap of "
        rf"{MAX_IMAGE_PIXELS / 1e6:g} megapixels.*scale it down"
    )


# ---------------------------------------------------------------- formats that must be read right


def expect_rgb(name: str, make, want, tol: float = 0.0):
    """`run` for a handled case: every pixel of `load_image` equals `want` (RGB in 0..255),
    within `tol` in [0, 1] units."""

    def run():
        x = load_image(written(name, make))
        w = np.broadcast_to(np.asarray(want, dtype=np.float32).reshape(3, 1, 1) / 255, x.shape)
        assert x.dtype == np.float32 and x.shape[0] == 3
        assert np.abs(x - w).max() <= tol + 1e-7, (x[:, 0, 0] * 255, w[:, 0, 0] * 255)
        return x

    return run


HALF16 = round(65535 * 0.5)  # 32768: its high byte is 128, 128 / 255 = 0.502


def grey16(path: Path) -> None:  # Pillow writes 16-bit greyscale itself (mode I;16)
    Image.fromarray(np.full((4, 4), HALF16, dtype=np.uint16)).save(path)


def rgb48(path: Path) -> None:  # R 65535, G half, B 255 (high byte 0; rounding gives 1)
    px = struct.pack(">HHH", 65535, HALF16, 0x00FF)
    path.write_bytes(png_bytes(4, 4, 16, 2, [px * 4] * 4))


def rgba64(path: Path) -> None:  # white at alpha 32768 / 65535 (high byte 128)
    px = struct.pack(">HHHH", 65535, 65535, 65535, HALF16)
    path.write_bytes(png_bytes(4, 4, 16, 6, [px * 4] * 4))


def palette_trns(path: Path) -> None:  # palette entry 0 (red) transparent, 1 (green) opaque
    im = Image.new("P", (4, 4), 0)
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    im.save(path, transparency=0)


def palette_opaque_pixel(path: Path) -> None:
    im = Image.new("P", (4, 4), 1)
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    im.save(path, transparency=0)


def la(path: Path) -> None:  # grey 200 at alpha 51 (20%): round(200 * 51 / 255) = 40
    Image.new("LA", (4, 4), (200, 51)).save(path)


def grey(path: Path) -> None:
    Image.new("L", (4, 4), 77).save(path)


def bilevel(path: Path) -> None:
    Image.new("1", (4, 4), 1).save(path)


def cmyk_jpeg(path: Path) -> None:  # C 0, M 255, Y 0, K 51 -> (204, 0, 204) by any formula
    Image.new("CMYK", (8, 8), (0, 255, 0, 51)).save(path, quality=100)


def exif_rotated(path: Path) -> None:  # stored 4 wide x 2 tall, orientation 6: shown 2 x 4
    ex = Image.Exif()
    ex[0x0112] = 6
    Image.new("RGB", (4, 2), (0, 0, 255)).save(path, quality=95, exif=ex.tobytes())


def corrupt_exif(path: Path) -> None:  # an EXIF block cut short: shown as stored, as browsers do
    junk = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00"
    Image.new("RGB", (4, 2), (0, 0, 255)).save(path, quality=95, exif=junk)


def one_pixel(path: Path) -> None:
    Image.new("RGB", (1, 1), (255, 0, 0)).save(path)


def float_tiff(path: Path) -> None:
    Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32)).save(path)


def shape_is(name: str, make, shape):
    def run():
        x = load_image(written(name, make))
        assert x.shape == shape, x.shape
        return x

    return run


def preprocess_1x1():
    """A 1 x 1 photo is a valid input: crop and resize make a uniform size x size image."""
    x = preprocess(written("one.png", one_pixel), NORM)
    want = (np.array([1.0, 0.0, 0.0], dtype=np.float32) - 0.5) / 0.25
    assert x.shape == (1, 3, 8, 8)
    assert np.abs(x[0] - want[:, None, None]).max() <= 1e-6
    return x


CASES = [
    # Not images, or not files: a clear error naming the path.
    Case(
        "missing-file",
        lambda: load_image(DIR / "nowhere.png"),
        r"nowhere\.png does not exist",
        InputError,
    ),
    Case("folder", lambda: load_image(DIR), r"is a folder, not an image", InputError),
    Case(
        "zero-byte",
        load("empty.png", lambda p: p.write_bytes(b"")),
        r"empty\.png is not a readable image",
        InputError,
    ),
    Case(
        "text-named-png",
        load("notes.png", lambda p: p.write_text("hello, not a picture\n")),
        r"notes\.png is not a readable image",
        InputError,
    ),
    Case(
        "truncated-png",
        load("half.png", truncated),
        r"half\.png is not a readable image",
        InputError,
    ),
    Case(
        "zero-width",
        load("nothing.png", no_pixels),
        r"nothing\.png (has no pixels|is not a readable image)",
        InputError,
    ),
    Case(
        "float-tiff",
        load("float.tif", float_tiff),
        r"^\S*float\.tif holds floating-point samples",
        InputError,
    ),
    # Size bombs: refused from the header, before a pixel is decoded (no memory is used).
    Case(
        "bomb-40000x40000",
        load("bomb.png", bomb_40000),
        cap_message(DIR / "bomb.png", None),
        InputError,
        timeout_s=30,
    ),
    Case(
        "bomb-92-megapixels",
        load("big.png", bomb_92mp),
        cap_message(DIR / "big.png", "9600 x 9600"),
        InputError,
        timeout_s=30,
    ),
    Case(
        "one-row-over-the-cap",
        load("over.png", just_over_cap),
        cap_message(DIR / "over.png", f"10000 x {MAX_IMAGE_PIXELS // 10_000 + 1}"),
        InputError,
        timeout_s=30,
    ),
    # Formats that must be handled: values through 8 bits, as the browser (STEP = one level).
    # 16-bit: the high byte (32768 -> 128 -> 0.502, within one 8-bit step of 0.5).
    Case("grey-16-bit", expect_rgb("grey16.png", grey16, [128] * 3), expect="ok"),
    Case(
        "grey-16-bit-is-half", expect_rgb("grey16.png", grey16, [127.5] * 3, tol=STEP), expect="ok"
    ),
    Case("rgb-48-bit", expect_rgb("rgb48.png", rgb48, [255, 128, 0]), expect="ok"),
    # alpha composited on black: round(255 * 128 / 255) = 128.
    Case("rgba-64-bit", expect_rgb("rgba64.png", rgba64, [128] * 3), expect="ok"),
    Case("palette-transparent", expect_rgb("ptrns.png", palette_trns, [0, 0, 0]), expect="ok"),
    Case(
        "palette-opaque-entry",
        expect_rgb("popaque.png", palette_opaque_pixel, [0, 255, 0]),
        expect="ok",
    ),
    Case("grey-alpha", expect_rgb("la.png", la, [40] * 3), expect="ok"),
    Case("greyscale", expect_rgb("grey.png", grey, [77] * 3), expect="ok"),
    Case("bilevel", expect_rgb("bilevel.png", bilevel, [255] * 3), expect="ok"),
    # JPEG is lossy: a flat colour comes back within one step of (204, 0, 204).
    Case("cmyk-jpeg", expect_rgb("cmyk.jpg", cmyk_jpeg, [204, 0, 204], tol=STEP), expect="ok"),
    Case("exif-orientation", shape_is("rot.jpg", exif_rotated, (3, 4, 2)), expect="ok"),
    Case("corrupt-exif", shape_is("badexif.jpg", corrupt_exif, (3, 2, 4)), expect="ok"),
    Case("one-pixel-preprocess", preprocess_1x1, expect="ok"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case):
    check(case)


def test_cap_is_the_browsers():
    """The browser runtime refuses the same size (its MAX_IMAGE_PIXELS constant)."""
    from importlib import resources

    js = (resources.files("sotazoo") / "site" / "static" / "kit.mjs").read_text()
    found = re.search(r"export const MAX_IMAGE_PIXELS = ([\d_]+);", js)
    assert found and int(found[1].replace("_", "")) == transforms.MAX_IMAGE_PIXELS
