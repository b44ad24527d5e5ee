"""Figure for the DeepLabv3+ card: the encoder-decoder and its atrous separable 3x3 (by sotazoo).

Left: the network at a 513 x 513 input (output stride 16 gives 33 x 33, stride 4 gives 129 x 129).
The DeepLabv3 encoder (atrous backbone + ASPP) is upsampled 4x, fused with 48-channel low-level
features, refined by two 3x3 convolutions and upsampled 4x again. Right: one atrous separable 3x3
with rate 2, a dilated 3x3 on each channel on its own, then a 1x1 mixing the channels, with its
multiply-add count next to a standard 3x3.
"""

from __future__ import annotations

import functools

from sotazoo.figures import arrow, box

_box = functools.partial(box, fontsize=8)
_arrow = functools.partial(arrow, lw=1.1)

C_IN = C_OUT = 256


def _network(ax):
    ax.set_xlim(0, 16)
    ax.set_ylim(0.8, 10.6)
    ax.axis("off")
    enc, feat, conv = "#e8eef7", "#dfe9d8", "#fbe3c4"
    ax.text(0.1, 10.2, "encoder (DeepLabv3), output stride 16", fontsize=9, weight="bold")
    ax.text(0.1, 4.6, "decoder, output stride 4", fontsize=9, weight="bold")
    _box(ax, 0.1, 7.2, 1.7, 1.6, "image\n513×513×3", feat)
    _box(ax, 2.3, 7.2, 2.6, 1.6, "backbone with\natrous convs\n(ResNet-101 or\nXception-65)", enc)
    _arrow(ax, 1.8, 8.0, 2.3, 8.0)
    aspp = ["1×1 conv", "3×3, rate 6", "3×3, rate 12", "3×3, rate 18", "image pooling"]
    ys = [9.3 - 0.72 * i for i in range(len(aspp))]
    ax.plot([4.9, 5.5], [8.0, 8.0], color="#333333", lw=1.1)
    ax.plot([5.5, 5.5], [ys[-1] + 0.25, ys[0] + 0.25], color="#333333", lw=1.1)
    ax.plot([8.3, 8.6, 8.6], [ys[0] + 0.25] * 2 + [ys[-1] + 0.25], color="#333333", lw=1.1)
    for y, text in zip(ys, aspp, strict=True):
        _arrow(ax, 5.5, y + 0.25, 5.8, y + 0.25)
        _box(ax, 5.8, y, 2.5, 0.5, text, conv, fontsize=7.5)
        if y != ys[0]:
            ax.plot([8.3, 8.6], [y + 0.25] * 2, color="#333333", lw=1.1)
    ax.text(7.05, 9.95, "ASPP on 33×33×2048", ha="center", fontsize=8)
    _arrow(ax, 8.6, 8.0, 9.0, 8.0)
    _box(ax, 9.0, 7.2, 2.3, 1.6, "concat, 1×1 conv\n33×33×256", enc)
    _arrow(ax, 11.3, 8.0, 11.8, 8.0)
    _box(ax, 11.8, 7.2, 2.2, 1.6, "bilinear ×4\n129×129×256", feat)
    # Decoder row: low-level features squeezed to 48 channels, fused, refined, upsampled.
    _arrow(ax, 3.6, 7.2, 3.6, 3.6)
    ax.text(3.7, 5.3, "stride-4 features", fontsize=7.5)
    _box(ax, 2.3, 2.0, 2.6, 1.6, "low-level features\n129×129×256", feat)
    _arrow(ax, 4.9, 2.8, 5.5, 2.8)
    _box(ax, 5.5, 2.0, 2.1, 1.6, "1×1 conv\nto 48 channels", conv)
    _arrow(ax, 7.6, 2.8, 8.2, 2.8)
    _box(ax, 8.2, 2.0, 1.9, 1.6, "concat\n129×129×304", enc)
    ax.plot([12.9, 12.9, 9.15], [7.2, 4.4, 4.4], color="#333333", lw=1.1)
    _arrow(ax, 9.15, 4.4, 9.15, 3.6)
    _arrow(ax, 10.1, 2.8, 10.6, 2.8)
    _box(ax, 10.6, 2.0, 2.4, 1.6, "two 3×3 convs,\n256 channels", conv)
    _arrow(ax, 13.0, 2.8, 13.5, 2.8)
    _box(ax, 13.5, 2.0, 2.4, 1.6, "1×1 to 21 classes,\nbilinear ×4\n513×513×21", feat)
    ax.text(8.0, 1.1, "orange: convolutions; each 3×3 among them is atrous separable (right)",
            ha="center", fontsize=8, color="#555555")  # fmt: skip


def _separable(ax):
    from matplotlib.patches import Rectangle

    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10.6)
    ax.axis("off")
    ax.text(5, 10.2, "atrous separable 3×3, rate 2", ha="center", fontsize=9, weight="bold")
    colors = ("#c0392b", "#27ae60", "#2e5fa3")
    cell = 0.36
    for k, color in enumerate(colors):
        x0, y0 = 0.4 + 3.2 * k, 6.6
        for i in range(7):
            for j in range(7):
                tap = i % 2 == 1 and j % 2 == 1 and 0 < i < 6 and 0 < j < 6
                ax.add_patch(Rectangle((x0 + i * cell, y0 + j * cell), cell, cell, lw=0.4,
                                       ec="#999999", fc=color if tap else "white",
                                       alpha=0.8 if tap else 1.0))  # fmt: skip
        ax.text(x0 + 3.5 * cell, y0 - 0.35, f"channel {k + 1}", ha="center", fontsize=7.5)
        _arrow(ax, x0 + 3.5 * cell, y0 - 0.6, 5.0, 4.6)
    ax.text(5.0, 9.4, "depthwise: its own dilated 3×3 on each channel", ha="center", fontsize=8)
    _box(ax, 1.8, 3.6, 6.4, 1.0, "pointwise 1×1: mix the channels", "#fbe3c4")
    standard = 9 * C_IN * C_OUT
    separable = 9 * C_IN + C_IN * C_OUT
    ax.text(5.0, 2.5, f"multiply-adds per output position, {C_IN} → {C_OUT} channels:",
            ha="center", fontsize=8)  # fmt: skip
    ax.text(5.0, 1.6, f"standard 9·Cin·Cout = {standard:,}", ha="center", fontsize=8)
    ax.text(5.0, 0.9, f"separable 9·Cin + Cin·Cout = {separable:,}  ({separable / standard:.1%})",
            ha="center", fontsize=8)  # fmt: skip


def draw():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12.5, 4.8))
    _network(fig.add_axes((0.0, 0.0, 0.68, 1.0)))
    _separable(fig.add_axes((0.69, 0.0, 0.31, 1.0)))
    return fig
