"""Writing files so that nothing is lost or half-written: atomic replacement and a file lock.

Every file sotazoo writes (weights, logs, results, figures, ONNX files, site pages) goes through
`atomic_path`: the writer fills a temporary file beside the target, and only a complete file is
renamed onto it (`os.replace`, atomic on one filesystem). The temporary name is unique to the
process and the call, so two processes writing the same target never share a temporary file —
the last complete write wins, and neither fails or leaves a mixture. A failed or interrupted
write removes its temporary file; one killed outright (SIGKILL, power loss) leaves a hidden
`.NAME.*.part*` file that `remove_orphans` deletes once no writer can still own it.

`file_lock` serialises work on a shared resource (a site folder, a cached download) across
processes with `fcntl.flock`: the kernel drops the lock when its holder dies, so a killed
process never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sotazoo.errors import SotazooError

PART = ".part"


def temp_name(path: Path) -> Path:
    """A unique hidden temporary name beside `path` that keeps its suffix (so that writers which
    choose the format by suffix, PIL and matplotlib, still do): `.NAME.<pid>-<random>.part.SUFFIX`."""
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    return path.with_name(f".{path.stem}.{token}{PART}{path.suffix}")


def is_temp(path: Path) -> bool:
    """Whether `path` is a temporary file of `atomic_path` (or of an older `NAME.part` scheme)."""
    return f"{PART}." in path.name or path.name.endswith(PART)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on any error (Ctrl-C
    included) it is removed and `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise SotazooError(f"{path} is a folder; give the path of a file to write")
    tmp = temp_name(path)
    try:
        yield tmp
        if not tmp.exists():
            raise SotazooError(f"nothing was written for {path}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(data: Any, path: str | Path) -> Path:
    """Write `data` as indented UTF-8 JSON, atomically."""
    return write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def remove_orphans(path: Path, *, older_than_s: float = 3600.0) -> list[Path]:
    """Delete the temporary files of killed writers of `path` (`.NAME.*.part*`, or the older
    `NAME.*.part`) not modified for `older_than_s` seconds: a live writer touches its file far
    more often (downloads write every chunk and time out after 30 s). Returns what was removed."""
    removed = []
    if not path.parent.is_dir():
        return removed
    now = time.time()
    for pattern in (f".{path.stem}.*{PART}{path.suffix}", f"{path.name}.*{PART}"):
        for f in path.parent.glob(pattern):
            try:
                if f.is_file() and now - f.stat().st_mtime > older_than_s:
                    f.unlink()
                    removed.append(f)
            except FileNotFoundError:  # another process cleaned it first
                pass
    return removed


@contextlib.contextmanager
def file_lock(
    path: str | Path, *, what: str = "", timeout_s: float | None = None
) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (created if missing) for the block.

    Waits for another holder; with `timeout_s`, gives up after that long with an error naming
    `what` is locked. Without `fcntl` (Windows) the block runs unlocked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux/macOS
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() > deadline:
                    raise SotazooError(
                        f"{what or path} is in use by another sotazoo process (lock {path})"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
