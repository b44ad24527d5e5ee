"""Chromium decodes every image format a demo takes to the same float32 tensor as Python.

The site's `decodeImage` (sotazoo.mjs) runs in headless Chromium on files written here by Pillow
(or byte by byte: 16-bit RGB and LA, which Pillow does not write) and its output must equal
`sotazoo.transforms.load_image` exactly, value for value: both reach [0, 1] through the same
8-bit samples, and float32(v / 255) computed in float64 (JavaScript) equals float32(v) /
float32(255) (numpy) for every v in 0..255. Files too large, or not images, are refused on both
sides. Only the static runtime and the images are served (no site build): about 10 s, with
the `npm ci` of playwright-core.
"""

import json
import os
import re
import struct
import subprocess
import threading
import zlib

import numpy as np
import pytest
from PIL import Image, features

from sotazoo.errors import InputError
from sotazoo.transforms import MAX_IMAGE_PIXELS, load_image

pytestmark = pytest.mark.browser

DRIVER = r"""
import { createRequire } from 'node:module';
const [modules, base, names] = process.argv.slice(2);
const { chromium } = createRequire(`${modules}/`)('playwright-core');
const browser = await chromium.launch({
  executablePath: process.env.SOTAZOO_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
const page = await browser.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));
await page.goto(new URL('index.html', base).href);
const images = await page.evaluate(async (names) => {
  const rt = await import(new URL('static/sotazoo.mjs', location.href).href);
  const out = {};
  for (const name of names) {
    try {
      const img = await rt.decodeImage(new URL(`img/${name}`, location.href).href);
      out[name] = { height: img.height, width: img.width, data: Array.from(img.data) };
    } catch (e) {
      out[name] = { error: String(e.message || e) };
    }
  }
  return out;
}, names.split(','));
await browser.close();
console.log(JSON.stringify({ images, errors }));
"""


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width, height, depth, colour, rows) -> bytes:
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(b"\x00" + r) for r in rows) + z.flush()
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + ihdr + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _write_images(d) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """The files both sides decode alike, and the refused ones with the words of each side's
    error."""
    rng = np.random.default_rng(0)
    h, w = 12, 16
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    rgba[0, :, 3], rgba[1, :, 3], rgba[2, :, 3] = 0, 255, 1  # transparent, opaque, nearly
    u16 = rng.integers(0, 65536, (h, w, 4), dtype=np.uint16)
    u16[0, :8, 0] = [0, 127, 128, 255, 256, 32767, 32768, 65535]  # around the high-byte edges
    rows16 = lambda a: [a[i].astype(">u2").tobytes() for i in range(h)]  # noqa: E731
    Image.fromarray(rgb).save(d / "rgb.png")
    Image.fromarray(rgba).save(d / "rgba.png")
    Image.fromarray(rgba[..., ::3], "LA").save(d / "la.png")
    Image.fromarray(rgb[..., 0]).save(d / "grey.png")
    Image.fromarray(rgb).convert("1").save(d / "bilevel.png")
    Image.fromarray(u16[..., 0]).save(d / "grey16.png")
    Image.fromarray(u16[..., 0]).save(d / "grey16-trns.png", transparency=32768)
    (d / "rgb48.png").write_bytes(_png(w, h, 16, 2, rows16(u16[..., :3])))
    (d / "rgba64.png").write_bytes(_png(w, h, 16, 6, rows16(u16)))
    (d / "la32.png").write_bytes(_png(w, h, 16, 4, rows16(u16[..., ::3])))
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.save(d / "palette.png")
    pal.save(d / "palette-trns.png", transparency=3)
    pal.save(d / "palette-trns.gif", transparency=3)
    Image.fromarray(rgb // 64 * 64).save(d / "rgb-trns.png", transparency=(64, 128, 0))
    Image.fromarray(rgb[..., 0] // 64 * 64).save(d / "grey-trns.png", transparency=128)
    Image.fromarray(rgb).save(d / "rgb.jpg", quality=90)
    Image.fromarray(rgb).save(d / "progressive.jpg", quality=90, progressive=True)
    Image.fromarray(rgb[..., 0]).save(d / "grey.jpg", quality=90)
    Image.fromarray(rgba, "CMYK").save(d / "cmyk.jpg", quality=95)
    names = [p.name for p in sorted(d.iterdir())]
    for o in range(1, 9):  # every EXIF orientation, flips included
        Image.fromarray(rgb).save(d / f"exif{o}.jpg", quality=90, exif=_exif(o))
        names.append(f"exif{o}.jpg")
    Image.fromarray(rgb).save(d / "exif6.png", exif=_exif(6))
    Image.fromarray(rgba).save(d / "rgba.webp", lossless=True)
    Image.fromarray(rgb).save(d / "rgb.webp", quality=80)
    Image.fromarray(rgb).save(d / "rgb.bmp")
    Image.fromarray(rgba).save(d / "rgba.ico", sizes=[(w, h)])
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]  # the first frame is shown
    frames[0].save(d / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(d / "animated.png", save_all=True, append_images=frames[1:], duration=100)
    names += ["exif6.png", "rgba.webp", "rgb.webp", "rgb.bmp", "rgba.ico", "animated.gif"]
    names += ["animated.png"]
    if features.check("avif"):  # opaque only: the alpha plane is read differently (docstring)
        Image.fromarray(rgb).save(d / "rgb.avif", quality=70)
        names.append("rgb.avif")
    # Refused: a text file, a 92-megapixel PNG of 11 kB, a header claiming 40000 x 40000.
    (d / "notes.png").write_text("not a picture\n")
    (d / "big.png").write_bytes(_png(9600, 9600, 1, 0, (bytes(1200) for _ in range(9600))))
    small = bytearray((d / "rgb.png").read_bytes())
    small[16:24] = struct.pack(">II", 40000, 40000)
    small[29:33] = struct.pack(">I", zlib.crc32(bytes(small[12:29])))
    (d / "bomb.png").write_bytes(bytes(small))
    cap = f"above the cap of {MAX_IMAGE_PIXELS / 1e6:g} megapixels"
    refused = {  # name -> (words of the browser's error, words of Python's)
        "notes.png": ("is not an image this browser can decode", "is not a readable image"),
        "big.png": (f"is 9600 x 9600 pixels, 92.2 megapixels decoded: {cap}",
                    f"is 9600 x 9600 pixels, 92.2 megapixels decoded: {cap}"),
        # Chromium's decoder refuses this header itself (the <img> fails to load); in Python,
        # Pillow's own bomb check comes first and gives the pixel count only.
        "bomb.png": ("is not an image this browser can decode",
                     f"is 1600.0 megapixels decoded: {cap}"),
    }  # fmt: skip
    return names, refused


def _exif(orientation: int) -> bytes:
    ex = Image.Exif()
    ex[0x0112] = orientation
    return ex.tobytes()


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    """playwright-core, installed by the site's `npm ci` into a home of this module's own."""
    from sotazoo.site.browser import browser_available
    from sotazoo.site.runtime import ensure_runtime

    if not browser_available():  # as the browser_driver fixture: a failure in CI
        if os.environ.get("CI"):
            pytest.fail("CI must install Chromium and node; see .ci/run")
        pytest.skip("needs Chromium and node (apt-get install chromium nodejs)")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOTAZOO_HOME", str(tmp_path_factory.mktemp("npm-home")))
        return ensure_runtime(progress=False)


def test_browser_decodes_like_python(tmp_path, modules, browser_driver):
    import shutil
    from importlib import resources

    from sotazoo.site.serve import make_server

    (tmp_path / "img").mkdir()
    shutil.copytree(str(resources.files("sotazoo") / "site" / "static"), tmp_path / "static")
    (tmp_path / "index.html").write_text("<!doctype html><title>images</title><body></body>")
    names, refused = _write_images(tmp_path / "img")
    (tmp_path / "driver.mjs").write_text(DRIVER)
    server = make_server(tmp_path, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        done = subprocess.run(
            ["node", str(tmp_path / "driver.mjs"), str(modules), url, ",".join(names + [*refused])],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["errors"] == []
    got = report["images"]
    for name in names:
        b = got[name]
        assert "error" not in b, (name, b)
        want = load_image(tmp_path / "img" / name)
        assert (3, b["height"], b["width"]) == want.shape, name
        have = np.asarray(b["data"], dtype=np.float32).reshape(want.shape)
        np.testing.assert_array_equal(have, want, err_msg=name)
    for name, (in_browser, in_python) in refused.items():
        assert in_browser in got[name].get("error", ""), (name, got[name])
        with pytest.raises(InputError, match=re.escape(in_python)):
            load_image(tmp_path / "img" / name)
