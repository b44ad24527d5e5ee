"""Figure for the RetinaNet card: focal loss curves computed from the formula (drawn by sotazoo).

Left: FL(p_t) = -(1 - p_t)^gamma log(p_t) for gamma in {0, 0.5, 1, 2, 5}; gamma = 0 is plain
cross-entropy. Right: the same losses divided by cross-entropy, i.e. the modulating factor
(1 - p_t)^gamma on a log scale, which shows how strongly easy examples are discounted.
"""

from __future__ import annotations

GAMMAS = (0.0, 0.5, 1.0, 2.0, 5.0)
COLORS = ("#1f4e9c", "#3a8fd0", "#2e9e5b", "#e08a1e", "#c23b3b")
WHITE = {"fc": "white", "ec": "none", "pad": 1}


def focal_loss(p, gamma):
    """Focal loss of an example whose true class gets probability `p` (alpha = 1)."""
    import numpy as np

    return -((1.0 - p) ** gamma) * np.log(p)


def draw():
    import numpy as np
    from matplotlib.figure import Figure

    p = np.linspace(0.001, 0.999, 600)
    fig = Figure(figsize=(9.6, 3.8))
    left = fig.add_axes((0.07, 0.15, 0.40, 0.75))
    right = fig.add_axes((0.58, 0.15, 0.40, 0.75))

    for gamma, color in zip(GAMMAS, COLORS, strict=True):
        label = "γ = 0 (cross-entropy)" if gamma == 0 else f"γ = {gamma:g}"
        left.plot(p, focal_loss(p, gamma), color=color, lw=1.8, label=label)
        if gamma > 0:
            right.semilogy(p, (1.0 - p) ** gamma, color=color, lw=1.8, label=label)

    left.axvspan(0.5, 1.0, color="#eeeeee", zorder=0)
    left.text(0.75, 4.3, "well-classified\nexamples (p$_t$ > 0.5)", ha="center", fontsize=8,
              color="#555555")  # fmt: skip
    left.set_xlim(0, 1)
    left.set_ylim(0, 5)
    left.set_xlabel("probability of the true class, p$_t$")
    left.set_ylabel("loss")
    left.set_title("FL(p$_t$) = −(1 − p$_t$)$^γ$ log(p$_t$)", fontsize=10)
    left.legend(fontsize=8, loc="upper right", bbox_to_anchor=(1.0, 0.78), frameon=False)

    # Two reference points from Section 3.2: 100x less loss at p_t = 0.9, 1000x at ~0.968.
    for pt, text, dx in ((0.9, "γ = 2: 100× less than CE", -125), (0.968, "1000×", -40)):
        factor = (1.0 - pt) ** 2
        right.plot([pt], [factor], "o", color=COLORS[3], ms=4)
        right.annotate(text, (pt, factor), xytext=(dx, -16), textcoords="offset points",
                       fontsize=8, color="#555555", bbox=WHITE)  # fmt: skip
    right.set_xlim(0, 1)
    right.set_ylim(1e-6, 1.5)
    right.set_xlabel("probability of the true class, p$_t$")
    right.set_ylabel("FL / CE = (1 − p$_t$)$^γ$")
    right.set_title("how much of the cross-entropy is kept", fontsize=10)
    right.legend(fontsize=8, loc="lower left", frameon=False)
    for ax in (left, right):
        ax.spines["top"].set_visible(False)
        ax.spines["right"].set_visible(False)
    return fig
