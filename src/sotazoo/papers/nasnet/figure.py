"""Figure for the NASNet card: the NASNet-A Normal cell and how cells are stacked (by sotazoo).

The wiring follows the released TF-Slim definition (`NasNetANormalCell`): five blocks, each adding
the outputs of two operations applied to h_i (the output of the cell below) or h_{i-1} (the
output two cells below). The unused state h_{i-1} and the five block outputs are concatenated
(6 x F channels). The strip below shows the hand-fixed scaffold in which the cells are repeated.
"""

from __future__ import annotations

import functools

from sotazoo.figures import arrow, box

_box = functools.partial(box, fontsize=8, rounding=0.06, lw=0.9)
_arrow = functools.partial(arrow, lw=1.0)

# (op on first input, first input, op on second input, second input); "prev" is h_{i-1}.
BLOCKS = [
    ("sep 5×5", "cur", "sep 3×3", "prev"),
    ("sep 5×5", "prev", "sep 3×3", "prev"),
    ("avg 3×3", "cur", "identity", "prev"),
    ("avg 3×3", "prev", "avg 3×3", "prev"),
    ("sep 3×3", "cur", "identity", "cur"),
]
COLORS = {"prev": "#d35400", "cur": "#1f4e9a"}
OP_COLORS = {"sep": "#fbe3c4", "avg": "#dfe9d8", "ide": "#eeeeee"}


def draw():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.5, 6.4))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 14)
    ax.set_ylim(-1.9, 10.9)
    ax.axis("off")
    ax.text(7, 10.5, "NASNet-A Normal cell (keeps H×W; F filters per operation)",
            ha="center", fontsize=10, weight="bold")  # fmt: skip
    inputs = {"prev": 7.4, "cur": 3.0}  # y centre of each input box
    _box(ax, 0.2, inputs["prev"] - 0.5, 2.2, 1.0, "$h_{i-1}$\noutput 2 cells below", "#fdebd0")
    _box(ax, 0.2, inputs["cur"] - 0.5, 2.2, 1.0, "$h_i$\noutput 1 cell below", "#e8eef7")
    plus_x = 7.4
    for b, (op_a, in_a, op_b, in_b) in enumerate(BLOCKS):
        y = 9.0 - 1.9 * b  # top of the block row
        for k, (op, src) in enumerate(((op_a, in_a), (op_b, in_b))):
            oy = y - 0.72 * k - 0.55
            ax.plot([2.4, 4.6], [inputs[src], oy + 0.27], color=COLORS[src], lw=1.0)
            _box(ax, 4.6, oy, 1.9, 0.55, op, OP_COLORS[op[:3]], fontsize=7.5)
            _arrow(ax, 6.5, oy + 0.27, plus_x - 0.2, y - 0.63)
        ax.text(plus_x, y - 0.63, "+", fontsize=15, ha="center", va="center")
        ax.text(plus_x + 0.5, y - 0.63, f"B{b + 1}", fontsize=8, va="center")
        _arrow(ax, plus_x + 0.9, y - 0.63, 10.2, 4.4 + 0.25 * (4 - b))
    ax.plot([1.3, 1.3, 9.6], [inputs["prev"] + 0.5, 10.05, 10.05], color=COLORS["prev"],
            lw=1.0, ls="--")  # fmt: skip
    _arrow(ax, 9.6, 10.05, 10.2, 5.7, COLORS["prev"])
    _box(ax, 10.2, 3.9, 2.0, 2.1, "concat\n$h_{i-1}$, B1…B5\n6F channels", "#e8eef7")
    _arrow(ax, 12.2, 4.95, 13.0, 4.95)
    ax.text(13.1, 4.95, "$h_{i+1}$", fontsize=10, va="center")
    ax.text(11.2, 3.0, "sep k×k: (ReLU, separable\nconv k×k, BN), applied twice",
            ha="center", va="top", fontsize=7.5)  # fmt: skip
    # The fixed scaffold: searched cells repeated N times, filters doubled at each reduction.
    stack = ["stem", "N × Normal", "Reduction", "N × Normal", "Reduction", "N × Normal", "softmax"]
    for k, name in enumerate(stack):
        x = 0.2 + 1.95 * k
        color = "#fbe3c4" if name == "Reduction" else "#e8eef7"
        _box(ax, x, -1.1, 1.65, 0.7, name, color, fontsize=7.5)
        if k:
            _arrow(ax, x - 0.3, -0.75, x, -0.75)
    ax.text(7, -1.65, "F doubles after each stride-2 Reduction cell;  'N @ F' names a model",
            ha="center", fontsize=8, color="#555555")  # fmt: skip
    return fig
