"""The `sotazoo` command line: list, info, status, verify, bench, export, sample, repro, train,
site, serve."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import textwrap
import unicodedata
from pathlib import Path

from sotazoo.errors import SotazooError

EPILOG = """examples:
  sotazoo list                          papers by section, with their status
  sotazoo info senet --lang zh          a paper's card: summary, key ideas, claims
  sotazoo repro senet                   reproduce the paper's key claim (minutes, CPU)
  sotazoo bench seresnet50 --vs         speed/size beside the reference implementation
  sotazoo export seresnet50 --onnx m.onnx
  sotazoo sample sagan_mini --out digits.png   a grid of images from a generator
  sotazoo serve                         build the site and open it at http://127.0.0.1:8000/
"""


def _int_at_least(low: int, high: int | None = None):
    """An argparse `type`: an integer in [low, high], else argparse's one-line usage error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {value}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


POSITIVE = _int_at_least(1)
SEED = _int_at_least(0, 2**32 - 1)
PORT = _int_at_least(0, 65535)


def _cmd_list(args) -> int:
    from sotazoo.cards import load_catalog
    from sotazoo.registry import list_models, model_entry
    from sotazoo.status import COLUMNS, paper_status

    if args.weights:
        return _list_weights(args)
    if args.methods:
        from sotazoo.registry import list_methods, method_entry

        names = list_methods(args.pattern, paper=args.paper)
        if not names:
            raise SotazooError(f"no method matches {args.pattern!r}: `sotazoo list --methods`")
        width = max(map(len, names))
        for n in names:
            pid, e = method_entry(n)
            print(f"{n:<{width}}  {pid:<12}  {e.summary}")
        return 0
    if args.models or args.paper or args.task:
        rows = [("model", "paper", "task", "input", "ref. params")]
        for n in list_models(args.pattern, paper=args.paper, task=args.task):
            pid, e = model_entry(n)
            params = f"{e.params:,}" if e.params else "(laptop)"
            rows.append((n, pid, e.task, "x".join(map(str, e.input_size)), params))
        if len(rows) == 1:
            raise SotazooError(_no_model_matches(args))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]  # columns never run together
        for r in rows:
            print("  ".join(f"{c:<{w}}" for c, w in zip(r[:4], widths, strict=False))
                  + f"  {r[4]:>{widths[4]}}")  # fmt: skip
        return 0
    section = None
    for p in load_catalog():
        if p.section != section:
            section = p.section
            print(f"\n{section}")
        row = paper_status(p.id)
        done = sum(row[c].done for c in COLUMNS)
        remark = f"  [{p.remark}]" if p.remark else ""
        print(f"  {p.id:<20} {done}/{len(COLUMNS)} done  {_title(p.title)}{remark}")
    return 0


def _list_weights(args) -> int:
    """`sotazoo list --weights`: every weights entry of the matching models, where it comes
    from and what it scored (`sotazoo.list_weights(model)` in Python)."""
    from sotazoo.registry import list_models, list_weights

    rows = [("weights", "source", "params", "metrics")]
    for n in list_models(args.pattern, paper=args.paper, task=args.task):
        for w in list_weights(n):
            source = "packaged" if w.packaged else ("download" if w.urls else "file by path")
            metrics = ", ".join(f"{k} {v:g}" for k, v in w.metrics.items())
            rows.append((w.name, source, f"{w.num_params:,}", metrics))
    if len(rows) == 1:
        raise SotazooError(_no_model_matches(args).replace("no model matches", "no weights for"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}")
    print("\npass one as weights=: create_model(MODEL, weights=TAG), or --weights TAG on the "
          "command line (TAG: official, sotazoo, or a checkpoint path)")  # fmt: skip
    return 0


def _no_model_matches(args) -> str:
    asked = [f"pattern {args.pattern!r}"] if args.pattern else []
    asked += [f"paper {args.paper!r}"] if args.paper else []
    asked += [f"task {args.task!r}"] if args.task else []
    return (f"no model matches {' and '.join(asked) or 'the filters'} (`sotazoo list --models` "
            "lists every model; a pattern is a shell-style glob like 'se*')")  # fmt: skip


def _title(text: str, width: int = 70) -> str:
    """`text` cut to `width` characters at a word boundary, with an ellipsis when cut."""
    if len(text) <= width:
        return text
    cut = text[: width - 1].rsplit(" ", 1)[0].rstrip(" ,:;(")
    return cut + "…"


def _wrap_cjk(para: str, width: int) -> list[str]:
    """Wrap mixed Chinese/Latin text by display width (a CJK character takes two columns),
    breaking between characters or between Latin words, never inside a word."""
    tokens = re.findall(r"[A-Za-z0-9][\w.\-/=+%]*|\s+|.", para)
    lines, line, used = [], "", 0
    for tok in tokens:
        w = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in tok)
        if used + w > width and line.strip():
            lines.append(line.rstrip())
            line, used = "", 0
            if tok.isspace():
                continue
        line += tok
        used += w
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _wrap(text: str, indent: str = "  ", width: int = 96) -> str:
    out = []
    for para in text.strip().split("\n\n"):
        if any("\u4e00" <= ch <= "\u9fff" for ch in para):  # no spaces to break Chinese on
            out += [indent + line for line in _wrap_cjk(para, width - len(indent))]
        else:
            out.append(textwrap.fill(para, width, initial_indent=indent, subsequent_indent=indent))
        out.append("")
    return "\n".join(out).rstrip()


