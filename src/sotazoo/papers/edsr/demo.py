"""Sample inputs for EDSR's browser demo: low-resolution crops of the held-out photographs
(never trained on), made with the benchmark's bicubic degradation at x4."""

from __future__ import annotations

from pathlib import Path

from sotazoo.data.sr_photos import save_demo_crops

SIZE = 64  # the LR side of the exported model's input (the card's input_size)


def samples(out_dir: Path) -> list[dict]:
    return save_demo_crops(out_dir, scale=4, size=SIZE)
