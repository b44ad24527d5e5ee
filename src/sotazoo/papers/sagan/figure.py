"""Figure for the SAGAN card: the self-attention block (drawn by sotazoo).

The input feature map x (C x H x W, N = H*W positions) goes through three 1x1 convolutions:
f (queries), g (keys) and h (values), each with C/8 channels. Query-key products over all positions,
softmaxed per query, give an N x N attention map; the attended values go through a last 1x1
convolution v, are multiplied by the learned scalar gamma (initialised to 0) and added to x.
"""

from __future__ import annotations

from sotazoo.figures import arrow, box

_box = box
_arrow = arrow


def draw():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 4.2))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 14)
    ax.set_ylim(0, 6)
    ax.axis("off")
    conv, mid = "#dfe9d8", "#fbe3c4"
    _box(ax, 0.2, 2.5, 1.5, 1.0, "x\nC × H × W", "#e8eef7")
    rows = [(4.3, "f: 1×1 conv\nquery, C/8"), (2.5, "g: 1×1 conv\nkey, C/8"),
            (0.7, "h: 1×1 conv\nvalue, C/8")]  # fmt: skip
    for y, text in rows:
        _box(ax, 2.6, y, 1.8, 1.0, text, conv)
        _arrow(ax, 1.7, 3.0, 2.6, y + 0.5)
    # Query-key products over all N = H*W positions, softmax per query position.
    _box(ax, 5.3, 3.4, 2.0, 1.0, "scores\nf(x_i)ᵀ g(x_j)", mid)
    _arrow(ax, 4.4, 4.8, 5.3, 4.05)
    _arrow(ax, 4.4, 3.0, 5.3, 3.75)
    _box(ax, 8.0, 3.4, 2.0, 1.0, "softmax over i\nattention N × N", "#f6d0c7")
    _arrow(ax, 7.3, 3.9, 8.0, 3.9)
    # The attention map weights the values: o_j = v(sum_i beta_ji h(x_i)).
    ax.text(9.0, 1.2, "⊗", fontsize=20, ha="center", va="center")
    _arrow(ax, 9.0, 3.4, 9.0, 1.45)
    _arrow(ax, 4.4, 1.2, 8.75, 1.2)
    ax.text(6.6, 0.85, "values at all N positions", fontsize=8, ha="center", color="#555555")
    _box(ax, 9.7, 0.7, 1.5, 1.0, "v: 1×1 conv\nback to C", conv)
    _arrow(ax, 9.25, 1.2, 9.7, 1.2)
    _box(ax, 11.6, 0.7, 1.0, 1.0, "× γ\n(γ₀ = 0)", mid)
    _arrow(ax, 11.2, 1.2, 11.6, 1.2)
    ax.text(12.1, 3.0, "⊕", fontsize=22, ha="center", va="center")
    _arrow(ax, 12.1, 1.7, 12.1, 2.75)
    ax.plot([0.95, 0.95, 12.1], [3.5, 5.6, 5.6], color="#333333", lw=1.0)
    _arrow(ax, 12.1, 5.6, 12.1, 3.25)
    ax.text(6.6, 5.7, "identity: y = x + γ · o", fontsize=9, ha="center")
    _box(ax, 12.6, 2.5, 1.3, 1.0, "y\nC × H × W", "#e8eef7")
    _arrow(ax, 12.35, 3.0, 12.6, 3.0)
    ax.text(7.0, 0.15, "N = H·W: at a 32×32 map the attention matrix is 1024 × 1024 per image; "
            "the official code max-pools keys and values 2×2 (N/4 of them)",
            fontsize=8, ha="center", color="#555555")  # fmt: skip
    return fig
