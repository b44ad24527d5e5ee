"""Figure for the Mask R-CNN card: RoIPool against RoIAlign on one box (drawn by sotazoo).

Both panels show the same 8 x 8 patch of a stride-16 feature map (dashed cells, grey dots at the
cell centres where feature values live) and the same proposal, whose corners fall between cells.
Left, RoIPool rounds the box and then the 2 x 2 bin edges to whole cells and max-pools each bin.
Right, RoIAlign keeps the exact box and bins, samples 2 x 2 regular points per bin by bilinear
interpolation (the weights of one point are worked out) and averages them.
"""

from __future__ import annotations

# The proposal in feature-map units (image coordinates / 16): corners between cells.
BOX = (1.3, 1.6, 6.1, 5.8)  # x0, y0, x1, y1
BIN_COLORS = ("#f6d0c7", "#dfe9d8", "#e8eef7", "#fbe3c4")


def _grid(ax, title):
    ax.set_xlim(-0.3, 8.3)
    ax.set_ylim(9.3, -0.3)  # image convention: y grows downwards
    ax.set_aspect("equal")
    ax.axis("off")
    for i in range(9):
        ax.plot([i, i], [0, 8], ls="--", lw=0.6, color="#999999")
        ax.plot([0, 8], [i, i], ls="--", lw=0.6, color="#999999")
    xs = [i + 0.5 for i in range(8) for _ in range(8)]
    ys = [j + 0.5 for _ in range(8) for j in range(8)]
    ax.scatter(xs, ys, s=4, color="#aaaaaa", zorder=2)
    ax.set_title(title, fontsize=10)


def _rect(ax, x0, y0, x1, y1, **kw):
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, **kw))


def _roipool(ax):
    _grid(ax, "RoIPool: round the box, round the bins, max-pool")
    x0, y0, x1, y1 = BOX
    qx0, qy0, qx1, qy1 = round(x0), round(y0), round(x1), round(y1)  # (1, 2, 6, 6)
    xm, ym = round((qx0 + qx1) / 2), round((qy0 + qy1) / 2)  # bin edges snap to cells too
    bins = [(qx0, qy0, xm, ym), (xm, qy0, qx1, ym), (qx0, ym, xm, qy1), (xm, ym, qx1, qy1)]
    for (bx0, by0, bx1, by1), color in zip(bins, BIN_COLORS, strict=True):
        _rect(ax, bx0, by0, bx1, by1, fc=color, ec="#333333", lw=1.4, zorder=1)
    # One winning cell per bin (illustrative), whatever part of it lies outside the true box.
    for cx, cy in ((2.5, 2.5), (4.5, 3.5), (1.5, 5.5), (5.5, 4.5)):
        ax.scatter([cx], [cy], marker="*", s=90, color="#b03a2e", zorder=4)
    _rect(ax, x0, y0, x1, y1, fc="none", ec="#1f4e9a", lw=1.6, ls=":", zorder=3)
    ax.text(4, 8.45, f"box ({x0}, {y0})-({x1}, {y1}) becomes ({qx0}, {qy0})-({qx1}, {qy1});",
            ha="center", fontsize=8)  # fmt: skip
    ax.text(4, 8.95, "bins 3 and 2 cells wide: features shifted by up to half a cell",
            ha="center", fontsize=8, color="#b03a2e")  # fmt: skip


def _roialign(ax):
    _grid(ax, "RoIAlign: exact box and bins, bilinear samples, average")
    x0, y0, x1, y1 = BOX
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    for (bx0, by0, bx1, by1), color in zip(
        [(x0, y0, xm, ym), (xm, y0, x1, ym), (x0, ym, xm, y1), (xm, ym, x1, y1)],
        BIN_COLORS,
        strict=True,
    ):
        _rect(ax, bx0, by0, bx1, by1, fc=color, ec="#1f4e9a", lw=1.4, alpha=0.8, zorder=1)
        pts = [(bx0 + fx * (bx1 - bx0), by0 + fy * (by1 - by0))
               for fx in (0.25, 0.75) for fy in (0.25, 0.75)]  # fmt: skip
        ax.scatter(*zip(*pts, strict=True), s=22, color="#1f4e9a", zorder=4)
    # Bilinear weights of the first sample point from its four neighbouring cell centres.
    px, py = x0 + 0.25 * (xm - x0), y0 + 0.25 * (ym - y0)
    cx, cy = int(px - 0.5) + 0.5, int(py - 0.5) + 0.5
    dx, dy = px - cx, py - cy
    for nx, ny, w in ((cx, cy, (1 - dx) * (1 - dy)), (cx + 1, cy, dx * (1 - dy)),
                      (cx, cy + 1, (1 - dx) * dy), (cx + 1, cy + 1, dx * dy)):  # fmt: skip
        ax.plot([px, nx], [py, ny], color="#b03a2e", lw=1.0, zorder=3)
        ax.scatter([nx], [ny], s=14, color="#b03a2e", zorder=4)
        ax.text(nx + (0.08 if nx > px else -0.08), ny + (0.3 if ny > py else -0.12), f"{w:.2f}",
                fontsize=7, color="#b03a2e", ha="left" if nx > px else "right")  # fmt: skip
    ax.text(4, 8.45, "4 sample points per bin; each is a weighted mean of its 4",
            ha="center", fontsize=8)  # fmt: skip
    ax.text(4, 8.95, "nearest feature values (weights shown for one point)",
            ha="center", fontsize=8, color="#b03a2e")  # fmt: skip


def draw():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 5.4))
    _roipool(fig.add_axes((0.01, 0.0, 0.48, 0.94)))
    _roialign(fig.add_axes((0.51, 0.0, 0.48, 0.94)))
    return fig
