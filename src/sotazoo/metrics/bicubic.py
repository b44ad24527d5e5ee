"""How far torch/PIL bicubic is from MATLAB's on the SR benchmarks' arithmetic, measured on the
photographs scikit-image ships (`python -m sotazoo.metrics.bicubic`): the figures the EDSR card's
deviation quotes. The two resizers are `sotazoo.resize`'s."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from sotazoo.data.sr_photos import photograph
from sotazoo.metrics.sr import psnr_y
from sotazoo.resize import (
    bicubic_degrade,
    imresize_matlab,
    imresize_torch,
    modcrop,
    to_uint8,
    torch_bicubic,
)

_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "rocket",
)


def skimage_photos() -> dict[str, np.ndarray]:
    """The RGB photographs that scikit-image ships inside its wheel (no download needed).

    `cat` is `chelsea` again; `colorwheel` (synthetic) and `logo` (RGBA) are left out, and the
    left view of `stereo_motorcycle` is added.
    """
    return {name: photograph(name) for name in (*_PHOTOS, "motorcycle_left")}


def compare_bicubic(
    images: Mapping[str, np.ndarray], scales: Iterable[int] = (2, 3, 4)
) -> list[dict]:
    """Measure how far torch/PIL bicubic is from MATLAB bicubic on SR benchmark arithmetic.

    For each uint8 RGB image and scale s, with HR = modcrop(image, s), all PSNRs on Y in dB:

    - `lr_psnr_y`: between the LR made by `imresize_matlab` + `to_uint8` and the LR made by
      `imresize_torch` + `to_uint8` (float arithmetic in both), whole image; `lr_psnr_y_crop`
      the same with s LR pixels cropped from each border.
    - `lr_uint8_passes`: between `imresize_matlab` + `to_uint8` and `bicubic_degrade` (which
      also rounds between the two passes, as MATLAB does for uint8), whole image.
    - `bicubic_matlab` / `bicubic_torch` / `bicubic_torch_a075`: the "Bicubic" baseline of SR
      tables, psnr_y(up, HR) with border s, where `up` is the benchmark LR (`bicubic_degrade`)
      upscaled ×s and rounded by MATLAB's imresize on uint8 (`quantize_between_passes`), by
      `imresize_torch`, and by torch's default bicubic (antialias=False, a = −0.75);
      `delta` = bicubic_torch − bicubic_matlab.

    Returns:
        one dict per (image, scale), in input order.
    """
    rows = []
    for name, img in images.items():
        for s in scales:
            hr = modcrop(img, s)
            lr_matlab = to_uint8(imresize_matlab(hr, 1 / s))
            lr_torch = to_uint8(imresize_torch(hr, 1 / s))
            lr_bench = bicubic_degrade(hr, s)
            ups = {
                "bicubic_matlab": imresize_matlab(lr_bench, s, quantize_between_passes=True),
                "bicubic_torch": imresize_torch(lr_bench, s),
                "bicubic_torch_a075": torch_bicubic(lr_bench, s, antialias=False),
            }
            row = {
                "image": name,
                "scale": s,
                "lr_psnr_y": psnr_y(lr_torch, lr_matlab, scale=s, border=0),
                "lr_psnr_y_crop": psnr_y(lr_torch, lr_matlab, scale=s),
                "lr_uint8_passes": psnr_y(lr_bench, lr_matlab, scale=s, border=0),
            }
            row |= {k: psnr_y(to_uint8(up), hr, scale=s) for k, up in ups.items()}
            row["delta"] = row["bicubic_torch"] - row["bicubic_matlab"]
            rows.append(row)
    return rows


_COLUMNS = (
    "lr_psnr_y",
    "lr_psnr_y_crop",
    "lr_uint8_passes",
    "bicubic_matlab",
    "bicubic_torch",
    "bicubic_torch_a075",
    "delta",
)


def _format_table(rows: list[dict]) -> str:
    def cells(values: list[float]) -> list[str]:
        return [f"{v:.2f}" for v in values[:-1]] + [f"{values[-1]:+.3f}"]

    lines = [" | ".join(["image", "scale", *_COLUMNS]), " | ".join(["---"] * (2 + len(_COLUMNS)))]
    for r in rows:
        lines.append(" | ".join([r["image"], f"x{r['scale']}", *cells([r[c] for c in _COLUMNS])]))
    for s in sorted({r["scale"] for r in rows}):
        sub = [r for r in rows if r["scale"] == s]
        means = [float(np.mean([r[c] for r in sub])) for c in _COLUMNS]
        lines.append(" | ".join(["mean", f"x{s}", *cells(means)]))
    return "\n".join(lines)


def main() -> None:
    """Print `compare_bicubic` on scikit-image's bundled photographs at ×2, ×3, ×4."""
    print(_format_table(compare_bicubic(skimage_photos(), (2, 3, 4))))


if __name__ == "__main__":
    main()
