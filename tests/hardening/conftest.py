"""Counters of the fuzzing and stateful tests, printed at the end of the run (the figures the issue asks for)."""

from collections import Counter
from dataclasses import dataclass, field

import pytest


@dataclass
class FuzzStats:
    cases: Counter = field(default_factory=Counter)  # (role, operation) -> cases run
    statuses: Counter = field(default_factory=Counter)  # status code -> responses

    def record(self, role: str, operation: str, status: int) -> None:
        self.cases[(role, operation)] += 1
        self.statuses[status] += 1


@dataclass
class StatefulStats:
    runs: int = 0
    steps: int = 0
    rules: Counter = field(default_factory=Counter)


FUZZ_STATS = FuzzStats()
STATEFUL_STATS = StatefulStats()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FUZZ_STATS.cases:
        operations = {operation for _, operation in FUZZ_STATS.cases}
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(FUZZ_STATS.statuses.items()))
        terminalreporter.write_line(
            f"schemathesis: {sum(FUZZ_STATS.cases.values())} cases over {len(operations)} operations "
            f"x {len({role for role, _ in FUZZ_STATS.cases})} roles; statuses {statuses}"
        )
    if STATEFUL_STATS.steps:
        rules = ", ".join(f"{name}: {n}" for name, n in sorted(STATEFUL_STATS.rules.items()))
        terminalreporter.write_line(
            f"stateful: {STATEFUL_STATS.steps} steps in {STATEFUL_STATS.runs} runs; rules {rules}"
        )
