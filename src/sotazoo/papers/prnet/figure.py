"""Figure for the PRNet card: the UV position map (drawn by sotazoo).

An encoder-decoder turns the 256x256 image crop into a 256x256x3 map in UV space; pixel (u, v)
stores the x, y, z of one point of the face surface. The map shown is computed here from a toy
face (an ellipsoid with a nose, turned 25 degrees), not taken from the paper or the model.
"""

from __future__ import annotations

import functools

import numpy as np

from sotazoo.figures import arrow, box

_box = functools.partial(box, fontsize=8.5)
_arrow = arrow


N = 128  # the toy map's resolution (the real one is 256)


def _toy_position_map():
    """A toy face in UV space: channels x, y (image pixels) and z (depth), plus its face mask."""
    u, v = np.meshgrid(np.linspace(0, 1, N), np.linspace(0, 1, N))
    inside = ((u - 0.5) / 0.46) ** 2 + ((v - 0.5) / 0.48) ** 2 <= 1
    x, y = 176 * u - 88, 200 * v - 100  # template coordinates, centred
    z = 70 * np.sqrt(np.clip(1 - (x / 95) ** 2 - (y / 110) ** 2, 0, None))
    z += 28 * np.exp(-((u - 0.5) ** 2 + (v - 0.52) ** 2) / 0.004)  # the nose
    t = np.deg2rad(25)  # turn the head: the x channel now depends on depth
    xs, zs = 128 + x * np.cos(t) + z * np.sin(t), -x * np.sin(t) + z * np.cos(t)
    pos = np.stack([xs, 128 + y, zs], axis=-1)
    return pos, inside


def _weights(inside):
    """The loss weights: neck 0, face 3, eyes/nose/mouth 4, the 68 landmark pixels 16."""
    u, v = np.meshgrid(np.linspace(0, 1, N), np.linspace(0, 1, N))
    w = np.where(inside, 3.0, 0.0)
    for cu, cv, ru, rv in [(0.33, 0.38, 0.09, 0.04), (0.67, 0.38, 0.09, 0.04),
                           (0.5, 0.53, 0.06, 0.09), (0.5, 0.73, 0.14, 0.05)]:  # fmt: skip
        w[((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2 <= 1] = 4.0
    return w


LANDMARKS = [(0.24, 0.38), (0.42, 0.38), (0.58, 0.38), (0.76, 0.38), (0.5, 0.6),
             (0.37, 0.73), (0.63, 0.73), (0.5, 0.93), (0.12, 0.62), (0.88, 0.62)]  # fmt: skip


def _image(fig, rect, img, title, **kw):
    ax = fig.add_axes(rect)
    ax.imshow(img, interpolation="nearest", **kw)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8.5, pad=3)
    return ax


def draw():
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.5, 4.6))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 14)
    ax.set_ylim(0, 6)
    ax.axis("off")
    _box(ax, 0.15, 3.4, 1.5, 1.1, "image crop\n256×256×3", "#e8eef7")
    _box(ax, 2.05, 3.4, 2.0, 1.1, "encoder\nconv + 10 res. blocks\n256² → 8²×512", "#dfe9d8")
    _box(ax, 4.45, 3.4, 2.0, 1.1, "decoder\n17 transposed convs\n8² → 256²×3, sigmoid", "#dfe9d8")
    for x0, x1 in [(1.65, 2.05), (4.05, 4.45), (6.45, 7.0)]:
        _arrow(ax, x0, 3.95, x1, 3.95)

    pos, inside = _toy_position_map()
    rgb = (pos - pos[inside].min(0)) / np.ptp(pos[inside], axis=0)
    rgb = np.where(inside[..., None], np.clip(rgb, 0, 1), 0.0)
    pm = _image(fig, (0.505, 0.36, 0.19, 0.47), rgb, "UV position map P(u, v) = (x, y, z)")
    lu, lv = np.array(LANDMARKS).T * (N - 1)
    pm.plot(lu, lv, "o", ms=3, mfc="white", mec="black", mew=0.6)
    pm.set_xlabel("u  (fixed meaning for every face)", fontsize=8)
    for i, name in enumerate("xyz"):
        ch = np.where(inside, pos[..., i], np.nan)
        _image(fig, (0.505 + i * 0.066, 0.04, 0.058, 0.19), ch, name, cmap="viridis")
    ax.text(7.05, 1.75, "its channels: x, y in image pixels, z depth", fontsize=8)

    _box(ax, 10.5, 4.05, 3.35, 1.25,
         "dense alignment\nread x, y at 43,867 face pixels;\n68 landmarks = 68 fixed pixels",
         "#fbe3c4")  # fmt: skip
    _box(ax, 10.5, 2.35, 3.35, 1.25,
         "3D face mesh\n(x, y, z) of every face pixel\n+ one fixed triangle list",
         "#fbe3c4")  # fmt: skip
    _arrow(ax, 9.85, 4.3, 10.5, 4.65)
    _arrow(ax, 9.85, 3.4, 10.5, 2.95)

    cmap = ListedColormap(["#222222", "#3b5ba5", "#f2a541"])
    norm = BoundaryNorm([-0.5, 1.5, 3.5, 4.5], 3)
    wm = _image(fig, (0.315, 0.04, 0.11, 0.25), _weights(inside), "loss weight W(u, v)",
                cmap=cmap, norm=norm)  # fmt: skip
    wm.plot(lu, lv, "o", ms=3, mfc="white", mec="black", mew=0.6)
    ax.text(0.15, 1.05, "loss = Σ W(u, v) · ‖P(u, v) − P̂(u, v)‖\n"
            "W: 68 landmark pixels (white) 16,\neyes / nose / mouth (orange) 4,\n"
            "rest of face (blue) 3, neck 0",
            fontsize=8, va="center")  # fmt: skip
    ax.text(3.3, 2.95, "every point of the face in one pass: no 3DMM coefficients, no voxels",
            fontsize=8, color="#555555", ha="center")  # fmt: skip
    return fig
