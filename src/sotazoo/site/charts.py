"""Speed-versus-accuracy charts of the comparison pages, drawn with matplotlib as SVG.

For one task, every paper's accuracy claims and the classic baselines of the same tables are
grouped by (dataset, metric). A group where at least two points know their multiply-adds becomes
a scatter plot of accuracy against GMACs; any other group of two or more points a bar chart that
shows the step each paper made over its baselines. The speed we measured (`results/bench/`) is a
third kind of chart: latency against parameters, ours beside the reference implementation.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sotazoo.cards import PaperCard
from sotazoo.fileio import atomic_path

MAX_GROUPS = 6


@dataclass(frozen=True)
class Point:
    label: str
    value: float
    gflops: float | None
    is_paper: bool  # a claim of a paper of the list, not a baseline
    lower_is_better: bool


def accuracy_groups(cards: list[PaperCard]) -> dict[tuple[str, str], list[Point]]:
    """Accuracy claims grouped by (dataset and split, metric), with the baselines that match."""
    groups: dict[tuple[str, str], list[Point]] = defaultdict(list)
    for card in cards:
        # A baseline joins a group when it is measured the same way: same metric and the
        # dataset written with its split ("PASCAL VOC 2012 test"), or, within the same card, the
        # bare dataset, which then means the split of the card's first claim on it.
        own: dict[tuple[str, str], tuple[str, str]] = {}
        for c in card.claims:
            if c.kind != "accuracy":
                continue
            where = f"{c.dataset} {c.split}".strip()
            key = (where, c.metric)
            label = f"{c.variant or card.id} ({card.id})" + ("" if c.verified else " *")
            groups[key].append(Point(label, c.value, c.gflops, True, c.lower_is_better))
            own.setdefault((c.dataset, c.metric), key)
        for b in card.baselines:
            key = (
                (b.dataset, b.metric)
                if (b.dataset, b.metric) in groups
                else own.get((b.dataset, b.metric))
            )
            if key is not None:
                name = b.name + ("" if b.verified else " *")
                groups[key].append(Point(name, b.value, b.gflops, False, False))
    for key, pts in groups.items():  # one point per label, the first seen
        seen: dict[str, Point] = {}
        for p in pts:
            seen.setdefault(p.label, p)
        groups[key] = list(seen.values())
    useful = {k: v for k, v in groups.items() if len(v) >= 2}
    ranked = sorted(useful.items(), key=lambda kv: -len(kv[1]))[:MAX_GROUPS]
    return dict(ranked)


def _save(fig, path: Path) -> None:
    import matplotlib
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp, matplotlib.rc_context({"svg.hashsalt": "sotazoo"}):
            fig.savefig(tmp, format="svg", metadata={"Date": None}, bbox_inches="tight")
    finally:
        plt.close(fig)


def draw_group(key: tuple[str, str], points: list[Point], path: Path) -> str:
    """Draw one (dataset, metric) group; returns the caption."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dataset, metric = key
    lower = any(p.lower_is_better for p in points)
    with_x = [p for p in points if p.gflops is not None]
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(points) + 1.6 if len(with_x) < 2 else 4.2))
    if len(with_x) >= 2:
        for p in with_x:
            ax.scatter(p.gflops, p.value, s=40, c="#2457a6" if p.is_paper else "#9aa3b2",
                       marker="o" if p.is_paper else "s", zorder=3)  # fmt: skip
            ax.annotate(p.label, (p.gflops, p.value), fontsize=7, xytext=(4, 3),
                        textcoords="offset points")  # fmt: skip
        ax.set_xlabel("GMACs per image (the paper's count)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        kind, kind_zh = "against multiply-adds", "与乘加次数对照"
    else:
        ordered = sorted(points, key=lambda p: p.value, reverse=not lower)
        ax.barh(range(len(ordered)), [p.value for p in ordered],
                color=["#2457a6" if p.is_paper else "#9aa3b2" for p in ordered])  # fmt: skip
        ax.set_yticks(range(len(ordered)), [p.label for p in ordered], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(metric)
        for i, p in enumerate(ordered):
            ax.text(p.value, i, f" {p.value:g}", va="center", fontsize=7)
        kind, kind_zh = "papers (blue) and baselines (grey)", "论文（蓝）与基线（灰）"
    better = "lower is better" if lower else "higher is better"
    ax.set_title(f"{dataset}: {metric} ({better})", fontsize=10)
    _save(fig, path)
    starred = any(p.label.endswith(" *") for p in points)
    note = "; * not checked against the paper's own text" if starred else ""
    note_zh = "；* 未能在论文原文中核对" if starred else ""
    return (f"{dataset}, {metric}: {kind}, numbers as the papers report them{note}",
            f"{dataset}，{metric}：{kind_zh}，数字均取自论文{note_zh}")  # fmt: skip


def draw_measured(benches: list[dict], path: Path) -> str:
    """Measured latency against parameters, ours and what it was compared with in the same run:
    an independent implementation (filled grey square) or, where none installs, another model
    of ours (hollow grey circle), as each result's `reference_kind` says."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.0))
    for b in benches:
        o = b["ours"]
        ax.scatter(o["params"] / 1e6, o["latency_ms"], c="#2457a6", zorder=3)
        ax.annotate(b["model"], (o["params"] / 1e6, o["latency_ms"]), fontsize=7,
                    xytext=(4, 3), textcoords="offset points")  # fmt: skip
        if b.get("reference"):
            r = b["reference"]
            at = (r["params"] / 1e6, r["latency_ms"])
            if b.get("reference_kind", "independent") == "independent":
                ax.scatter(*at, c="#9aa3b2", marker="s", zorder=2)
            else:
                ax.scatter(*at, facecolors="none", edgecolors="#9aa3b2", marker="o", zorder=2)
    ax.set_xlabel("parameters (M)")
    ax.set_ylabel("latency at batch 1 (ms)")
    ax.grid(alpha=0.3)
    devices = sorted({f"{b['device']} ({b.get('cpu', '')}, {b.get('threads', '?')} threads)"
                      for b in benches})  # fmt: skip
    ax.set_title("measured by `sotazoo bench`: ours (blue), beside an independent implementation "
                 "(grey square)\nor, where none installs, another model of ours (grey circle)",
                 fontsize=9)  # fmt: skip
    _save(fig, path)
    return "measured latency on " + "; ".join(devices), "实测延迟：" + "；".join(devices)
