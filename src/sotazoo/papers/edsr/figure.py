"""Figure for the EDSR card: SRResNet's residual block beside EDSR's (drawn by sotazoo).

Both blocks read x (H x W x F) from the bottom and add the branch back to an identity shortcut.
EDSR's block has no batch norm and multiplies the branch by a constant 0.1 before the sum.
"""

from __future__ import annotations

from sotazoo.figures import arrow, box

_box = box
_arrow = arrow

CONV, BN, ACT, SCALE = "#dfe9d8", "#f6d0c7", "#fbe3c4", "#e3dcf2"


def _column(ax, x0, title, layers, note):
    """One residual block drawn bottom-up at x0; layers are (label, color) pairs."""
    w, h, gap, y0 = 2.4, 0.55, 0.22, 0.6
    cx = x0 + w / 2
    ax.text(cx, 7.6, title, ha="center", va="center", fontsize=10, weight="bold")
    _box(ax, x0, y0, w, h, "x   (H×W×F)", "#e8eef7")
    y = y0 + h + gap
    _arrow(ax, cx, y0 + h, cx, y)
    for label, color in layers:
        _box(ax, x0, y, w, h, label, color)
        _arrow(ax, cx, y + h, cx, y + h + gap)
        y += h + gap
    ax.text(cx, y + 0.15, "⊕", fontsize=18, ha="center", va="center")
    # Identity shortcut: from x up the right-hand side into the sum.
    sx = x0 + w + 0.35
    ax.plot([x0 + w, sx, sx], [y0 + h / 2, y0 + h / 2, y + 0.15], color="#333333", lw=1.0)
    _arrow(ax, sx, y + 0.15, cx + 0.22, y + 0.15)
    ax.text(sx + 0.12, 2.4, "identity", rotation=90, fontsize=8, va="center", color="#555555")
    _arrow(ax, cx, y + 0.38, cx, y + 0.75)
    _box(ax, x0, y + 0.75, w, h, "out   (H×W×F)", "#e8eef7")
    ax.text(cx, y + 1.8, note, ha="center", va="center", fontsize=8, color="#555555")


def draw():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.6, 4.8))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 8)
    ax.axis("off")
    srresnet = [("conv 3×3", CONV), ("batch norm", BN), ("ReLU", ACT),
                ("conv 3×3", CONV), ("batch norm", BN)]  # fmt: skip
    edsr = [
        ("conv 3×3", CONV),
        ("ReLU", ACT),
        ("conv 3×3", CONV),
        ("× 0.1  (residual scaling)", SCALE),
    ]
    _column(ax, 0.9, "SRResNet block", srresnet, "16 blocks × 64 channels")
    _column(ax, 5.9, "EDSR block", edsr, "32 blocks × 256 channels;\nno BN, nothing after the sum")
    ax.text(5.0, 0.2, "removing BN keeps the feature range and saves ~40% training memory",
            ha="center", fontsize=8, color="#555555")  # fmt: skip
    return fig
