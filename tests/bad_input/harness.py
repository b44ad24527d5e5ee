"""The bad-input corpus: what a new user or an attacker tries, and what must come of it.

Each `Case` is one input (a call into the library, or a command line) with the outcome it must
have: a *clear* error, an exception of the expected class whose message contains the expected
words. Anything else is classified as what a user would see instead:

- `traceback`: an exception of another class (a raw traceback at the CLI), or our error class
  with a message that does not name the problem;
- `silent`: no error at all (a wrong answer, or a destructive action, passed off as success);
- `hang`: still running after the case's time limit.

`tests/bad_input/test_*.py` each hold a list `CASES` and run every case through `check`; the
`conftest.py` beside this file prints the totals per outcome at the end of the run (the numbers a
closing note quotes). A case that must *succeed* (the bad input is handled, e.g. a float64 image
converted) says so with `expect="ok"` and checks its result in `run` itself.
"""

from __future__ import annotations

import contextlib
import io
import re
import threading
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sotazoo.errors import SotazooError

OUTCOMES = ("clear", "traceback", "silent", "hang")
TOTALS: Counter = Counter()  # outcome -> count, over every case run in this session
FINDINGS: list[str] = []  # one line per case that was not clear


@dataclass(frozen=True)
class Case:
    """One bad input.

    Attributes:
        id: a short name (the test id).
        run: what the user does; raises, returns, or (for CLI cases) returns an exit code.
        words: a regex the error message must match (case-insensitive).
        error: the exception class a clear error has.
        expect: "error" (a clear error) or "ok" (handled: `run` returns and checks its result).
        timeout_s: past this the case is a hang.
    """

    id: str
    run: Callable[[], Any]
    words: str = ""
    error: type[BaseException] = SotazooError
    expect: str = "error"
    timeout_s: float = 120.0


@dataclass(frozen=True)
class Outcome:
    kind: str  # one of OUTCOMES
    detail: str


def classify(case: Case) -> Outcome:
    """Run `case` in a worker thread (so that a hang is seen, not waited out) and say what a
    user would get."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = case.run()
        except BaseException as e:  # noqa: BLE001 - classifying every outcome is the point
            box["error"] = e
            box["trace"] = traceback.format_exc()

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(case.timeout_s)
    if t.is_alive():
        return Outcome("hang", f"still running after {case.timeout_s:g} s")
    err = box.get("error")
    if case.expect == "ok":
        if err is None:
            return Outcome("clear", "handled")
        return Outcome("traceback", f"{type(err).__name__}: {err}")
    if err is None:
        return Outcome("silent", f"no error; returned {box.get('value')!r:.200}")
    msg = str(err)
    if isinstance(err, case.error) and re.search(case.words, msg, re.IGNORECASE | re.DOTALL):
        return Outcome("clear", msg)
    return Outcome("traceback", f"{type(err).__name__}: {msg[:300]}")


def check(case: Case) -> Outcome:
    """Classify `case`, count it, and fail the test unless the outcome is clear."""
    out = classify(case)
    TOTALS[out.kind] += 1
    if out.kind != "clear":
        FINDINGS.append(f"{case.id}: {out.kind}: {out.detail}")
    assert out.kind == "clear", f"{case.id}: {out.kind}: {out.detail}"
    return out


class CliError(SotazooError):
    """What a command line did, when it did not succeed: exit code and standard error."""


def cli(*argv: str) -> Callable[[], str]:
    """A case's `run` for a command line: `sotazoo ARGV` in this process. A non-zero exit with
    a one-line `error:` message and no traceback raises `CliError(stderr)`; a zero exit returns
    stdout (silent, for a bad input); an exception escaping `main` propagates (a traceback)."""

    def run() -> str:
        from sotazoo.cli import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as e:  # argparse's own errors: usage and exit 2
                code = e.code if isinstance(e.code, int) else 1
        text = err.getvalue()
        if code == 0:
            return out.getvalue()
        if "Traceback (most recent call last)" in text:
            raise RuntimeError(f"exit {code} with a traceback:\n{text}")
        raise CliError(f"exit {code}: {text.strip()}")

    return run
