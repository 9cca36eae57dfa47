"""A busy machine is named, never timed silently: `lexiedge bench` records the load average and CPU steal
at its start and end and says in one line when the machine was busy; the demo's table carries that line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lexiedge.demo import _bench_summary
from lexiedge.latency.machine import MachineLoad, RunLoad, busy_warning, sample, usable_cores

FAST = ["--warmup", "1", "--iterations", "2", "--rounds", "1"]


def test_a_sample_reads_this_machine() -> None:
    load = sample(window_s=0.2)
    assert load.cores == usable_cores() == len(os.sched_getaffinity(0))
    assert load.load_average_1m is not None and abs(load.load_average_1m - os.getloadavg()[0]) < 2.0
    assert load.steal is not None and 0.0 <= load.steal <= 1.0  # /proc/stat exists on Linux
    assert load.busy == (load.load_average_1m > load.cores or load.steal > 0.10)


def test_busy_means_more_load_than_cores_or_stolen_time() -> None:
    quiet, loaded = MachineLoad(0.4, 0.0, 2), MachineLoad(9.1, 0.0, 2)
    stolen = MachineLoad(1.0, 0.25, 2)
    assert not quiet.busy and loaded.busy and stolen.busy
    assert busy_warning(RunLoad(quiet, quiet)) is None
    line = busy_warning(RunLoad(quiet, loaded))
    assert line is not None and "\n" not in line
    assert "load 0.40 on 2 cores" in line and "load 9.10 on 2 cores" in line and "quiet machine" in line
    assert "25% steal" in busy_warning(RunLoad(stolen, quiet))
    # the JSON form (bench.json) says the same
    assert busy_warning(RunLoad(quiet, loaded).to_json()) == line
    assert busy_warning(RunLoad(quiet, quiet).to_json()) is None and busy_warning(None) is None


@pytest.mark.slow
def test_bench_records_the_load_at_start_and_end(cli, av_artifacts, tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = cli("bench", str(av_artifacts["onnx"]), "--backends", "ort", *FAST, "--out", str(out))
    assert result.exit_code == 0, result.stderr
    report = json.loads((out / "bench.json").read_text())
    load = report["machine"]["load"]
    for moment in ("start", "end"):
        assert load[moment]["cores"] == usable_cores()
        assert isinstance(load[moment]["load_average_1m"], float) and 0.0 <= load[moment]["steal"] <= 1.0
    busy = any(MachineLoad(**load[moment]).busy for moment in ("start", "end"))
    assert load["busy"] is busy
    table = (out / "bench.md").read_text()
    # the warning is in the report exactly when the machine was busy (this machine is shared: either may happen)
    assert ("busy machine" in table) is busy and ("busy machine" in result.stderr) is busy


def test_the_demo_table_carries_the_warning_beside_its_ratios() -> None:
    backend = {"name": "ort", "latency_ms": {"p50": 12.0}, "speedup": 126.57, "throughput_unit": "clips/s"}
    busy = RunLoad(MachineLoad(9.0, 0.0, 2), MachineLoad(8.7, 0.0, 2)).to_json()
    quiet = RunLoad(MachineLoad(0.3, 0.0, 2), MachineLoad(0.5, 0.0, 2)).to_json()
    loaded_summary = _bench_summary({"backends": [backend], "machine": {"load": busy}})
    assert loaded_summary.startswith("ort p50 12.0 ms (126.57x); WARNING: busy machine (load 9.00 on 2 cores")
    assert _bench_summary({"backends": [backend], "machine": {"load": quiet}}) == "ort p50 12.0 ms (126.57x)"
