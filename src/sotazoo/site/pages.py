"""HTML of the site's pages, written with f-strings and `html.escape` (no template engine).

Every page is self-contained apart from `static/` (one stylesheet, one module script and the
onnxruntime-web files): no font, script or image is fetched from another host.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from sotazoo.cards import CatalogEntry, PaperCard, load_catalog
from sotazoo.tasks import TASKS

UNVERIFIED = (
    ' <span class="badge" title="not checked against the paper\'s own text / 未能在论文原文中核对">'
    '<span class="en" lang="en">unverified</span><span class="zh" lang="zh-CN">未核对</span></span>'
)


def _task_title(task: str) -> str:
    """The task's name in both languages, from the task table (`sotazoo.tasks`)."""
    t = TASKS.get(task)
    return bi(e(t.title), e(t.title_zh)) if t else e(task)


def e(x: Any) -> str:
    return escape(str(x), quote=True)


def bi(en: str, zh: str, tag: str = "span") -> str:
    """A text in both languages; CSS shows the one the switch selects."""
    return f'<{tag} class="en" lang="en">{en}</{tag}><{tag} class="zh" lang="zh-CN">{zh}</{tag}>'


def layout(title: str, body: str, root: str) -> str:
    """The frame of every page; `root` is the relative path back to the site's root."""
    return f"""<!doctype html>
<html lang="en" data-lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} · sotazoo</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{root}static/site.css">
<script type="module" src="{root}static/sotazoo.mjs"></script>
</head>
<body>
<header class="top">
<a class="brand" href="{root}index.html" translate="no">sotazoo</a>
<nav><a href="{root}index.html">{bi("Papers", "论文")}</a><a href="{root}tasks/index.html">{bi("Compare", "对比")}</a><a href="{root}judge.html">{bi("How we judge", "如何判定")}</a></nav>
<div class="lang-switch" role="group" aria-label="language">
<button type="button" data-set-lang="en" aria-pressed="true" lang="en">English</button><button type="button" data-set-lang="zh" aria-pressed="false">中文</button>
</div>
</header>
<main>
{body}
</main>
</body>
</html>
"""


VERDICT_ZH = {"reproduced": "已复现", "partly": "部分复现", "not reproduced": "未复现",
              "inconclusive": "无定论"}  # fmt: skip


def verdict_class(verdict: str) -> str:
    """The CSS class of a verdict: `verdict-not-reproduced` (a class name has no spaces)."""
    return "verdict-" + verdict.replace(" ", "-").replace("_", "-")


def verdict_html(verdict: str) -> str:
    word = verdict.replace("_", " ")
    return (
        f'<span class="{verdict_class(word)}">{bi(e(word), e(VERDICT_ZH.get(word, word)))}</span>'
    )


COLUMN_ZH = {"card": "卡片", "model": "模型", "oracle": "参考对照", "weights": "权重",
             "repro": "复现", "bench": "测速", "browser": "浏览器", "bad input": "坏输入"}  # fmt: skip


def untranslated(text: str, field: str) -> str:
    """Text of ours that exists only in English (what a result's experiment tested, a check's
    details, a card's reference note): shown as is, marked as English on the Chinese page."""
    return f'<span class="untranslated" data-field="{e(field)}" lang="en">{e(text)}</span>'


def state_zh(state: str) -> str:
    """A status cell's words (`sotazoo.status`) in Chinese."""
    for en, zh in (("repro.", "项复现"), ("(stale)", "（已过期）"), ("(dirty)", "（未提交的代码）"),
                   ("old rule", "旧规则"), ("invalid", "无效")):  # fmt: skip
        state = state.replace(en, zh)
    return state


