"""A run resumed mid-epoch logs the history the uninterrupted run logs: same weights, same numbers.

Issue 31, item 15: killed after step 9 (mid-way through the second epoch's evaluation window) and
resumed, the run's second evaluation had train UAR 0.083 where the uninterrupted run had 0.125,
its train confusion counted only the samples after the resume, and the learns-nothing check was
logged a second time. The fixtures are real processes: the 12-step run, and the same run killed
with SIGKILL right after its step-9 checkpoint (tests/faults/conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from fault_helpers import finish, start

# measured, not trained: the time a window took and the memory it peaked at differ between any two runs
MEASURED = {"samples_per_s", "peak_memory_mb"}


def _rows(path: Path) -> list[dict]:
    return [{key: value for key, value in row.items() if key not in MEASURED} for row in path]


def _history(run: Path) -> list[dict]:
    return _rows(json.loads((run / "history.json").read_text()))


def _log(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return _rows(json.loads(line) for line in lines)


def test_a_run_resumed_mid_window_logs_what_the_uninterrupted_run_logs(interrupted_copy, trained_run, profile_path):
    resumed = finish(start("train", "--profile", profile_path, "--out", interrupted_copy, "--resume"))
    assert resumed.code == 0, resumed.output[-3000:]
    assert "resumed from step-00000009" in resumed.output

    expected, got = _history(trained_run), _history(interrupted_copy)
    assert [row["step"] for row in got] == [row["step"] for row in expected] == [6, 12]
    second, reference = got[1], expected[1]
    assert sum(map(sum, second["train/confusion"])) == sum(map(sum, reference["train/confusion"])) == 48
    assert second == reference  # train loss, UAR, WAR, macro-F1, confusion; val as well
    assert _log(interrupted_copy) == _log(trained_run)  # every step line and event once, learning_check included
    events = [row.get("event") for row in _log(interrupted_copy) if "event" in row]
    assert events.count("learning_check") == 1
