"""Card figures: diagrams of a paper's core idea, drawn by us with matplotlib.

A paper whose card sets `figure` (the caption) has `papers/<id>/figure.py` with a function
`draw() -> matplotlib.figure.Figure`. The figure is never a copy of the paper's: it is our own
drawing of the idea, rendered to SVG for the site and on demand here::

    python -m sotazoo.figures senet out.svg
"""

from __future__ import annotations

import sys
from pathlib import Path

from sotazoo.errors import CardError
from sotazoo.fileio import atomic_path


def render_figure(paper_id: str, out: str | Path) -> Path:
    """Draw the card figure of `paper_id` and write it as SVG to `out`, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sotazoo.papers._contract import paper
    from sotazoo.registry import get_paper

    card = get_paper(paper_id)
    if not card.figure:
        raise CardError(f"paper {paper_id!r} has no figure (its card sets no `figure` caption)")
    fig = paper(paper_id).figure()
    out = Path(out)
    try:
        # Fixed hash salt and no date: the same drawing gives the same bytes on every build.
        with (
            atomic_path(out) as tmp,
            matplotlib.rc_context({"svg.hashsalt": "sotazoo", "svg.fonttype": "path"}),
        ):
            fig.savefig(tmp, format="svg", metadata={"Date": None}, bbox_inches="tight")
    finally:
        plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m sotazoo.figures PAPER_ID OUT.svg", file=sys.stderr)
        return 2
    print(render_figure(argv[0], argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())


# ---------------------------------------------------------------- drawing helpers of figure.py


def box(ax, x, y, w, h, text, color, fontsize=9.0, *, rounding=0.08, lw=1.0) -> None:
    """A rounded box at (x, y) of size (w, h), filled with `color`, `text` centred in it."""
    from matplotlib.patches import FancyBboxPatch

    style = f"round,pad=0.02,rounding_size={rounding}"
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle=style, fc=color, ec="#333333", lw=lw))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize)


def arrow(ax, x0, y0, x1, y1, color="#333333", *, lw=1.2, linestyle="-") -> None:
    """An arrow from (x0, y0) to (x1, y1)."""
    props = {"arrowstyle": "->", "lw": lw, "color": color}
    if linestyle != "-":
        props["linestyle"] = linestyle
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=props)
