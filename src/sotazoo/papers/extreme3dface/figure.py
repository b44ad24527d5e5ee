"""Figure for the Extreme 3D faces card: the layered reconstruction (drawn by sotazoo).

Left: the pipeline, a 3DMM foundation regressed by a CNN and a bump map predicted by a U-Net,
combined and then repaired where the face is occluded or unseen. Right: a 1D cross-section
computed from made-up smooth and detail functions, showing foundation + bump = detailed surface,
and the occluded interval filled from the mirrored side of the face.
"""

from __future__ import annotations

import functools

from sotazoo.figures import arrow, box

_box = functools.partial(box, fontsize=8)
_arrow = functools.partial(arrow, lw=1.1)


def _profile():
    """A face-like cross-section: smooth foundation, wrinkle-scale bumps, an occluded interval."""
    import numpy as np

    x = np.linspace(-1.0, 1.0, 400)
    foundation = 1.0 - 0.8 * x**2 + 0.25 * np.exp(-((x / 0.12) ** 2))  # cheeks + nose
    bump = 0.07 * np.sin(22 * x) * np.exp(-(((x - 0.45) / 0.25) ** 2))  # creases on one cheek
    bump += 0.07 * np.sin(-22 * x) * np.exp(-(((x + 0.45) / 0.25) ** 2))  # mirrored creases
    hidden = (x > -0.7) & (x < -0.25)  # a hand over the left cheek
    seen_bump = np.where(hidden, 0.0, bump)
    filled = np.where(hidden, seen_bump[::-1], seen_bump)  # borrow from the mirrored side
    return x, foundation, bump, hidden, filled


def draw():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 3.8))
    ax = fig.add_axes((0.0, 0.0, 0.62, 1.0))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 5)
    ax.axis("off")
    _box(ax, 0.1, 2.0, 1.4, 1.0, "photo\n(occluded,\nany pose)", "#e8eef7")
    _box(ax, 2.0, 3.4, 2.2, 1.0, "3DMM-CNN\n(ResNet-101, 224²)\n99 shape coeffs", "#dfe9d8")
    _box(ax, 2.0, 0.6, 2.2, 1.0, "bump U-Net (500²)\nbump map + mask\n(tanh heads)", "#fbe3c4")
    _box(ax, 4.6, 3.4, 1.9, 1.0, "foundation\n+ landmark fit\n(pose, expr.)", "#dfe9d8")
    _box(ax, 4.6, 0.6, 1.9, 1.0, "hole filling of\nthe bump map\n(not released)", "#f6d0c7")
    _box(ax, 6.9, 2.0, 1.4, 1.0, "add offsets\nalong the\nview ray", "#e8eef7")
    _box(ax, 8.6, 2.0, 1.3, 1.0, "soft\nsymmetry\n→ mesh", "#e8eef7")
    _arrow(ax, 1.5, 2.7, 2.0, 3.9)
    _arrow(ax, 1.5, 2.3, 2.0, 1.1)
    _arrow(ax, 4.2, 3.9, 4.6, 3.9)
    _arrow(ax, 4.2, 1.1, 4.6, 1.1)
    _arrow(ax, 6.5, 3.9, 7.1, 3.0)
    _arrow(ax, 6.5, 1.1, 7.1, 2.0)
    _arrow(ax, 8.3, 2.5, 8.6, 2.5)
    ax.text(5.0, 4.75, "coarse layer: robust to pose and occlusion", fontsize=8, ha="center")
    ax.text(3.1, 0.2, "detail layer: wrinkles as a depth offset per pixel", fontsize=8,
            ha="center")  # fmt: skip

    x, foundation, bump, hidden, filled = _profile()
    bx = fig.add_axes((0.67, 0.17, 0.31, 0.72))
    bx.plot(x, foundation, color="#4c72b0", lw=1.2, label="foundation (3DMM)")
    bx.plot(x, 0.3 + bump, color="#999999", lw=0.8, ls=":", label="true detail")
    bx.plot(x, 0.3 + filled, color="#dd8452", lw=1.1, label="bump layer, hole filled")
    bx.plot(x, foundation + filled + 0.45, color="#c44e52", lw=1.2,
            label="sum (shifted up)")  # fmt: skip
    lo, hi = x[hidden][0], x[hidden][-1]
    bx.axvspan(lo, hi, color="#f6d0c7", alpha=0.6, lw=0)
    bx.text((lo + hi) / 2, 0.05, "occluded", fontsize=7, ha="center")
    bx.set_xlabel("position across the face", fontsize=8)
    bx.set_ylabel("depth", fontsize=8)
    bx.set_yticks([])
    bx.tick_params(labelsize=7)
    bx.set_ylim(-0.02, 2.0)
    bx.legend(fontsize=6.5, loc="upper left", frameon=False)
    bx.set_title("1D cross-section", fontsize=8)
    return fig
