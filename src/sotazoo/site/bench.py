"""`sotazoo site bench`: one ONNX file's latency in the browser against native onnxruntime.

The browser side is onnxruntime-web's wasm backend in headless Chromium, on the served site
(COOP/COEP on, so it may use threads); the native side is onnxruntime's CPU provider in this
process, pinned to the thread count the browser reports. Native runs are timed before and after
the browser's, so that a machine whose speed drifts during the run hurts both sides alike.
Reported: medians and the ratio browser / native (the goal is within 2x).
"""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import numpy as np


def _native(onnx: Path, shape: tuple[int, ...], threads: int, reps: int) -> list[float]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx), opts, providers=["CPUExecutionProvider"])
    feeds = {sess.get_inputs()[0].name: np.full(shape, 0.5, dtype=np.float32)}
    for _ in range(10):
        sess.run(None, feeds)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def _bench_file(site: Path, name: str, model: str) -> tuple[Path, tuple[int, ...]]:
    """The ONNX file to time: a demo model of the site, or a registry model exported here."""
    from sotazoo.export import export_onnx
    from sotazoo.registry import create_model, model_entry

    demo = site / "models" / f"{name}.onnx"
    _, entry = model_entry(model)
    if demo.is_file():
        return demo, (1, *entry.input_size)
    path = site / "bench" / f"{name}.onnx"
    if not path.is_file():
        export_onnx(create_model(model), entry.input_size, path, extra_inputs=entry.extra_inputs,
                    task=entry.task)  # fmt: skip
    return path, (1, *entry.input_size)


def browser_bench(
    names: list[str], *, site: Path, threads: int = 1, reps: int = 50, progress: bool = True
) -> dict:
    """Time each of `names` (`model.tag` of a demo, or a model name) in Chromium and natively,
    both with `threads` threads."""
    from sotazoo.provenance import git_commit, machine
    from sotazoo.site.browser import run_check
    from sotazoo.site.runtime import ensure_runtime
    from sotazoo.site.serve import make_server

    server = make_server(site, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    rows = []
    try:
        for name in names:
            onnx, shape = _bench_file(site, name, name.split(".")[0])
            if progress:
                print(f"timing {onnx.name} {shape}, {threads} thread(s): native, browser, native",
                      flush=True)  # fmt: skip
            before = _native(onnx, shape, threads, reps)
            report = run_check(ensure_runtime(progress=progress), url,
                               "--bench", onnx.relative_to(site).as_posix(),
                               "--shape", ",".join(map(str, shape)), "--reps", str(reps),
                               "--threads", str(threads))  # fmt: skip
            b = report["bench"]
            after = _native(onnx, shape, threads, reps)
            native = statistics.median(before + after)
            browser = statistics.median(b["times"])
            rows.append({
                "model": name,
                "onnx_mb": round(onnx.stat().st_size / 2**20, 2),
                "input_shape": list(shape),
                "threads": threads,
                "browser_threads": b["threads"],
                "cross_origin_isolated": b["isolated"],
                "browser_ms": browser,
                "native_ms": native,
                "ratio": browser / native,
                "reps": reps,
            })  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    commit, dirty = git_commit()
    return {"rows": rows, "machine": machine(), "git_commit": commit, "git_dirty": dirty,
            "browser": "headless Chromium, onnxruntime-web wasm"}  # fmt: skip


def format_browser_bench(data: dict) -> str:
    lines = [f"{'model':<28}{'input':<16}{'thr':>4}{'native ms':>11}{'browser ms':>12}{'ratio':>8}"]
    for r in data["rows"]:
        shape = "x".join(map(str, r["input_shape"]))
        lines.append(f"{r['model']:<28}{shape:<16}{r['threads']:>4}{r['native_ms']:>11.2f}"
                     f"{r['browser_ms']:>12.2f}{r['ratio']:>8.2f}")  # fmt: skip
    lines.append("ratio = browser (onnxruntime-web wasm) / native onnxruntime, same file, same "
                 "threads, medians; goal: within 2x")  # fmt: skip
    return "\n".join(lines)
