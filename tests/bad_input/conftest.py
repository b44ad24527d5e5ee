"""Print the bad-input corpus's totals per outcome at the end of the run."""

from .harness import FINDINGS, OUTCOMES, TOTALS


def pytest_terminal_summary(terminalreporter):
    if not TOTALS:
        return
    tr = terminalreporter
    tr.section("bad-input corpus")
    tr.write_line(", ".join(f"{TOTALS[k]} {k}" for k in OUTCOMES) + f" of {sum(TOTALS.values())}")
    for line in FINDINGS:
        tr.write_line("  " + line[:300])
