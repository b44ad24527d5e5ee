"""Sample inputs for EDSR's browser demo: 64 x 64 low-resolution crops of the held-out
photographs (never trained on), made with the benchmark's bicubic degradation."""

from __future__ import annotations

from pathlib import Path

from sotazoo.transforms import save_png

SIZE = 64  # the LR side of the exported model's input
# (photograph, LR top-left (y, x) at x4; at x2 the same HR region is taken, twice the LR size)
CROPS = (("astronaut", 20, 44), ("astronaut", 60, 60), ("coffee", 30, 70), ("chelsea", 8, 44))


def samples(out_dir: Path, scale: int = 4) -> list[dict]:
    """One PNG per crop: the model's LR input, `SIZE` x `SIZE` pixels."""
    from sotazoo.data.sr_photos import pair

    out = []
    for i, (name, y, x) in enumerate(CROPS):
        lr, _ = pair(name, scale)
        y, x = y * 4 // scale, x * 4 // scale
        crop = lr[y : y + SIZE, x : x + SIZE]
        assert crop.shape[:2] == (SIZE, SIZE), (name, crop.shape)
        path = save_png(crop.transpose(2, 0, 1) / 255.0, out_dir / f"{name}{i}.png")
        out.append({"path": path, "photo": name})
    return out