def _cmd_info(args) -> int:
    from sotazoo.registry import get_paper

    c = get_paper(args.paper)
    zh = args.lang == "zh"
    label = (
        {"summary": "摘要（我们的讲解）", "ideas": "关键技巧", "claims": "论文结论", "base": "对比基线",
         "dev": "与论文的差异", "models": "模型", "reading": "延伸阅读", "methods": "方法",
         "na": "不适用：",
         "unverified": "* 未能在论文原文中核对的数字（原因见卡片中的注释）"}
        if zh
        else {"summary": "Summary (ours)", "ideas": "Key ideas", "claims": "Claims",
              "base": "Baselines", "dev": "Where sotazoo departs", "models": "Models",
              "reading": "Further reading", "methods": "Methods", "na": "Not applicable:",
              "unverified": "* not checked against the paper's own text (the card's comments say why)"}
    )  # fmt: skip
    print(f"{c.title}\n{', '.join(c.authors)}  ·  {c.venue}  ·  arXiv {c.arxiv}")
    print(f"{c.section}  ·  code: {c.code}\n")
    print(f"{label['summary']}:\n{_wrap(c.summary_zh if zh else c.summary_en)}\n")
    print(f"{label['ideas']}:")
    for idea in c.key_ideas_zh if zh and c.key_ideas_zh else c.key_ideas:
        lines = _wrap_cjk(idea, 92) if zh else textwrap.wrap(idea, 92)
        print("\n".join(["  - " + lines[0]] + ["    " + x for x in lines[1:]]))
    print(f"\n{label['claims']}:")
    print(f"  {'variant':<26}{'dataset':<12}{'metric':<22}{'baseline -> method':<26}source")
    for cl in c.claims:
        v = f"{cl.value:g} {cl.unit}".strip()
        if cl.baseline_value is not None:
            v = f"{cl.baseline_value:g} -> {v}"
        mark = "" if cl.verified else " *"
        print(f"  {cl.variant[:25]:<26}{cl.dataset[:11]:<12}{cl.metric[:21]:<22}{v:<26}"
              f"{cl.source}{mark}")  # fmt: skip
    if c.baselines:
        print(f"\n{label['base']}:")
        for b in c.baselines:
            mark = "" if b.verified else " *"
            print(f"  {b.name[:34]:<35}{b.dataset[:15]:<16}{b.metric[:19]:<20}{b.value:>8g}"
                  f"{b.unit}  {b.source}{mark}")  # fmt: skip
    if not all(x.verified for x in (*c.claims, *c.baselines)):
        print("\n  " + label["unverified"])
    if c.deviations:
        print(f"\n{label['dev']}:")
        for d in c.deviations:
            if zh and d.what_zh:
                lines = _wrap_cjk(f"{d.what_zh}——{d.why_zh}", 92)
                print("\n".join(["  - " + lines[0]] + ["    " + x for x in lines[1:]]))
            else:
                print(textwrap.fill(f"{d.what} — {d.why}", 96, initial_indent="  - ",
                                    subsequent_indent="    "))  # fmt: skip
    print(f"\n{label['models']}: {', '.join(m.name for m in c.models) or '-'}")
    if c.methods:
        print(f"{label['methods']}: {', '.join(m.name for m in c.methods)}")
    for n in c.not_applicable:
        print(textwrap.fill(f"{n.column}: {n.why_zh if zh else n.why}", 96,
                            initial_indent=f"{label['na']} ", subsequent_indent="    "))  # fmt: skip
    if c.reading or c.reading_note:
        print(f"\n{label['reading']}:")
        for r in c.reading:
            print(f"  [{r.lang}] {r.title} ({r.kind})\n      {r.url}")
            print(textwrap.fill(r.why_zh if zh else r.why, 96, initial_indent="      ",
                                subsequent_indent="      "))  # fmt: skip
        if c.reading_note:
            print(textwrap.fill(c.reading_note.zh if zh else c.reading_note.en, 96,
                                initial_indent="  ", subsequent_indent="  "))  # fmt: skip
    return 0


