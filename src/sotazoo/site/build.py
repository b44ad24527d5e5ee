"""`sotazoo site build`: the static site, generated from the cards, results and weights.

Layout of the output folder::

    index.html                 papers by the page's sections, with their status
    papers/<id>.html           card, figure, claims beside our results, bench, demo
    papers/<id>/figure.svg     our drawing of the core idea (papers/<id>/figure.py)
    tasks/index.html, tasks/<task>.html, tasks/<task>-<n>.svg   comparison charts
    models/<model>.<tag>.onnx  demo models, exported by this build (never committed)
    models/<model>.<tag>.json  demo spec: kind, pre-processing, labels, samples, sha256
    samples/<id>/*.png         bundled demo inputs (papers/<id>/demo.py)
    static/                    site.css, sotazoo.mjs, kit.mjs, widgets/<kind>.mjs, ort/ (npm)
    site.json                  manifest: pages, demos, the inputs' fingerprint

A paper joins the site by its card alone; a demo needs only its card's `[demo]` table, a weights
entry with `transforms`, and a widget of that kind in `static/`; the paper's demo hooks (the
paper contract, `sotazoo.papers._contract`: `demo.samples`, `spec_extra`, `export_module`,
`example_inputs`) add sample inputs and kind-specific fields of the spec. The build writes into
a hidden sibling folder and swaps it in at the end, so an interrupted build never leaves half a
site.

A demo whose widget wants more than the raw network (a detector's decoded, NMS-filtered boxes)
gets it from `export_module(model)`: the module exported instead of the model. It may name its
inputs and outputs, their dynamic axes and their tolerances (attributes `input_names`,
`output_names`, `dynamic_axes`, `export_tolerance`, as `sotazoo.export.export_onnx` takes them); the export check then runs on
the bundled sample images, pre-processed as the widget does, since random noise may give a
detector nothing to compare. A demo whose inputs are not images (a generator's noise and class)
gives them as `example_inputs()` instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import defaultdict
from importlib import resources
from pathlib import Path

from sotazoo import __version__
from sotazoo.cards import PaperCard, load_catalog
from sotazoo.errors import SotazooError
from sotazoo.fileio import PART, file_lock, is_temp, temp_name, write_json_atomic
from sotazoo.papers._contract import paper
from sotazoo.repro import load_result, results_dir
from sotazoo.site import charts, pages
from sotazoo.site.runtime import copy_ort
from sotazoo.weights import home, sha256_file


def default_out() -> Path:
    return home() / "site"


def _package_dir() -> Path:
    return Path(str(resources.files("sotazoo")))


def fingerprint() -> str:
    """A hash of everything the site is made from: package files, results, this version."""
    h = hashlib.sha256(__version__.encode())
    roots = [_package_dir(), results_dir()]
    for root in roots:
        if not root.is_dir():
            continue
        for f in sorted(root.rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts and not is_temp(f):
                st = f.stat()
                h.update(f"{f.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def is_stale(out: Path) -> bool:
    manifest = out / "site.json"
    if not manifest.is_file():
        return True
    try:
        return json.loads(manifest.read_text(encoding="utf-8")).get("fingerprint") != fingerprint()
    except (OSError, json.JSONDecodeError):
        return True


def _benches(card: PaperCard) -> list[dict]:
    """The card's saved bench results, each with its `reference_kind` and `reference_label`
    (made from the spec and the card for results saved before bench recorded them): the pages
    say whether a ratio is against an independent implementation or one of our own models."""
    from sotazoo.bench_labels import reference_kind, reference_label

    out = []
    bench_dir = results_dir() / "bench"
    for m in (*card.models, *card.methods):
        for f in sorted(bench_dir.glob(f"{m.name}.*json")):
            if f.name in (f"{m.name}.json", f"{m.name}.cuda.json"):
                b = json.loads(f.read_text(encoding="utf-8"))
                if b.get("reference"):
                    b["reference_kind"] = b.get("reference_kind") or reference_kind(
                        b["reference"]["name"]
                    )
                    b["reference_label"] = reference_label(b)
                out.append(b)
    return out


def build_demo(card: PaperCard, out: Path) -> str:
    """Export the card's demo model to ONNX and write its spec; returns its path in the site."""
    from sotazoo.export import DEFAULT_TOLERANCE, export_onnx
    from sotazoo.registry import create_model, get_weights, model_entry

    d = card.demo
    if not d.weights:
        return _build_method_demo(card, out)
    w = get_weights(d.model, d.weights)
    if not w.transforms:
        raise SotazooError(f"weights {w.name} declare no transforms; the demo needs them")
    _, entry = model_entry(d.model)
    model = create_model(d.model, weights=d.weights, progress=False)
    onnx_path = out / "models" / f"{w.name}.onnx"
    hooks = paper(card.id).demo  # the paper contract's demo hooks, each with its default
    samples, paths = _samples(card, out)
    extra = hooks.spec_extra()
    t = dict(w.transforms)
    wrapped = hooks.export_module(model)
    if wrapped is not None:
        import torch

        from sotazoo.transforms import preprocess

        examples = hooks.example_inputs()  # inputs that are not images (a generator's)
        if examples is None and not paths:
            raise SotazooError(f"{card.id}: export_module needs sample images to check the export")
        if examples is None:
            examples = [(torch.from_numpy(preprocess(p, t)),) for p in paths]
        r = export_onnx(
            wrapped,
            entry.input_size,
            onnx_path,
            extra_inputs=entry.extra_inputs,
            example_inputs=examples,
            input_names=getattr(wrapped, "input_names", None),
            output_names=getattr(wrapped, "output_names", None),
            dynamic_axes=getattr(wrapped, "dynamic_axes", None),
            tolerance=getattr(wrapped, "export_tolerance", DEFAULT_TOLERANCE),
        )
    else:
        r = export_onnx(model, entry.input_size, onnx_path, extra_inputs=entry.extra_inputs,
                        task=entry.task)  # fmt: skip
    spec = {
        "kind": d.kind,
        "paper": card.id,
        "model": d.model,
        "weights": w.name,
        "weights_sha256": w.sha256,
        "onnx": f"{w.name}.onnx",
        "onnx_sha256": sha256_file(onnx_path),
        "onnx_max_abs_diff": r.max_abs_diff,
        "onnx_max_rel_diff": r.max_rel_diff,  # what the export tolerance bounds (sotazoo.export)
        "onnx_outputs": list(r.output_names),
        "input_size": list(entry.input_size),
        "transforms": {k: t[k] for k in ("size", "mean", "std") if k in t},
        "labels": list(t.get("classes", ())),
        "samples": samples,
        **extra,
    }
    write_json_atomic(spec, out / "models" / f"{w.name}.json")
    return f"models/{w.name}.json"


