"""Figure for the DBPN card: the up-projection unit and its down-projection mirror (by sotazoo).

Top row: L(t-1) is deconvolved to H0, convolved back to L0, the low-resolution error
L0 - L(t-1) is deconvolved to H1 and the unit outputs H0 + H1. Bottom row: the same pattern with
the roles of convolution and deconvolution swapped. Shapes are for scale factor s, 64 channels.
"""

from __future__ import annotations

from sotazoo.figures import arrow, box

_box = box
_arrow = arrow

LR, HR, OP = "#e8eef7", "#fbe3c4", "#dfe9d8"


def _unit(ax, y, names, ops, res, title):
    """One projection unit on the row at height y.

    names: input, first guess, projected back, error, second guess, output.
    ops: the three layers (up or down sampling).  res: resolution label of each tensor.
    """
    h, tw, ow, gap = 0.9, 1.32, 1.3, 0.26
    kinds = ["t", "o", "t", "o", "t", "minus", "t", "o", "t", "plus", "t"]
    labels = [names[0], ops[0], names[1], ops[1], names[2], "−", names[3], ops[2], names[4], "+"]
    labels.append(names[5])
    tensor_res = iter(res)
    x, centers = 0.3, []
    for kind, label in zip(kinds, labels, strict=True):
        if kind == "t":
            r = next(tensor_res)
            _box(ax, x, y, tw, h, f"{label}\n{r}", HR if "s" in r else LR, fontsize=8.5)
            centers.append((x, x + tw))
            x += tw + gap
        elif kind == "o":
            _box(ax, x, y + 0.1, ow, h - 0.2, label, OP, fontsize=8)
            centers.append((x, x + ow))
            x += ow + gap
        else:
            ax.text(x + 0.2, y + h / 2, "⊖" if kind == "minus" else "⊕", fontsize=18,
                    ha="center", va="center")  # fmt: skip
            centers.append((x, x + 0.4))
            x += 0.4 + gap
    for (_, right), (left, _) in zip(centers[:-1], centers[1:], strict=True):
        _arrow(ax, right, y + h / 2, left, y + h / 2)
    # Skip from the unit input to the subtraction (above), first guess to the addition (below).
    (a0, a1), (m0, m1) = centers[0], centers[5]
    top = y + h + 0.35
    ax.plot([(a0 + a1) / 2, (a0 + a1) / 2, (m0 + m1) / 2], [y + h, top, top], color="#333333", lw=1)
    _arrow(ax, (m0 + m1) / 2, top, (m0 + m1) / 2, y + h / 2 + 0.25)
    (g0, g1), (p0, p1) = centers[2], centers[9]
    low = y - 0.35
    ax.plot([(g0 + g1) / 2, (g0 + g1) / 2, (p0 + p1) / 2], [y, low, low], color="#333333", lw=1)
    _arrow(ax, (p0 + p1) / 2, low, (p0 + p1) / 2, y + h / 2 - 0.25)
    ax.text(0.3, top + 0.3, title, fontsize=10, weight="bold", va="center")


def draw():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.6, 4.5))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 16.0)
    ax.set_ylim(0, 6.3)
    ax.axis("off")
    lr, hr = "h×w×64", "sh×sw×64"
    _unit(ax, 4.3, ["L(t-1)", "H0", "L0", "e = L0−L(t-1)", "H1", "H(t)=H0+H1"],
          ["deconv\nk, stride s", "conv\nk, stride s", "deconv\nk, stride s"],
          [lr, hr, lr, lr, hr, hr], "Up-projection unit")  # fmt: skip
    _unit(ax, 1.2, ["H(t)", "L0", "H0", "e = H0−H(t)", "L1", "L(t)=L0+L1"],
          ["conv\nk, stride s", "deconv\nk, stride s", "conv\nk, stride s"],
          [hr, lr, hr, hr, lr, lr], "Down-projection unit (mirror)")  # fmt: skip
    ax.text(8.0, 0.25, "(k, s, padding) = (6, 2, 2) for 2×, (8, 4, 2) for 4×, (12, 8, 2) for 8×;"
            "  every conv/deconv is followed by PReLU",
            ha="center", fontsize=8.5, color="#555555")  # fmt: skip
    return fig