def _cmd_verify(args) -> int:
    from sotazoo.registry import list_models, list_papers
    from sotazoo.verify import format_record, record_path, verify_paper

    if args.all == bool(args.papers):
        raise SotazooError("name the papers to verify, or pass --all (not both)")
    papers = [p for p in list_papers() if list_models(paper=p)] if args.all else args.papers
    failed = []
    for pid in papers:
        record = verify_paper(pid, quick=args.quick, progress=True)
        print(format_record(record))
        print(f"wrote {record_path(pid, args.quick)}", file=sys.stderr)
        failed += [f"{pid}.{n}" for n, c in record["checks"].items() if c["ok"] is False]
    if failed:
        print(f"error: checks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _cmd_status(args) -> int:
    from sotazoo.status import format_status, format_status_markdown

    print(format_status_markdown() if args.markdown else format_status())
    return 0


def _height_width(size: str, takes: str = "") -> tuple[int, int]:
    """`--size 416` or `--size 480x640` -> (height, width); `takes` says what the model takes."""
    parts = size.lower().split("x")
    if len(parts) > 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise SotazooError(
            f"--size {size!r}: expected N or HxW (positive integers)" + (f"; {takes}" if takes else "")
        )
    return int(parts[0]), int(parts[-1])


def _image_size(model: str, size: str) -> tuple[int, ...]:
    """`--size 416` or `--size 480x640` -> the model's (C, H, W) with that height and width."""
    from sotazoo.registry import model_entry

    c, *hw = model_entry(model)[1].input_size
    if len(hw) != 2:
        raise SotazooError(f"--size {size!r}: {model} is not an image model; it takes {(c, *hw)}")
    return (c, *_height_width(size, f"{model} takes {(c, *hw)}"))


def _bench_command(args) -> str:
    """The `sotazoo bench` command line that makes this result again (defaults left out)."""
    parts = ["sotazoo", "bench", args.model]
    if args.vs:
        parts += ["--vs"] if args.vs == "default" else ["--vs", args.vs]
    for flag, value, default in (("--size", args.size, None), ("--batch", args.batch, 8),
                                 ("--reps", args.reps, 15), ("--device", args.device, "cpu")):  # fmt: skip
        if value != default:
            parts += [flag, str(value)]
    return " ".join(parts + ["--save"] + (["--allow-dirty"] if args.allow_dirty else []))


def _cmd_bench(args) -> int:
    from sotazoo.registry import list_methods, model_entry

    if args.model in list_methods():
        return _cmd_bench_method(args)
    model_entry(args.model)  # an unknown name fails here, before torch is imported
    from sotazoo.bench import bench, format_bench
    from sotazoo.repro import check_clean

    vs = args.vs
    if vs == "default":
        vs = model_entry(args.model)[1].reference or None
        if vs is None:
            raise SotazooError(f"{args.model} declares no reference; pass --vs timm:NAME")
    if args.save:  # before the minutes of timing: a saved bench names the code that made it
        check_clean(None, args.allow_dirty)
    r = bench(
        args.model,
        vs=vs,
        batch=args.batch,
        reps=args.reps,
        device=args.device,
        input_size=_image_size(args.model, args.size) if args.size else None,
        progress=not args.json,
    )
    print(json.dumps(r.to_dict(), indent=2) if args.json else format_bench(r))
    if not args.json:
        print("weights: random initialisation (speed and size do not depend on them); the "
              "reference shares them where it can", file=sys.stderr)  # fmt: skip
    _save_bench(r, args)
    return 0


def _save_bench(r, args) -> None:
    """With --save: results/bench/<model>.json (dirty/bench/ with --allow-dirty), with the
    command that makes it again."""
    from sotazoo.fileio import write_json_atomic
    from sotazoo.repro import results_dir

    if not args.save:
        return
    r.command = _bench_command(args)
    out = results_dir() / ("dirty/bench" if args.allow_dirty else "bench")
    path = out / f"{args.model}.json"
    write_json_atomic(r.to_dict(), path)
    print(f"wrote {path}", file=sys.stderr)


def _cmd_bench_method(args) -> int:
    """`sotazoo bench METHOD`: per-image time of a method (`[[methods]]`) and its reference."""
    from sotazoo.bench import bench_method, format_bench
    from sotazoo.registry import method_entry
    from sotazoo.repro import check_clean

    vs = args.vs
    if vs == "default":
        vs = method_entry(args.model)[1].reference or None
        if vs is None:
            raise SotazooError(f"{args.model} declares no reference; pass --vs LIB:NAME")
    if args.batch != 8 or args.device != "cpu":
        raise SotazooError(f"{args.model} is a method: it takes one image at a time, on the CPU")
    if args.save:
        check_clean(None, args.allow_dirty)
    size = (3, *_height_width(args.size)) if args.size else (3, 224, 224)
    r = bench_method(args.model, vs=vs, reps=args.reps if args.reps != 15 else 1000,
                     input_size=size, progress=not args.json)  # fmt: skip
    print(json.dumps(r.to_dict(), indent=2) if args.json else format_bench(r))
    _save_bench(r, args)
    return 0


def _say_weights(model: str, weights, consequence: str) -> None:
    """Which weights a command built `model` with, on stderr; loudly when none."""
    if weights is None:
        print(f"WARNING: {model} has random weights (no --weights): {consequence}. "
              f"`sotazoo list --weights {model}` shows the trained ones.", file=sys.stderr)  # fmt: skip
    else:
        from sotazoo.registry import resolve_weights
        from sotazoo.weights import Weights

        w = resolve_weights(model, weights)
        what = f"{w.name} (sha256 {w.sha256[:12]}…)" if isinstance(w, Weights) else str(w)
        print(f"weights: {what}", file=sys.stderr)


def _cmd_export(args) -> int:
    from sotazoo.export import export_onnx
    from sotazoo.registry import create_model, model_entry

    _, entry = model_entry(args.model)
    model = create_model(args.model, weights=args.weights)
    _say_weights(args.model, args.weights, "the exported file computes nothing useful")
    r = export_onnx(model, entry.input_size, args.onnx, opset=args.opset, tolerance=args.tolerance,
                    extra_inputs=entry.extra_inputs, task=entry.task)  # fmt: skip
    print(
        f"wrote {r.path} ({r.size_mb:.1f} MB, opset {r.opset}, {r.exporter})\n"
        f"onnxruntime vs PyTorch on a random {tuple(r.input_shape)} batch: "
        f"max abs diff {r.max_abs_diff:.3g}, {r.max_rel_diff:.3g} of the output's scale "
        f"max(1, max |output|) (tolerance {r.tolerance:g}) OK"
    )
    return 0


def _cmd_sample(args) -> int:
    from sotazoo.sample import parse_seeds, sample_grid

    weights = None if args.weights.lower() == "none" else args.weights
    r = sample_grid(args.model, args.out, weights=weights, seeds=parse_seeds(args.seeds),
                    label=args.label, nrow=args.nrow)  # fmt: skip
    _say_weights(args.model, weights, "the grid shows what an untrained generator draws")
    labels = "" if r["labels"] is None else f", labels {r['labels'][:10]}..."
    print(f"wrote {r['path']}: {len(r['seeds'])} samples of {args.model} "
          f"({'x'.join(map(str, r['image_shape']))}), weights {weights}{labels}")  # fmt: skip
    return 0


def _cmd_predict(args) -> int:
    from sotazoo.registry import model_entry

    model_entry(args.model)  # an unknown name fails before torch is imported
    from sotazoo.inference import dumps, format_predictions, predict

    summary = predict(args.model, args.files, weights=args.weights, out=args.out,
                      question=args.question, threshold=args.threshold,
                      progress=not args.json)  # fmt: skip
    print(dumps(summary) if args.json else format_predictions(summary))
    print(f"wrote {Path(args.out) / 'predictions.json'}", file=sys.stderr)
    return 0


def _cmd_repro(args) -> int:
    from sotazoo.repro import format_result, run_repro

    data = run_repro(
        args.paper,
        quick=args.quick,
        long=args.long,
        seeds=args.seed,
        out_dir=Path(args.out) if args.out else None,
        progress=not args.json,
        allow_dirty=args.allow_dirty,
    )
    path = data.pop("_path")
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else format_result(data))
    figure = f" and {data['figure']}" if data.get("figure") else ""
    print(f"wrote {path}{figure}", file=sys.stderr)
    return 0