def _samples(card: PaperCard, out: Path) -> tuple[list[dict], list[Path]]:
    """The demo's bundled inputs, written into the site by the paper's `demo.samples`: their
    spec entries (name, address, and the data the widget shows with each) and their paths."""
    samples, paths = [], []
    for s in paper(card.id).demo.samples(out / "samples" / card.id):
        p = s.pop("path")  # the rest is data the widget shows with the sample
        paths.append(p)
        samples.append({"name": p.stem, "src": f"../samples/{card.id}/{p.name}", **s})
    return samples, paths


def _build_method_demo(card: PaperCard, out: Path) -> str:
    """The spec of a method's demo (a card's `[[methods]]` entry): no network to export; the
    widget computes the method in the page from the spec's data (`demo.spec_extra`) and the
    paper's bundled samples."""
    d = card.demo
    spec = {"kind": d.kind, "paper": card.id, "model": d.model, "method": True,
            "samples": _samples(card, out)[0], **paper(card.id).demo.spec_extra()}  # fmt: skip
    write_json_atomic(spec, out / "models" / f"{d.model}.json")
    return f"models/{d.model}.json"


def _task_pages(cards: list[PaperCard], out: Path) -> list[tuple[str, int]]:
    by_task: dict[str, list[PaperCard]] = defaultdict(list)
    for c in cards:
        by_task[c.task].append(c)
    made = []
    for task, group in sorted(by_task.items()):
        figs = []
        for i, (key, points) in enumerate(charts.accuracy_groups(group).items()):
            name = f"{task}-{i}.svg"
            figs.append((name, charts.draw_group(key, points, out / "tasks" / name)))
        benches = [b for c in group for b in _benches(c) if b["device"] == "cpu"]
        if benches:
            name = f"{task}-measured.svg"
            figs.append((name, charts.draw_measured(benches, out / "tasks" / name)))
        rows = "".join(
            f'<tr><td><a href="../papers/{c.id}.html" translate="no">{pages.e(c.title)}</a></td>'
            f"<td>{len(c.claims)}</td><td>{len(c.baselines)}</td></tr>"
            for c in group
        )
        bi = pages.bi
        table = (f"<table><tr><th>{bi('paper', '论文')}</th><th>{bi('claims', '论文结论')}</th>"
                 f"<th>{bi('baselines', '基线')}</th></tr>{rows}</table>")  # fmt: skip
        (out / "tasks" / f"{task}.html").write_text(
            pages.task_page(task, figs, table), encoding="utf-8"
        )
        made.append((task, len(figs)))
    return made


MARKER = ".sotazoo-site"  # written first into every site we build: only such a folder is replaced


