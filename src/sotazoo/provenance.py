"""Where a result or a weight file came from: the checkout, its commit, the machine.

Every recorded figure (reproductions, benchmarks, training logs) carries these, so that anyone can
tell which code and which machine made it. Light to import: torch only inside `machine`.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tomllib
from pathlib import Path
from typing import Any


def repo_root() -> Path | None:
    """The source checkout this package runs from (editable install), if any."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "pyproject.toml").is_file() and (here / "src").is_dir() else None


def git_commit() -> tuple[str, bool]:
    """(HEAD's commit, whether tracked files outside `results/` differ from it) of the
    checkout; ("unknown", False) outside one."""
    root = repo_root() or Path.cwd()
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        # results/ holds what the code writes (results, verify records), not code: a run that
        # wrote one result does not make the next run's code dirty
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":(exclude)results",
            ],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return head, bool(dirty)
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False


# Card keys that are words for the reader, never an input of a check or an experiment: editing
# them (a translation, a typo, a new link) leaves the evidence of the paper current.
CARD_PROSE_KEYS = frozenset({
    "summary_en", "summary_zh", "key_ideas", "key_ideas_zh", "deviations", "figure", "figure_zh", "bibtex",
    "reading", "reading_note", "browser_note", "browser_note_zh", "remark",
})  # fmt: skip


def card_evidence_bytes(data: bytes) -> bytes:
    """A card.toml as the evidence fingerprint reads it: its data (models, claims, baselines,
    demo, ...) as canonical JSON, the prose keys (`CARD_PROSE_KEYS`) left out. A file that does
    not parse is read whole."""
    try:
        card = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return data
    kept = {k: v for k, v in card.items() if k not in CARD_PROSE_KEYS}
    return json.dumps(kept, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")


def folder_fingerprint(folder: Path, *, leave_out: tuple[str, ...] = ()) -> str:
    """A hash of every file under `folder` (caches excepted, and the files or folders named in
    `leave_out`, at its top): what a record was made of. A card.toml counts by its data, not its
    prose (`card_evidence_bytes`)."""
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        rel = f.relative_to(folder).parts
        if rel[0] in leave_out:
            continue
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(f"{f.relative_to(folder).as_posix()}\n".encode())
            data = f.read_bytes()
            if f.name == "card.toml":
                data = card_evidence_bytes(data)
            h.update(hashlib.sha256(data).digest())
    return h.hexdigest()[:16]


def versions() -> dict[str, str]:
    """The versions a result depends on."""
    import numpy
    import torch
    import torchvision

    import sotazoo

    return {"sotazoo": sotazoo.__version__, "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}  # fmt: skip


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    import torch

    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
