"""Figure for the SENet card: the SE block inside a residual unit (drawn by sotazoo).

Left to right: the residual branch's output U (H x W x C) is squeezed to one number per channel,
excited through the r-fold bottleneck and a sigmoid, and the gates rescale U before the identity
shortcut is added back.
"""

from __future__ import annotations

from sotazoo.figures import arrow, box

_box = box
_arrow = arrow


def draw():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 3.4))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 13)
    ax.set_ylim(0, 5)
    ax.axis("off")
    main_y, gate_y = 2.9, 0.6
    _box(ax, 0.2, main_y, 1.4, 1.0, "X\nH×W×C", "#e8eef7")
    _box(ax, 2.1, main_y, 1.7, 1.0, "residual\nbranch\n(1×1, 3×3, 1×1)", "#dfe9d8")
    _box(ax, 4.3, main_y, 1.4, 1.0, "U\nH×W×C", "#e8eef7")
    # Squeeze and excitation run below the main path, one scalar per channel.
    stages = [
        ("squeeze\nglobal avg pool\n1×1×C", "#fbe3c4"),
        ("FC  C→C/r\nReLU", "#f6d0c7"),
        ("FC  C/r→C\nsigmoid", "#f6d0c7"),
    ]
    x = 4.3
    for text, color in stages:
        _box(ax, x, gate_y, 1.7, 1.0, text, color)
        x += 2.1
    for x0 in (6.0, 8.1):
        _arrow(ax, x0, gate_y + 0.5, x0 + 0.4, gate_y + 0.5)
    _arrow(ax, 5.0, main_y, 5.0, gate_y + 1.0)
    _arrow(ax, 1.6, main_y + 0.5, 2.1, main_y + 0.5)
    _arrow(ax, 3.8, main_y + 0.5, 4.3, main_y + 0.5)
    # Scale: channel-wise product of U with the gates, then the identity shortcut.
    ax.text(9.3, main_y + 0.5, "⊗", fontsize=20, ha="center", va="center")
    _arrow(ax, 5.7, main_y + 0.5, 9.05, main_y + 0.5)
    _arrow(ax, 9.3, gate_y + 1.0, 9.3, main_y + 0.25)
    ax.text(9.45, 1.9, "scale: one gate\nin (0, 1) per channel", fontsize=8, va="center")
    ax.text(10.7, main_y + 0.5, "⊕", fontsize=20, ha="center", va="center")
    _arrow(ax, 9.55, main_y + 0.5, 10.45, main_y + 0.5)
    ax.plot([0.9, 0.9, 10.7], [main_y + 1.0, 4.6, 4.6], color="#333333", lw=1.0)
    _arrow(ax, 10.7, 4.6, 10.7, main_y + 0.75)
    ax.text(5.8, 4.7, "identity shortcut (added after the gate, not gated)", fontsize=8,
            ha="center")  # fmt: skip
    _box(ax, 11.3, main_y, 1.5, 1.0, "output\nH×W×C", "#e8eef7")
    _arrow(ax, 10.95, main_y + 0.5, 11.3, main_y + 0.5)
    ax.text(6.5, 0.15, "extra cost: 2C²/r weights per block; under 1% more multiply-adds",
            fontsize=8, ha="center", color="#555555")  # fmt: skip
    return fig
