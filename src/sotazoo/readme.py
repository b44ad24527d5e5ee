"""Regenerate the README's tables from what exists: `python -m sotazoo.readme [README.md]`.

The sections between `<!-- NAME:start -->` and `<!-- NAME:end -->` are generated: `status` from
`sotazoo status`, `repro` from the committed `results/<paper>.json`, `bench` from
`results/bench/*.json`, `browser` from `results/browser/bench.*.json`. A test fails when the
README is out of date.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from sotazoo.bench_labels import reference_label
from sotazoo.fileio import write_text_atomic
from sotazoo.repro import SCHEMA_VERSION, full_result_paths, results_dir
from sotazoo.status import format_status_markdown


def repro_section() -> str:
    lines = [
        "Verdicts follow one rule, `sotazoo.repro.RULE` (a one-sided t-test on the per-seed "
        "effects, then the effect's size against the paper's); counts of our own models are "
        "checks, listed apart.",
        "",
        "| paper | claim | paper's figure | measured (mean ± std) | verdict |",
        "|---|---|---|---|---|",
    ]
    runs = []  # one line per paper under the table (between rows it would break the table)
    for path in full_result_paths():
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != SCHEMA_VERSION:
            runs.append(f"- `{data['paper']}`: made before the verdict rule (schema "
                        f"{data.get('schema')}); not shown until `sotazoo repro {data['paper']}` "
                        "is run again.")  # fmt: skip
            continue
        for c in data["claims"]:
            m = c["measured"]
            paper = f"{c['paper_value']:g} {c['unit']}".strip()
            if c.get("paper_baseline") is not None:
                paper = f"{c['paper_baseline']:g} → {paper}"
            spread = f" ± {m['std']:.2g}" if len(m["per_seed"]) > 1 else ""
            lines.append(
                f"| `{data['paper']}` | {c['id']} | {paper} ({c['source']}) | "
                f"{m['mean']:.3g}{spread} {m.get('unit', '')} | **{c['verdict']}** |"
            )
        checks = "; ".join(f"{k['id']} {'ok' if k['ok'] else 'OFF'}" for k in data["checks"])
        runs.append(
            f"- `{data['paper']}`: `{data['command']}`, seeds {data['seeds']}, "
            f"{data['wall_seconds']:.0f} s on {data['machine']['cpu']} "
            f"({data['machine']['threads']} threads), torch {data['versions']['torch']}, commit "
            f"{data['git_commit'][:10]}{' with uncommitted changes' if data['git_dirty'] else ''}"
            + (f"; model checks: {checks}" if checks else "")
            + "."
        )
    return "\n".join([*lines, "", *runs])


def bench_section() -> str:
    lines = [
        "| model | compared with | params | GMACs | device | latency ms, b=1: ours / theirs "
        "(ratio) | img/s: ours / theirs (ratio) |",
        "|---|---|---|---|---|---|---|",
    ]
    for path in sorted((results_dir() / "bench").glob("*.json")):
        r = json.loads(path.read_text(encoding="utf-8"))
        ours, ref = r["ours"], r.get("reference")
        device = r["cpu"] if r["device"] == "cpu" else r["device"]
        lat = f"{ours['latency_ms']:.1f}"
        thr = f"{ours['throughput']:.1f}"
        if ref:
            lat += f" / {ref['latency_ms']:.1f} ({r['latency_ratio']:.3f})"
            thr += f" / {ref['throughput']:.1f} ({r['throughput_ratio']:.3f}) at b={ours['batch']}"
        lines.append(
            f"| `{r['model']}` | {reference_label(r) + ' `' + ref['name'] + '`' if ref else '-'} | "
            f"{ours['params']:,} | "
            f"{ours['gmacs']:.3f} | {device}, {r['threads']} threads | {lat} | {thr} |"
        )
    return "\n".join(lines)


def browser_section() -> str:
    lines = [
        "| model | input | threads | native onnxruntime ms | browser (onnxruntime-web, wasm) ms "
        "| ratio browser / native | machine |",
        "|---|---|---|---|---|---|---|",
    ]
    for path in sorted((results_dir() / "browser").glob("bench.*.json")):
        d = json.loads(path.read_text(encoding="utf-8"))
        m = d["machine"]
        for r in d["rows"]:
            shape = "x".join(map(str, r["input_shape"]))
            lines.append(
                f"| `{r['model']}` | {shape} | {r['threads']} | {r['native_ms']:.2f} | "
                f"{r['browser_ms']:.2f} | {r['ratio']:.2f} | {m['cpu']}, commit "
                f"{d['git_commit'][:10]} |"
            )
    return "\n".join(lines)


SECTIONS = {
    "status": format_status_markdown,
    "repro": repro_section,
    "bench": bench_section,
    "browser": browser_section,
}


def render(text: str) -> str:
    for name, make in SECTIONS.items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"README has no {name} section markers")
        body = make() + "\n"
        text = pattern.sub(lambda m, body=body: m.group(1) + body + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0] if argv else "README.md")
    text = path.read_text(encoding="utf-8")
    new = render(text)
    if new != text:
        write_text_atomic(path, new)
        print(f"updated {path}")
    else:
        print(f"{path} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
