"""The segmentation demo: the page colours every pixel of a scene (a bundled test scene, or an
image of the reader's, centre-cropped and resized to 96 px) with the class that our
`deeplabv3plus_mini` gives it: background or one of the four shapes it was trained on. The
`segment` widget takes the raw network's logits (1, K, H, W) and paints the per-pixel argmax
over the image.
"""

from __future__ import annotations

from pathlib import Path

SAMPLE_SEED = 4242  # neither a training seed nor the test scenes'
SAMPLES = 4


def samples(out_dir: Path) -> list[dict]:
    from sotazoo.papers.deeplabv3plus.repro import ReproConfig, scenes
    from sotazoo.transforms import save_png

    x, _ = scenes(SAMPLES, ReproConfig().size, SAMPLE_SEED)
    return [{"path": save_png(img.numpy(), Path(out_dir) / f"scene_{i}.png")}
            for i, img in enumerate(x)]  # fmt: skip