def rule_zh(claim: dict) -> str:
    """The rule's figures for one claim (`repro.judge`'s test), in Chinese; the effect measured
    is described in English beside it."""
    from sotazoo.repro import LEVEL

    t = claim.get("test")
    if not t:
        return untranslated(claim["rule"], "rule")
    lo, hi = t.get("lower"), t.get("upper")
    bounds = f"[{lo:.3g}, {hi:.3g}]" if lo is not None and hi is not None else "—"
    paper = t.get("paper_effect")
    return e(
        f"n = {t['n']}，单侧 {100 * (1 - LEVEL):g}% 置信界 {bounds}，对照 {t.get('threshold', 0):g}，"
        f"p = {t['p']:.3g}"
        + (f"；论文的效应 {paper:.3g}" if paper is not None else "")
        + "（sotazoo.repro.RULE）"
    )


def reference_label_zh(bench: dict) -> str:
    """What a benchmark was compared with, in Chinese (`bench_labels.reference_label`)."""
    from sotazoo.bench_labels import LIBRARIES, reference_kind

    ref = bench.get("reference")
    if not ref:
        return ""
    lib, _, rest = ref["name"].partition(":")
    name, _, opts = rest.partition(":")
    note = ""
    if "(" in bench.get("reference_label", ""):
        note = bench["reference_label"].split("(", 1)[1].rsplit(")", 1)[0]
    if reference_kind(ref["name"]) == "independent":
        if note == "independent implementation":
            return e(f"对比 {LIBRARIES.get(lib, lib)} 的 {name}（独立实现）")
        return (
            e(f"对比 {LIBRARIES.get(lib, lib)} 的 {name}（")
            + untranslated(note, "reference_note")
            + "）"
        )
    label = e(f"对比我们自己的 {name}" + (f"，{opts}" if opts else ""))
    return f"{label}（{untranslated(note, 'reference_note')}）" if note else label


def _badge(name: str, c) -> str:
    """One column's badge. The repro badge says how many claims reproduced, coloured by that:
    a run that reproduced nothing is not shown green."""
    title = f' title="{e(name)}: {e(c.text)}"'
    label = bi(e(name), e(COLUMN_ZH.get(name, name)))
    m = re.match(r"(\d+)/(\d+) repro", c.text) if name == "repro" and c.done else None
    if m is None:
        return f'<span class="badge{" done" if c.done else ""}"{title}>{label}</span>'
    n, total = int(m[1]), int(m[2])
    tone = "all" if n == total else "some" if n else "none"
    return f'<span class="badge repro-{tone}"{title}>{label} {n}/{total}</span>'


def badges(row: dict) -> str:
    cells = "".join(_badge(name, c) for name, c in row.items())
    return f'<div class="badges">{cells}</div>'


def index_page(entries: list[CatalogEntry], rows: dict, demos: set[str]) -> str:
    parts = [
        f"<h1>{bi('The state of the art in computer vision, to read, run and compare', '计算机视觉前沿论文：读懂、运行、复现、对比')}</h1>",
        "<p>"
        + bi(
            "27 landmark papers, grouped by task as on the original page. Each has a card in our "
            "own words; the badges show which of the eight columns of done it has.",
            "27 篇里程碑论文，按原页面的任务分组。每篇都有我们自己写的讲解卡片；徽章表示它完成了"
            "“完成标准”八项中的哪些。",
        )
        + "</p>",
    ]
    section = None
    for p in entries:
        if p.section != section:
            if section is not None:
                parts.append("</ul>")
            section = p.section
            parts.append(f'<h2>{bi(e(section), e(p.section_zh))}</h2><ul class="section-list">')
        remark = (
            f' <span class="meta">[{bi(e(p.remark), e(p.remark_zh))}]</span>' if p.remark else ""
        )
        demo = f' <span class="badge done">{bi("demo", "演示")}</span>' if p.id in demos else ""
        done = sum(c.done for c in rows[p.id].values())
        parts.append(
            f'<li><a href="papers/{e(p.id)}.html" translate="no">{e(p.title)}</a>{remark}{demo} '
            f'<span class="meta">{done}/{len(rows[p.id])}</span>{badges(rows[p.id])}</li>'
        )
    parts.append("</ul>")
    return layout("Papers", "\n".join(parts), "")


