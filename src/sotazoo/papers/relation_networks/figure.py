"""Figure for the Relation Networks card: the relation module on pixels (drawn by sotazoo).

Left to right: a small CNN turns the image into a d x d feature map; every cell, tagged with its
(x, y) coordinate, is an object o_i. Every ordered pair (o_i, o_j) is concatenated with the question
embedding q and sent through the same MLP g; the n^2 outputs are summed and the MLP f answers.
"""

from __future__ import annotations

from sotazoo.figures import arrow, box

_box = box
_arrow = arrow

CELL_COLORS = {(0, 1): "#f2c14e", (3, 3): "#e4572e", (4, 0): "#4f86c6"}


def _pair(ax, x, y, left, right):
    """One g input: [o_i | o_j | q] drawn as three coloured segments."""
    from matplotlib.patches import Rectangle

    for k, color in enumerate((left, right, "#b9d7a8")):
        ax.add_patch(Rectangle((x + 0.38 * k, y), 0.38, 0.32, fc=color, ec="#333333", lw=0.8))


def draw():
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    fig = Figure(figsize=(10.5, 4.0))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 15)
    ax.set_ylim(0, 5.7)
    ax.axis("off")

    _box(ax, 0.2, 2.6, 1.3, 1.2, "image\n128×128\n(CLEVR)", "#e8eef7")
    _box(ax, 1.9, 2.6, 1.5, 1.2, "CNN\n4 conv 3×3\nstride 2", "#dfe9d8")
    _arrow(ax, 1.5, 3.2, 1.9, 3.2)

    # The d x d feature map: every cell is an object once its coordinates are appended.
    x0, y0, s = 3.9, 2.1, 0.44
    for i in range(5):
        for j in range(5):
            color = CELL_COLORS.get((i, j), "#f4f4f4")
            ax.add_patch(Rectangle((x0 + i * s, y0 + j * s), s, s, fc=color, ec="#777777", lw=0.7))
    _arrow(ax, 3.4, 3.2, 3.9, 3.2)
    ax.text(x0 + 2.5 * s, y0 + 5 * s + 0.15, "feature map d×d×k", ha="center", fontsize=8.5)
    ax.text(x0 + 2.5 * s, y0 - 0.45, "object o$_i$ = [cell features, x, y]", ha="center",
            fontsize=8.5)  # fmt: skip

    # All ordered pairs, each concatenated with the question embedding q.
    colors = list(CELL_COLORS.values())
    pairs = [(0, 1), (0, 2), (1, 2), (2, 0), (1, 1)]
    for k, (a, b) in enumerate(pairs):
        _pair(ax, 6.95, 4.3 - 0.5 * k, colors[a], colors[b])
    ax.text(7.52, 4.85, "[o$_i$, o$_j$, q]", ha="center", fontsize=8.5)
    ax.text(7.52, 1.55, "⋮  all n² pairs", ha="center", fontsize=8.5)
    _arrow(ax, x0 + 5 * s + 0.1, 3.2, 6.9, 3.2)

    _box(ax, 0.2, 0.25, 3.2, 0.8, "question → LSTM (CLEVR)\nor 11-bit code (Sort-of-CLEVR)",
         "#b9d7a8", fontsize=8.5)  # fmt: skip
    ax.plot([3.4, 7.52], [0.65, 0.65], color="#333333", lw=1.2)
    _arrow(ax, 7.52, 0.65, 7.52, 1.4)
    ax.text(5.5, 0.78, "q is appended to every pair", ha="center", fontsize=8, color="#555555")

    _box(ax, 8.6, 2.5, 1.6, 1.4, "g$_θ$\nMLP, 4 layers\nshared by\nall pairs", "#f6d0c7")
    _arrow(ax, 8.15, 3.2, 8.6, 3.2)
    ax.text(10.85, 3.2, "Σ", fontsize=22, ha="center", va="center")
    _arrow(ax, 10.2, 3.2, 10.6, 3.2)
    ax.text(10.85, 2.45, "sum over\npairs", ha="center", va="top", fontsize=8)
    _box(ax, 11.5, 2.6, 1.5, 1.2, "f$_φ$\nMLP", "#fbe3c4")
    _arrow(ax, 11.1, 3.2, 11.5, 3.2)
    _box(ax, 13.4, 2.6, 1.4, 1.2, "answer\n(softmax)", "#e8eef7")
    _arrow(ax, 13.0, 3.2, 13.4, 3.2)

    ax.text(11.2, 0.65, "RN(O) = f$_φ$( Σ$_{i,j}$ g$_θ$(o$_i$, o$_j$, q) )\n"
            "order-invariant; cost grows with n² (25 cells → 625 pairs)",
            ha="center", va="center", fontsize=9, color="#333333")  # fmt: skip
    return fig