def _is_our_site(folder: Path) -> bool:
    """Whether `folder` is a site sotazoo built: it carries `MARKER`, or (sites built before the
    marker existed) a `site.json` manifest with our keys."""
    if (folder / MARKER).is_file():
        return True
    try:
        manifest = json.loads((folder / "site.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and {"sotazoo", "fingerprint", "pages"} <= set(manifest)


def check_out(out: Path) -> Path:
    """The absolute site folder `out`, if a build may replace it: a new path, an empty folder,
    or a site we built. Anything else (a file, a folder of the user's, the current folder or
    one that holds it) is refused with the reason, before anything is touched."""
    out = Path(os.path.abspath(out.expanduser()))
    cwd = Path.cwd().resolve()
    if out.resolve() == cwd or out.resolve() in cwd.parents:
        raise SotazooError(
            f"{out} is the current folder or holds it; building the site replaces its folder "
            "whole, so give a folder of its own (e.g. --out site)"
        )
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise SotazooError(f"{out} exists and is not a folder; give the path of a site folder")
    if out.is_dir() and any(out.iterdir()) and not _is_our_site(out):
        raise SotazooError(
            f"{out} holds files that sotazoo did not build (no {MARKER} marker); a build replaces "
            "its folder whole, so it will not touch this one: give a new or empty folder"
        )
    return out


def _remove_leftovers(out: Path) -> None:
    """Folders of builds that were killed before they could clean up (`.NAME.*.part`,
    `.NAME.*.old`): removed under the build lock, so no live build owns them; only folders
    that carry our marker."""
    for pattern in (f".{out.name}.*{PART}", f".{out.name}.*.old"):
        for d in out.parent.glob(pattern):
            if d.is_dir() and not d.is_symlink() and (d / MARKER).is_file():
                shutil.rmtree(d, ignore_errors=True)


def build_site(out: str | Path | None = None, *, progress: bool = True) -> Path:
    """Build the whole site into `out` (default `$SOTAZOO_HOME/site`) and return it.

    The site is written into a hidden sibling folder and swapped in when complete, under a lock
    that serialises builds of the same folder; an interrupted build removes its partial folder.
    """
    out = check_out(Path(out) if out is not None else default_out())
    out.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(out.parent / f".{out.name}.lock", what=f"the site build of {out}"):
        check_out(out)  # again: another build may have finished while we waited
        _remove_leftovers(out)
        work = temp_name(out)
        work.mkdir()
        try:
            (work / MARKER).write_text(f"sotazoo {__version__}\n", encoding="utf-8")
            _build_into(work, progress=progress)
            old = work.with_name(work.name.removesuffix(PART) + ".old")
            if out.exists():
                out.rename(old)
            work.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:  # Ctrl-C included: no partial folder stays behind
            shutil.rmtree(work, ignore_errors=True)
            raise
    return out


def _build_into(work: Path, *, progress: bool) -> None:
    """Every page, figure, demo and the manifest, into the empty folder `work`."""
    from tqdm import tqdm

    from sotazoo.figures import render_figure
    from sotazoo.registry import get_paper, list_papers
    from sotazoo.status import paper_status

    stamp = fingerprint()
    (work / "papers").mkdir(parents=True)
    (work / "tasks").mkdir()
    static = work / "static"
    shutil.copytree(_package_dir() / "site" / "static", static)
    copy_ort(static / "ort", progress=progress)

    entries = list(load_catalog())
    carded = set(list_papers())
    cards = [get_paper(pid) for pid in list_papers()]
    rows = {p.id: paper_status(p.id) for p in entries}
    demos: dict[str, str] = {}
    page_list = ["index.html", "tasks/index.html"]
    for entry in tqdm(entries, desc="site pages", unit="paper", disable=not progress):
        path = work / "papers" / f"{entry.id}.html"
        page_list.append(f"papers/{entry.id}.html")
        if entry.id not in carded:
            path.write_text(pages.missing_card_page(entry), encoding="utf-8")
            continue
        card = get_paper(entry.id)
        figure = None
        if card.figure:
            render_figure(card.id, work / "papers" / card.id / "figure.svg")
            figure = f"{card.id}/figure.svg"
        if card.demo is not None:
            demos[card.id] = build_demo(card, work)
        result = load_result(card.id)
        repro_figure = None
        if result and result.get("figure"):
            src = results_dir() / Path(result["figure"]).name
            if src.is_file():
                (work / "papers" / card.id).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, work / "papers" / card.id / src.name)
                repro_figure = f"{card.id}/{src.name}"
        html = pages.paper_page(
            card,
            rows[card.id],
            result=result,
            benches=_benches(card),
            figure=figure,
            repro_figure=repro_figure,
            demo_spec=f"../{demos[card.id]}" if card.id in demos else None,
        )
        path.write_text(html, encoding="utf-8")
    tasks = _task_pages(cards, work)
    page_list += [f"tasks/{t}.html" for t, _ in tasks]
    (work / "tasks" / "index.html").write_text(pages.tasks_index(tasks), encoding="utf-8")
    (work / "index.html").write_text(pages.index_page(entries, rows, set(demos)), encoding="utf-8")
    (work / "judge.html").write_text(pages.judge_page(), encoding="utf-8")
    page_list.append("judge.html")
    manifest = {
        "sotazoo": __version__,
        "fingerprint": stamp,
        "pages": page_list,
        "demos": demos,
    }
    write_json_atomic(manifest, work / "site.json")
