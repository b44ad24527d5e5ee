"""Figure for the ProGAN card: progressive growing and the fade-in (drawn by sotazoo).

Left: the CelebA-HQ schedule of the official config (800k real images to fade each new
resolution in, then 800k to stabilise it), drawn as the blending weight alpha of the newest
block against the number of real images shown, with the resolution of each phase.
Right: the generator during the 16x16 -> 32x32 transition. The new 32x32 block's RGB output is
blended with the nearest-upsampled RGB output of the 16x16 stage: (1 - alpha) * old + alpha * new.
"""

from __future__ import annotations

from sotazoo.figures import arrow, box

_box = box
_arrow = arrow

PHASE_KIMG = 800  # lod_training_kimg = lod_transition_kimg = 800 for CelebA-HQ


def _schedule(ax):
    """alpha of the newest block vs millions of real images, 4x4 up to 64x64."""
    xs, alphas = [0.0, PHASE_KIMG / 1000], [1.0, 1.0]
    ax.text(0.4, 1.06, "4²", ha="center", fontsize=9)
    t = PHASE_KIMG / 1000
    for res in (8, 16, 32, 64):
        fade, stable = t + PHASE_KIMG / 1000, t + 2 * PHASE_KIMG / 1000
        xs += [t, fade, stable]
        alphas += [0.0, 1.0, 1.0]
        ax.axvspan(t, fade, color="#fbe3c4", lw=0)
        ax.text((t + stable) / 2, 1.06, f"{res}²", ha="center", fontsize=9)
        t = stable
    ax.plot(xs, alphas, color="#c0392b", lw=1.8)
    ax.set_xlim(0, t)
    ax.set_ylim(-0.05, 1.18)
    ax.set_xlabel("real images shown to D (millions)", fontsize=9)
    ax.set_ylabel("α of the newest block", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.set_title("grow 4² → 8² → … → 1024²; shaded: fade-in phases", fontsize=9, pad=16)


def draw():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12.0, 4.2))
    _schedule(fig.add_axes((0.06, 0.16, 0.33, 0.66)))
    ax = fig.add_axes((0.42, 0.0, 0.58, 1.0))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 6)
    ax.axis("off")
    ax.text(5.0, 5.6, "generator during the 16² → 32² fade-in", ha="center", fontsize=10)
    _box(ax, 0.1, 2.5, 1.6, 1.0, "4² … 16²\nblocks\n(trained)", "#dfe9d8")
    _box(ax, 2.2, 2.5, 1.2, 1.0, "2× nearest\nupsample", "#e8eef7")
    _arrow(ax, 1.7, 3.0, 2.2, 3.0)
    # New path: two 3x3 convs at 32x32, then a 1x1 toRGB.
    _box(ax, 4.0, 4.0, 1.7, 1.0, "new 32² block\n2 × conv 3×3", "#f6d0c7")
    _box(ax, 6.2, 4.0, 1.3, 1.0, "toRGB\n1×1 (new)", "#f6d0c7")
    _arrow(ax, 3.4, 3.2, 4.0, 4.5)
    _arrow(ax, 5.7, 4.5, 6.2, 4.5)
    # Old path: the 16x16 stage's toRGB; on a nearest-upsampled input it equals up(toRGB(x)).
    _box(ax, 4.0, 1.0, 1.7, 1.0, "toRGB 1×1 (old,\nfrom the 16² stage)", "#fbe3c4")
    _arrow(ax, 3.4, 2.8, 4.0, 1.5)
    ax.text(8.1, 4.5, "× α", fontsize=11, ha="center", va="center")
    ax.text(8.1, 1.5, "× (1 − α)", fontsize=11, ha="center", va="center")
    _arrow(ax, 7.5, 4.5, 7.85, 4.5)
    _arrow(ax, 5.7, 1.5, 7.6, 1.5)
    ax.text(8.8, 3.0, "⊕", fontsize=22, ha="center", va="center")
    _arrow(ax, 8.35, 4.35, 8.7, 3.25)
    _arrow(ax, 8.55, 1.7, 8.7, 2.75)
    ax.text(9.55, 3.0, "32²\nimage", fontsize=9, ha="center", va="center")
    _arrow(ax, 9.05, 3.0, 9.25, 3.0)
    ax.text(5.0, 0.25, "D mirrors this: fromRGB on the 32² image through the new block and "
            "2× average-pool, blended with fromRGB of a downscaled image; real images are "
            "blended the same way", fontsize=7.5, ha="center", color="#555555", wrap=True)  # fmt: skip
    return fig
