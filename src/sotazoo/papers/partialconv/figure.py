"""Figure for the PConv card: how partial convolutions shrink a hole (drawn by sotazoo).

A 20x20 binary mask with an irregular hole (a blob and a streak) goes through four 3x3,
stride-1 partial convolutions. Each panel is the mask after one more layer, computed with the
paper's update rule (a location becomes valid once its window holds any valid pixel); cells
that became valid in that layer are highlighted. The last panel is the renormalisation factor
sum(1)/sum(M) that the first layer applies: 1 far from the hole, up to 9 at its rim, and no
value (output 0) where the window holds no valid pixel.
"""

from __future__ import annotations

SIZE = 20
LAYERS = 4


def _initial_mask():
    import numpy as np

    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    hole = (yy - 8.5) ** 2 / 36 + (xx - 6.5) ** 2 / 25 <= 1.0  # an elliptic blob
    hole |= (np.abs(yy - xx) <= 1) & (xx >= 9) & (xx <= 18)  # a diagonal streak
    return (~hole).astype(float)  # 1 = valid pixel, 0 = hole


def _window_sum(mask):
    """sum(M) over each 3x3 window (zero padding), i.e. conv with an all-ones kernel."""
    import numpy as np

    padded = np.pad(mask, 1)
    return sum(padded[dy : dy + SIZE, dx : dx + SIZE] for dy in range(3) for dx in range(3))


def draw():
    import matplotlib
    import numpy as np
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    masks = [_initial_mask()]
    for _ in range(LAYERS):
        masks.append(np.clip(_window_sum(masks[-1]), 0, 1))
    sums = _window_sum(masks[0])
    ratio = np.where(sums > 0, 9.0 / np.maximum(sums, 1e-8), np.nan)  # NaN: output 0

    fig = Figure(figsize=(11.0, 3.6))
    cmap = ListedColormap(["#3b3b3b", "#e8eef7", "#f2a541"])  # hole, valid, newly valid
    width = 0.13
    for i, mask in enumerate(masks):
        ax = fig.add_axes((0.01 + i * (width + 0.012), 0.3, width, 0.56))
        shown = mask.copy()
        if i > 0:
            shown[(mask == 1) & (masks[i - 1] == 0)] = 2
        ax.imshow(shown, cmap=cmap, vmin=0, vmax=2, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        holes = int((mask == 0).sum())
        title = "input mask" if i == 0 else f"after layer {i}"
        ax.set_title(f"{title}\n{holes} hole pixels", fontsize=9)
    ax = fig.add_axes((0.72, 0.3, width, 0.56))
    scale_map = matplotlib.colormaps["viridis"].with_extremes(bad="#3b3b3b")
    im = ax.imshow(ratio, cmap=scale_map, interpolation="nearest", vmin=1, vmax=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("layer-1 scale\nsum(1)/sum(M)", fontsize=9)
    cax = fig.add_axes((0.86, 0.3, 0.01, 0.56))
    fig.colorbar(im, cax=cax, ticks=[1, 3, 9]).ax.tick_params(labelsize=8)
    legend = [("■ hole (M = 0)", "#3b3b3b"), ("■ valid", "#9aaecb"),
              ("■ became valid in this layer", "#d98a1e")]  # fmt: skip
    for j, (text, color) in enumerate(legend):
        fig.text(0.01 + 0.16 * j, 0.15, text, color=color, fontsize=9)
    fig.text(
        0.01,
        0.04,
        "x' = W^T (X ⊙ M) · sum(1)/sum(M) + b   if sum(M) > 0, else 0;     "
        "m' = 1 if sum(M) > 0, else 0     (3x3 windows: the hole loses one pixel of rim per layer)",
        fontsize=8.5,
        color="#333333",
    )
    return fig