def _claims_table(card: PaperCard, result: dict | None) -> str:
    ours = {c["id"]: c for c in (result or {}).get("claims", [])}
    head = (
        f"<tr><th>{bi('variant', '变体')}</th><th>{bi('dataset', '数据集')}</th>"
        f"<th>{bi('metric', '指标')}</th><th>{bi('paper: baseline → method', '论文：基线 → 方法')}</th>"
        f"<th>{bi('source', '出处')}</th>"
        # the column of our results only where a result exists (an empty column reads as broken)
        + (f"<th>{bi('ours, at laptop scale', '我们在笔记本规模的复现')}</th>" if ours else "")
        + "</tr>"
    )
    rows = []
    for c in card.claims:
        v = f"{c.value:g} {c.unit}".strip()
        if c.baseline_value is not None:
            v = f"{c.baseline_value:g} → {v}"
        mine = ""
        if c.id in ours:
            o = ours[c.id]
            m = o["measured"]
            mine = (
                f"{verdict_html(o['verdict'])}<br>{m['mean']:.3g} ± {m['std']:.2g} "
                f"{untranslated(m['unit'], 'measured')}"
                f'<br><span class="meta">{untranslated(o["tested"], "tested")}</span>'
                f'<br><span class="meta">{bi(e(o["rule"]), rule_zh(o))}</span>'
            )
        rows.append(
            f'<tr><td translate="no">{e(c.variant)}</td><td translate="no">{e(c.dataset)} {e(c.split)}</td>'
            f'<td translate="no">{e(c.metric)}</td><td class="num" translate="no">{e(v)}</td>'
            f'<td><span translate="no">{e(c.source)}</span>{"" if c.verified else UNVERIFIED}</td>'
            + (f"<td>{mine}</td>" if ours else "")
            + "</tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _bench_table(benches: list[dict]) -> str:
    if not benches:
        return f"<p>{bi('Not benchmarked yet.', '尚未测速。')}</p>"
    head = (
        f"<tr><th>{bi('model', '模型')}</th><th>{bi('device', '设备')}</th>"
        f"<th>{bi('params', '参数量')}</th><th>{bi('GMACs', 'GMACs（十亿次乘加）')}</th><th>{bi('latency, batch 1', '延迟（批大小 1）')}</th>"
        f"<th>{bi('throughput', '吞吐量')}</th><th>{bi('compared with', '对比对象')}</th>"
        f"<th>{bi('latency ratio ours / compared', '延迟比：我们 / 对比对象')}</th></tr>"
    )
    rows = []
    for b in benches:
        o, r = b["ours"], b.get("reference") or {}
        ratio = f"{b['latency_ratio']:.2f}" if b.get("latency_ratio") else ""
        # the label says whether this is an independent implementation or a model of ours
        # (site.build._benches fills it in); the spec below it is what bench ran
        compared = (
            f"{bi(e(b.get('reference_label', '')), reference_label_zh(b))}"
            f'<br><code class="meta">{e(r["name"])}</code>'
            if r
            else ""
        )
        rows.append(
            f'<tr><td><code>{e(b["model"])}</code></td><td><span translate="no">{e(b["device"])} '
            f"({e(b.get('cpu', ''))}</span>, {e(b.get('threads', ''))} {bi('threads', '线程')})</td>"
            f'<td class="num">{o["params"]:,}</td>'
            f'<td class="num">{o["gmacs"]:.2f}</td><td class="num">{o["latency_ms"]:.1f} ms</td>'
            f'<td class="num">{o["throughput"]:.1f} {bi("img/s", "张/秒")}</td><td>{compared}</td>'
            f'<td class="num">{ratio}</td></tr>'
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{e(p.strip())}</p>" for p in text.strip().split("\n\n"))


def paper_page(
    card: PaperCard,
    row: dict,
    *,
    result: dict | None,
    benches: list[dict],
    figure: str | None,
    repro_figure: str | None,
    demo_spec: str | None,
) -> str:
    c = card
    links = [f'<a href="https://arxiv.org/abs/{e(c.arxiv)}" translate="no">arXiv {e(c.arxiv)}</a>']
    if c.code:
        links.append(f'<a href="{e(c.code)}">{bi("official code", "官方代码")}</a>')
    if c.weights_url:
        links.append(f'<a href="{e(c.weights_url)}">{bi("official weights", "官方权重")}</a>')
    entry = next((p for p in load_catalog() if p.id == c.id), None)
    sec_zh, rem_zh = (entry.section_zh, entry.remark_zh) if entry else (c.section, c.remark)
    remark = f" · [{bi(e(c.remark), e(rem_zh))}]" if c.remark else ""
    body = [
        f'<p class="meta"><a href="../index.html">{bi(e(c.section), e(sec_zh))}</a>{remark}</p>',
        f'<h1 translate="no">{e(c.title)}</h1>',
        f'<p class="meta"><span translate="no">{e(", ".join(c.authors))} · {e(c.venue)}</span> · '
        f"{' · '.join(links)}</p>",
        badges(row),
        f"<h2>{bi('The idea, in our words', '核心思路（我们的讲解）')}</h2>",
        f'<div class="summary"><div class="en" lang="en">{_paragraphs(c.summary_en)}</div>'
        f'<div class="zh" lang="zh-CN">{_paragraphs(c.summary_zh)}</div></div>',
    ]
    if figure:
        body.append(
            f'<figure><img src="{e(figure)}" alt="{e(c.figure)}">'
            f"<figcaption>{bi(e(c.figure), e(c.figure_zh))}</figcaption></figure>"
        )
    body.append(f"<h2>{bi('Key ideas for a re-implementer', '复现要点')}</h2><ul>")
    zh_ideas = c.key_ideas_zh or (None,) * len(c.key_ideas)
    body += [
        f"<li>{bi(e(k), e(z)) if z else e(k)}</li>"
        for k, z in zip(c.key_ideas, zh_ideas, strict=True)
    ]
    body.append("</ul>")
    body.append(f"<h2>{bi('Claims, and what we measured', '论文结论与我们的复现')}</h2>")
    body.append(_claims_table(c, result))
    if result is not None:
        command = result.get("command", f"sotazoo repro {c.id}")
        state = row["repro"].text if not row["repro"].done else ""
        body.append(
            f'<p class="meta">{bi("Reproduced with", "复现命令")} <code>{e(command)}</code>'
            f" · {result['wall_seconds']:.0f} s · {bi('seeds', '种子')} {e(result['seeds'])} · "
            f"{bi('commit', '提交')} <code>{e(result['git_commit'][:10])}</code>"
            f"{' · ' + bi(e(state), e(state_zh(state))) if state else ''} · "
            f'<a href="../judge.html">{bi("how we judge", "如何判定")}</a></p>'
        )
        checks = result.get("checks") or []
        if checks:
            body.append(
                f"<p>{bi('Checks of our model (not reproductions):', '对模型的检查（不算复现）：')}</p><ul>"
            )
            body += [f"<li><code>{e(k['id'])}</code>: {bi('ok' if k['ok'] else 'off', '符合' if k['ok'] else '不符')}, "
                     f"{untranslated(k['how'], 'check')}</li>" for k in checks]  # fmt: skip
            body.append("</ul>")
    else:
        body.append(f"<p>{bi('No laptop-scale reproduction yet.', '尚无笔记本规模的复现。')}</p>")
    if repro_figure:
        body.append(
            f'<figure class="chart"><img src="{e(repro_figure)}" alt="reproduction"></figure>'
        )
    if c.baselines:
        body.append(f"<h2>{bi('The classic baselines it beats', '对比的经典基线')}</h2><table>")
        body.append(
            f"<tr><th>{bi('model', '模型')}</th><th>{bi('dataset', '数据集')}</th>"
            f"<th>{bi('metric', '指标')}</th><th>{bi('value', '数值')}</th><th>{bi('source', '出处')}</th></tr>"
        )
        for b in c.baselines:
            body.append(
                f'<tr><td translate="no">{e(b.name)}</td><td translate="no">{e(b.dataset)}</td>'
                f'<td translate="no">{e(b.metric)}</td>'
                f'<td class="num" translate="no">{b.value:g} {e(b.unit)}</td>'
                f'<td><span translate="no">{e(b.source)}</span>{"" if b.verified else UNVERIFIED}</td></tr>'
            )
        body.append("</table>")
    body.append(f"<h2>{bi('Speed and size on our machine', '在我们机器上的速度与规模')}</h2>")
    body.append(_bench_table(benches))
    body.append(f"<h2>{bi('Run it in your browser', '在浏览器里运行')}</h2>")
    body.append(demo_section(c, demo_spec))
    if n := c.not_applicable_reason("weights"):
        body.append(f"<h2>{bi('Weights', '权重')}</h2>")
        body.append(f'<p class="note">{bi(e(n.why), e(n.why_zh))}</p>')
    if c.methods:
        body.append(f"<h2>{bi('Methods', '方法')}</h2><ul>")
        body += [f'<li><code>{e(m.name)}</code> <span translate="no">{e(m.summary)}</span></li>'
                 for m in c.methods]  # fmt: skip
        body.append("</ul>")
    if c.deviations:
        body.append(f"<h2>{bi('Where sotazoo departs from the paper', '与论文的差异')}</h2><ul>")
        body += [
            f"<li>{bi(f'<b>{e(d.what)}</b> {e(d.why)}', f'<b>{e(d.what_zh)}</b> {e(d.why_zh)}')}</li>"
            if d.what_zh
            else f"<li><b>{e(d.what)}</b> {e(d.why)}</li>"
            for d in c.deviations
        ]
        body.append("</ul>")
    if c.reading or c.reading_note:
        body.append(_reading_section(c))
    body.append(f"<h2>{bi('BibTeX', 'BibTeX 引用')}</h2><pre>{e(c.bibtex)}</pre>")
    return layout(c.title, "\n".join(body), "../")


_LANG_NAMES = {"zh": ("Chinese", "中文"), "en": ("English", "英文")}
_KIND_ZH = {"blog post": "博客文章", "annotated code": "带注释的代码", "talk or video": "演讲或视频",
            "lecture notes": "课程讲义", "official project page": "官方项目页"}  # fmt: skip


def _reading_section(c: PaperCard) -> str:
    """The "Further reading" section: other people's write-ups, the language of each marked, opening in a
    new tab, with our line on what each explains best."""
    items = []
    for r in c.reading:
        en, zh = _LANG_NAMES[r.lang]
        items.append(
            f'<li><span class="lang-tag" lang="{"zh-CN" if r.lang == "zh" else "en"}">'
            f"{bi(en, zh)}</span> "
            f'<a href="{e(r.url)}" target="_blank" rel="noopener noreferrer" '
            f'hreflang="{e(r.lang)}" translate="no">{e(r.title)}</a> '
            f'<span class="meta">{bi(e(r.kind), e(_KIND_ZH.get(r.kind, r.kind)))}</span><br>'
            f"{bi(e(r.why), e(r.why_zh))}</li>"
        )
    note = c.reading_note
    if note:
        items.append(f'<li class="meta">{bi(e(note.en), e(note.zh))}</li>')
    return f'<h2>{bi("Further reading", "延伸阅读")}</h2><ul class="reading">{"".join(items)}</ul>'


def judge_page() -> str:
    """How a reproduction's verdict is decided: the one rule of `sotazoo.repro`, both languages."""
    from sotazoo.repro import RULE, RULE_ZH

    note = bi(
        "Each result on a paper page gives, beside its verdict, the effect it tested, the number "
        "of seeds, the bounds and the p-value the rule decided on.",
        "每个论文页面上的结果都在结论旁列出所检验的效应、种子数、置信界和 p 值。",
    )
    body = (
        f"<h1>{bi('How we judge a reproduction', '我们如何判定复现结果')}</h1>"
        f'<pre class="en" lang="en">{e(RULE)}</pre><pre class="zh" lang="zh-CN">{e(RULE_ZH)}</pre>'
        f"<p>{note}</p>"
    )
    return layout("How we judge", body, "")


def demo_section(card: PaperCard, demo_spec: str | None) -> str:
    if demo_spec:
        d = card.demo
        note = (f'<p class="note">{bi(e(card.browser_note), e(card.browser_note_zh))}</p>'
                if card.browser_note else "")  # fmt: skip
        if not d.weights:  # a method (`[[methods]]`), computed by the page's own code
            runs = bi(", computed by this page's JavaScript, checked against sotazoo's Python on "
                      "fixed draws; nothing leaves your machine.",
                      "，由本页的 JavaScript 计算，已在固定随机抽样上与 sotazoo 的 Python 实现核对；"
                      "数据不会离开你的电脑。")  # fmt: skip
            return (f'{note}<div class="demo" data-demo data-spec="{e(demo_spec)}">'
                    f'<p class="meta"><code>{e(d.model)}</code>{runs}</p></div>')  # fmt: skip
        return (
            f'{note}<div class="demo" data-demo data-spec="{e(demo_spec)}">'
            f'<p class="meta"><code>{e(d.model)}</code> '
            + bi("with weights", "，权重")
            + f" <code>{e(d.model)}.{e(d.weights)}</code>"
            + bi(
                ", run by onnxruntime-web (wasm) on this page; nothing leaves your machine.",
                "，由 onnxruntime-web（wasm）在本页运行；数据不会离开你的电脑。",
            )
            + "</p></div>"
        )
    if n := card.not_applicable_reason("browser"):
        return f'<p class="note">{bi(e(n.why), e(n.why_zh))}</p>'
    models = [m.name for m in card.models]
    if card.browser_note:
        why = bi(e(card.browser_note), e(card.browser_note_zh))
    elif models:
        why = bi("This paper has no browser demo yet.", "这篇论文还没有浏览器演示。")
    else:
        why = bi("This paper has no model in sotazoo yet.", "sotazoo 还没有实现这篇论文的模型。")
    cmd = (
        f"sotazoo export {models[0]} --onnx {models[0]}.onnx"
        if models
        else f"sotazoo info {card.id}"
    )
    return f'<p class="note">{why}</p><p>{bi("From the command line:", "在命令行中：")}</p><pre>{e(cmd)}</pre>'


def missing_card_page(entry: CatalogEntry) -> str:
    body = (
        f'<p class="meta">{bi(e(entry.section), e(entry.section_zh))}</p><h1 translate="no">{e(entry.title)}</h1>'
        f'<p><a href="https://arxiv.org/abs/{e(entry.arxiv)}">arXiv {e(entry.arxiv)}</a></p>'
        f'<p class="note">{bi("Its card is not written yet.", "这篇论文的卡片还没有写。")}</p>'
    )
    return layout(entry.title, body, "../")


def tasks_index(tasks: list[tuple[str, int]]) -> str:
    items = "".join(
        f'<li><a href="{e(t)}.html">{_task_title(t)}</a> '
        f'<span class="meta">{bi(f"({n} charts)", f"（{n} 张图）")}</span></li>'
        for t, n in tasks
    )
    body = (
        f"<h1>{bi('Compare: accuracy against cost', '对比：精度与代价')}</h1>"
        f"<p>{bi('Per task: the papers’ claimed numbers beside the classic baselines of the same tables, and the speed we measured.', '按任务列出：论文声称的结果、同一表格中的经典基线，以及我们实测的速度。')}</p>"
        f"<ul>{items}</ul>"
    )
    return layout("Compare", body, "../")


def task_page(task: str, charts: list[tuple[str, tuple[str, str]]], table: str) -> str:
    """A task's comparison page: each chart with its caption in both languages (en, zh)."""
    figs = "".join(
        f'<figure class="chart"><img src="{e(src)}" alt="{e(en)}">'
        f"<figcaption>{bi(e(en), e(zh))}</figcaption></figure>"
        for src, (en, zh) in charts
    )
    body = f"<h1>{_task_title(task)}</h1>{figs}{table}"
    return layout(TASKS[task].title if task in TASKS else task, body, "../")