def _with_recipes(format_help):
    """`sotazoo train --help` with every recipe's budget unit and default, read from the papers'
    `train.py` only when the help is printed."""

    def formatted() -> str:
        from sotazoo.train.recipes import all_recipes

        rows = [f"  {n:<20} --budget {r.default:<4} {r.unit}" for n, r in all_recipes().items()]
        return (
            format_help()
            + "\nrecipes (the budget of the committed weights, and its unit):\n"
            + ("\n".join(rows) + "\n")
        )

    return formatted


def _cmd_train(args) -> int:
    from sotazoo.train.recipes import run_recipe

    out = run_recipe(args.model, out_dir=Path(args.out) if args.out else None, seed=args.seed,
                     budget=args.budget, progress=True)  # fmt: skip
    print(f"wrote {out['weights']} (sha256 {out['sha256']})\nlog: {out['log']}")
    print(f"held-out metrics: {out['metrics']}")
    return 0


def _cmd_site_build(args) -> int:
    from sotazoo.site.build import build_site

    out = build_site(args.out, progress=True)
    print(f"built the site in {out}; `sotazoo serve --site {out}` serves it")
    return 0


def _cmd_site_bench(args) -> int:
    from sotazoo.fileio import write_json_atomic
    from sotazoo.repro import results_dir
    from sotazoo.site.bench import browser_bench, format_browser_bench
    from sotazoo.site.build import build_site, default_out, is_stale

    site = default_out()
    if is_stale(site):
        build_site(site, progress=True)
    data = browser_bench(args.models, site=site, threads=args.threads, reps=args.reps)
    print(format_browser_bench(data))
    if args.save:
        path = results_dir() / "bench" / f"browser.{args.threads}thread.json"
        write_json_atomic(data, path)
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _cmd_serve(args) -> int:
    from sotazoo.site.build import build_site, default_out, is_stale
    from sotazoo.site.serve import make_server

    site = Path(args.site) if args.site else default_out()
    server = make_server(site, args.host, args.port)  # first: a busy port fails before a build
    try:
        if args.rebuild or is_stale(site):
            print(f"building the site into {site} ...", file=sys.stderr)
            build_site(site, progress=True)
    except BaseException:
        server.server_close()
        raise
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {site}\nopen http://{shown}:{port}/ in a browser (Ctrl-C stops)", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {host}, reachable from other machines", file=sys.stderr)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sotazoo",
        description="Read, run, reproduce and compare the state of the art in computer vision.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from sotazoo import __version__

    p.add_argument("--version", action="version", version=f"sotazoo {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("list", help="papers by section (or models with --models)",
                       description="List the papers of the original page by section with how "
                       "many of the eight definition-of-done columns each has; with --models, "
                       "--paper or --task, list registered models instead.")  # fmt: skip
    s.add_argument("pattern", nargs="?", default="*",
                   help="glob on model names (with --models or --weights)")  # fmt: skip
    s.add_argument("--models", action="store_true", help="list models, not papers")
    s.add_argument("--methods", action="store_true",
                   help="list methods (a paper's procedures, e.g. augmentation policies)")  # fmt: skip
    s.add_argument("--weights", action="store_true",
                   help="list the weights of the models (official, ours), with their source and "
                   "metrics")  # fmt: skip
    s.add_argument("--paper", help="only the models of this paper id")
    s.add_argument("--task", help="only models of this task (classification, detection, ...)")
    s.set_defaults(func=_cmd_list)

    s = sub.add_parser("info", help="show a paper's card",
                       description="Render a paper's card: summary, key ideas, the paper's "
                       "claims as a table, baselines, our deviations and models.")  # fmt: skip
    s.add_argument("paper", help="paper id, e.g. senet (see `sotazoo list`)")
    s.add_argument("--lang", choices=("en", "zh"), default="en", help="summary language")
    s.set_defaults(func=_cmd_info)

    s = sub.add_parser("status", help="the definition-of-done matrix for every paper",
                       description="For every paper, the eight columns of the definition of "
                       "done, read from its card and the recorded evidence: results/verify/ "
                       "(sotazoo verify), the reproduction and the benchmarks. A record older "
                       "than the paper's files is marked stale.")  # fmt: skip
    s.add_argument("--markdown", action="store_true", help="print a Markdown table")
    s.set_defaults(func=_cmd_status)

    s = sub.add_parser("verify", help="run a paper's checks and record them (the status matrix)",
                       description="Run a paper's checks — parameter counts against the card, "
                       "ONNX export against onnxruntime, bad inputs, weights round trip, oracle "
                       "and browser tests — and write results/verify/<paper>.json with the "
                       "commit, versions and each check's figure. `sotazoo status` reads these "
                       "records. --quick runs the first four only and writes "
                       "<paper>.quick.json.")  # fmt: skip
    s.add_argument("papers", nargs="*", metavar="PAPER", help="paper ids, e.g. senet")
    s.add_argument("--all", action="store_true", help="every paper that has models")
    s.add_argument("--quick", action="store_true", help="params, export, bad input, weights only")
    s.set_defaults(func=_cmd_verify)

    s = sub.add_parser("bench", help="params, GMACs, latency and throughput of a model",
                       description="Measure a model on this machine: parameters, multiply-adds "
                       "(torch.utils.flop_counter FLOPs / 2), median latency at batch 1 after "
                       "warm-up, throughput at --batch. With --vs, a reference gets the same "
                       "weights where it can and is timed interleaved in the same process, and "
                       "the ratio is printed with what it is against: an independent "
                       "implementation (timm, torchvision, torchsr, OpenCV) or, where none "
                       "installs, one of our own models (sotazoo:), labelled as ours. A method "
                       "(e.g. autoaugment_imagenet) is timed one image at a time: its mean time "
                       "per image over --reps images (default 1000), beside its reference.")  # fmt: skip
    s.add_argument("model", help="model or method name, e.g. seresnet50, autoaugment_imagenet")
    s.add_argument("--vs", nargs="?", const="default", metavar="REFERENCE",
                   help="timm:NAME, torchvision:NAME[:k=v,...], torchsr:NAME[:k=v,...], "
                   "opencv:NAME[:k=v,...] or sotazoo:NAME[:k=v,...] (e.g. "
                   "torchvision:retinanet_resnet50_fpn:raw=True,frozen_bn=True, opencv:yolov3_416: "
                   "see sotazoo.bench); alone: the model's declared reference")  # fmt: skip
    s.add_argument("--size", metavar="N|HxW",
                   help="input height and width for both models (default: the card's input_size)")  # fmt: skip
    s.add_argument("--batch", type=POSITIVE, default=8,
                   help="batch size for throughput (default 8)")  # fmt: skip
    s.add_argument("--reps", type=POSITIVE, default=15, help="timed runs per model (default 15)")
    s.add_argument("--device", default="cpu", help="cpu or cuda")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.add_argument("--save", action="store_true",
                   help="also write results/bench/<model>.json, with the command, commit and "
                   "versions; only from a checkout without uncommitted changes")  # fmt: skip
    s.add_argument("--allow-dirty", action="store_true",
                   help="with --save, from uncommitted code: written to results/dirty/bench/")  # fmt: skip
    s.set_defaults(func=_cmd_bench)

    s = sub.add_parser("export", help="export a model to ONNX and check it with onnxruntime",
                       description="Export to ONNX (opset >= 17, dynamic batch), run the file "
                       "with onnxruntime and compare with PyTorch; fails when the max abs "
                       "difference exceeds --tolerance times the output's scale, max(1, max "
                       "|output|): float32 rounding grows with the values' magnitude.")  # fmt: skip
    s.add_argument("model", help="model name")
    s.add_argument("--onnx", required=True, metavar="PATH", help="output .onnx file")
    s.add_argument("--weights", help="weights tag (official, sotazoo) or checkpoint path")
    s.add_argument("--opset", type=_int_at_least(17), default=17, help="ONNX opset (17 or newer)")
    s.add_argument("--tolerance", type=_positive_float, default=1e-4,
                   help="max abs diff allowed, relative to max(1, max |output|)")  # fmt: skip
    s.set_defaults(func=_cmd_export)

    s = sub.add_parser("sample", help="draw a grid of images from a generator",
                       description="Draw one image per noise seed from a generator (SAGAN, "
                       "ProGAN) and write them as a PNG grid. The noise of a seed is the one the "
                       "site's demo uses for it, so both draw the same picture. Conditional "
                       "generators get --label, or the classes in turn, one per column.")  # fmt: skip
    s.add_argument("model", help="a generation model, e.g. sagan_mini or progan_mini")
    s.add_argument("--out", required=True, metavar="PATH", help="output .png file")
    s.add_argument("--weights", default="sotazoo",
                   help="weights tag or checkpoint path (default sotazoo: our trained demo "
                   "weights); none: random initialisation")  # fmt: skip
    s.add_argument("--seeds", default="0-99", help="noise seeds: N, A-B or a comma list (0-99)")
    s.add_argument("--label", type=_int_at_least(0),
                   help="class of every sample (conditional models)")  # fmt: skip
    s.add_argument("--nrow", type=POSITIVE, help="images per row (default: the number of classes "
                   "when they cycle and are at most 20, else 10)")  # fmt: skip
    s.set_defaults(func=_cmd_sample)

    s = sub.add_parser("predict", help="run a model on your own images",
                       description="Run a model on image files the way its demo on the site "
                       "does: a classifier prints its top-5 classes, a detector draws its boxes "
                       "into <stem>.<model>.png (an instance segmenter its boxes and masks), a "
                       "super-resolution model writes the enlarged "
                       "image (clamped to the valid range), a VQA model answers --question. "
                       "Every result also goes to predictions.json in --out. Generators take no "
                       "file: `sotazoo sample`.",
                       epilog="examples:\n  sotazoo predict edsr_baseline_x4 photo.jpg --out up/\n"
                       "  sotazoo predict yolov3_mini scene.png\n"
                       "  sotazoo predict maskrcnn_mini scene.png --threshold 0.8\n"
                       "  sotazoo predict retinanet_resnet50_fpn street.jpg --weights official\n"
                       "  sotazoo predict seresnet50 cat.jpg --weights official\n"
                       "  sotazoo predict rn_mini scene.png --question 'What shape is the red "
                       "object?'",
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    s.add_argument("model", help="model name (`sotazoo list --models`)")
    s.add_argument("files", nargs="+", metavar="FILE", help="image files (PNG, JPEG, WebP, ...)")
    s.add_argument("--weights", metavar="TAG|PATH",
                   help="weights tag (sotazoo, official) or a checkpoint path; default: our "
                   "packaged weights where the model has them (`sotazoo list --weights`)")  # fmt: skip
    s.add_argument("--out", default=".", metavar="DIR",
                   help="folder for the outputs and predictions.json (default: here)")  # fmt: skip
    s.add_argument("--question", help="the question, in words (VQA models)")
    s.add_argument("--threshold", type=float, metavar="SCORE",
                   help="detectors at full size (official weights) and instance segmenters: "
                   "show what scores above this (default 0.5; the detection demo models keep "
                   "their demo's threshold)")  # fmt: skip
    s.add_argument("--json", action="store_true", help="print predictions.json")
    s.set_defaults(func=_cmd_predict)

    s = sub.add_parser("repro", help="reproduce a paper's key claim at laptop scale",
                       description="Run the paper's laptop-scale experiment (method vs. its "
                       "ablation on data generated offline), print the paper's claim beside what "
                       "we measured with a verdict (the one rule of sotazoo.repro.RULE), and write "
                       "results/<paper>.json and a figure. --quick runs a seconds-long smoke "
                       "version (never a verdict: too few seeds) and writes <paper>.quick.json; "
                       "--long trains the arms past the 10-minute budget and writes "
                       "results/long/<paper>.json (sagan, retinanet, relation_networks). A full or "
                       "long run writes into results/ only from a clean git checkout.")  # fmt: skip
    s.add_argument("paper", help="paper id, e.g. senet")
    s.add_argument("--quick", action="store_true",
                   help="seconds-long smoke run (of the long run, with --long)")  # fmt: skip
    s.add_argument("--long", action="store_true",
                   help="the longer run, as learning curves (tens of minutes)")  # fmt: skip
    s.add_argument("--allow-dirty", action="store_true",
                   help="run from uncommitted code: the result goes to results/dirty/, marked")  # fmt: skip
    s.add_argument("--seed", type=SEED, action="append",
                   help="seed to run (repeat for several; default: the experiment's seeds)")  # fmt: skip
    s.add_argument("--out", help="results folder (default: results/ of the checkout)")
    s.add_argument("--json", action="store_true", help="print the result JSON")
    s.set_defaults(func=_cmd_repro)

    s = sub.add_parser("train", help="train a model by its sotazoo recipe (demo weights)",
                       description="Train a model with its recipe and write safetensors weights, "
                       "their sha256 and a JSON log.")  # fmt: skip
    s.add_argument("model", help="model name with a recipe, e.g. seresnet_mini")
    s.add_argument("--out", help="output folder (default: $SOTAZOO_HOME/trained/<model>/seed<N>)")
    s.add_argument("--seed", type=SEED, default=0)
    s.add_argument("--budget", type=POSITIVE, metavar="N",
                   help="the training budget in the recipe's own unit (below), instead of the "
                   "budget of the committed weights")  # fmt: skip
    s.set_defaults(func=_cmd_train)
    s.format_help = _with_recipes(s.format_help)  # the units, listed only when help is asked

    s = sub.add_parser("site", help="build the static site",
                       description="Generate the static site: an index by section, a page per "
                       "paper (card, figure, claims beside our results, bench, browser demo), "
                       "comparison charts per task. Demo models are exported to ONNX and "
                       "onnxruntime-web is installed from npm (once) by this command.")  # fmt: skip
    site_sub = s.add_subparsers(dest="site_command", required=True, metavar="ACTION")
    b = site_sub.add_parser("build", help="build the site into a folder")
    b.add_argument("--out", help="output folder (default: $SOTAZOO_HOME/site)")
    b.set_defaults(func=_cmd_site_build)
    b = site_sub.add_parser("bench", help="browser (onnxruntime-web) vs native latency",
                            description="Time the same ONNX file in headless Chromium "
                            "(onnxruntime-web, wasm) and in native onnxruntime on this machine, "
                            "same input and threads, and print the ratio. A name is a demo "
                            "model of the site (model.tag) or any registered model (exported "
                            "with random weights).")  # fmt: skip
    b.add_argument("models", nargs="*", default=["seresnet_mini.sotazoo", "seresnet50"],
                   help="what to time (default: seresnet_mini.sotazoo seresnet50)")  # fmt: skip
    b.add_argument("--reps", type=POSITIVE, default=50, help="timed runs per side (default 50)")
    b.add_argument("--threads", type=POSITIVE, default=1,
                   help="threads on both sides (default 1)")  # fmt: skip
    b.add_argument("--save", action="store_true",
                   help="write results/bench/browser.<threads>thread.json")  # fmt: skip
    b.set_defaults(func=_cmd_site_bench)

    s = sub.add_parser("serve", help="build the site if needed and serve it on localhost",
                       description="Serve the site over HTTP (file:// cannot load the browser "
                       "runtime) with the cross-origin-isolation headers onnxruntime-web needs "
                       "for threads. Builds it first when missing or out of date.")  # fmt: skip
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=PORT, default=8000,
                   help="port, 0-65535 (default 8000; 0 picks a free one)")  # fmt: skip
    s.add_argument("--site", help="site folder (default: $SOTAZOO_HOME/site)")
    s.add_argument("--rebuild", action="store_true", help="rebuild even when up to date")
    s.set_defaults(func=_cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SotazooError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and friends: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(
            "interrupted; files are written atomically, nothing partial was left", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
