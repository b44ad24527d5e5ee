"""Figure for the MUNIT card: content code + style code, decoded through AdaIN (drawn by sotazoo).

Top row: an image of domain A is encoded to a spatial content code and decoded by domain B's
decoder. Bottom row: the style that decoder uses comes either from a unit Gaussian (random
translation) or from B's style encoder applied to an example image (guided translation); an MLP
turns the 8-d style vector into the mean and scale of every AdaIN layer.
"""

from __future__ import annotations

from sotazoo.figures import arrow, box

_box = box


def _arrow(ax, x0, y0, x1, y1, style="-", color="#333333"):
    arrow(ax, x0, y0, x1, y1, color=color, linestyle=style)


def draw():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 4.6))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 14)
    ax.set_ylim(0, 6.4)
    ax.axis("off")
    img, enc, code, dec, mlp = "#e8eef7", "#dfe9d8", "#fbe3c4", "#f6d0c7", "#e6dcf2"
    top = 4.3
    # Content path: x_A -> content encoder -> content code -> decoder of domain B -> x_AB.
    _box(ax, 0.2, top, 1.5, 1.1, "image $x_A$\n3×256×256", img)
    _box(ax, 2.3, top, 2.0, 1.1, "content encoder $E^c_A$\nconv + 4 res blocks\n(instance norm)",
         enc, 8)  # fmt: skip
    _box(ax, 4.9, top, 1.9, 1.1, "content code $c_A$\n256×64×64\n(shared space)", code, 8)
    _box(ax, 7.4, top, 2.6, 1.1, "decoder $G_B$\n4 AdaIN res blocks\n→ 2× upsample → tanh",
         dec, 8)  # fmt: skip
    _box(ax, 10.6, top, 1.7, 1.1, "output $x_{A→B}$\n3×256×256", img)
    for x0, x1 in ((1.7, 2.3), (4.3, 4.9), (6.8, 7.4), (10.0, 10.6)):
        _arrow(ax, x0, top + 0.55, x1, top + 0.55)
    # Style path: a sampled or encoded 8-d style code -> MLP -> AdaIN parameters of G_B.
    mid, low = 2.35, 0.55
    _box(ax, 2.3, mid, 2.0, 0.9, "sample\n$s \\sim \\mathcal{N}(0, I)$", code)
    _box(ax, 0.2, low, 1.5, 1.0, "example\nimage $x_B$", img)
    _box(ax, 2.3, low, 2.0, 1.0, "style encoder $E^s_B$\nconvs (no norm)\n→ global pool",
         enc, 8)  # fmt: skip
    _arrow(ax, 1.7, low + 0.5, 2.3, low + 0.5)
    _box(ax, 4.9, 1.3, 1.9, 1.0, "style code $s_B$\n8 numbers", code)
    _arrow(ax, 4.3, mid + 0.45, 4.9, 1.95)
    _arrow(ax, 4.3, low + 0.5, 4.9, 1.6, style="--")
    ax.text(4.75, 2.55, "random", fontsize=7.5, ha="left", color="#555555")
    ax.text(4.75, 0.95, "guided", fontsize=7.5, ha="left", color="#555555")
    _box(ax, 7.4, 1.3, 2.6, 1.0, "MLP 8→256→256→4096\n= (μ, σ) of 8 AdaIN layers",
         mlp, 8)  # fmt: skip
    _arrow(ax, 6.8, 1.8, 7.4, 1.8)
    _arrow(ax, 8.7, 2.3, 8.7, top)
    ax.text(8.85, 3.35, "AdaIN$(z) = σ\\,\\frac{z - \\mathrm{mean}(z)}{\\mathrm{std}(z)} + μ$",
            fontsize=9, va="center")  # fmt: skip
    # Training signals, in words.
    ax.text(10.6, 2.15, "training (no pairs):\n"
            "• rebuild $x_A$ from $(c_A, s_A)$, L1 ×10\n"
            "• re-encode $x_{A→B}$: recover $c_A$\n   and the sampled $s$, L1 ×1 each\n"
            "• GAN loss in domain B",
            fontsize=8, va="top", color="#333333")  # fmt: skip
    ax.text(7.0, 6.05, "translate A → B: keep A's content, swap in a style of domain B",
            fontsize=10, ha="center")  # fmt: skip
    return fig
