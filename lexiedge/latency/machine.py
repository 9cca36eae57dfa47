"""How busy the machine was while a benchmark ran: load average and CPU steal, at its start and its end.

A timing taken while other processes hold the cores is fiction: `lexiedge demo` under a load average of
~9 on 2 cores timed torch eager at 2,516 ms against ~23 ms on the quiet machine. `lexiedge bench` and the
demo record a :class:`MachineLoad` sample before the first backend loads and after the last one is
timed, and say in one line (:func:`busy_warning`) when the machine was busy, so no ratio from such a
run passes for a measurement.

Busy means a 1-minute load average above the cores this process may use, or more than
:data:`STEAL_BUSY` of the CPU time stolen by the hypervisor (a virtual machine whose host is
oversubscribed is as slow as a loaded one, whatever its own load average says).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STEAL_BUSY = 0.10  # share of CPU time stolen by the hypervisor above which timings are not trusted
STEAL_WINDOW_S = 0.5  # how long a sample watches /proc/stat for steal


@dataclass(frozen=True)
class MachineLoad:
    """One sample: the 1-minute load average and the share of CPU time stolen over a short window."""

    load_average_1m: float | None  # None where the platform has no load average
    steal: float | None  # 0..1; None where /proc/stat is not there (not Linux)
    cores: int

    @property
    def busy(self) -> bool:
        loaded = self.load_average_1m is not None and self.load_average_1m > self.cores
        stolen = self.steal is not None and self.steal > STEAL_BUSY
        return loaded or stolen

    def describe(self) -> str:
        parts = [f"load {self.load_average_1m:.2f} on {self.cores} cores" if self.load_average_1m is not None
                 else f"{self.cores} cores (no load average here)"]
        if self.steal is not None:
            parts.append(f"{self.steal:.0%} steal")
        return ", ".join(parts)


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def sample(window_s: float = STEAL_WINDOW_S) -> MachineLoad:
    """The load average now and the steal share over the next ``window_s`` seconds."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    first = _cpu_times()
    steal = None
    if first is not None:
        time.sleep(window_s)
        second = _cpu_times()
        if second is not None:
            steal = _steal_share(first, second)
    return MachineLoad(round(load, 2) if load is not None else None, steal, usable_cores())


def _cpu_times() -> list[int] | None:
    """The aggregate ``cpu`` line of /proc/stat: user nice system idle iowait irq softirq steal ..."""
    try:
        first_line = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if not first_line or first_line[0] != "cpu":
        return None
    return [int(value) for value in first_line[1:]]


def _steal_share(before: list[int], after: list[int]) -> float:
    # guest time (fields 9, 10) is already counted in user/nice: only the first 8 fields add up to the total
    delta = [b - a for a, b in zip(before[:8], after[:8])]
    total = sum(delta)
    return round(delta[7] / total, 4) if total > 0 and len(delta) == 8 else 0.0


@dataclass(frozen=True)
class RunLoad:
    """The samples taken before and after a benchmark."""

    start: MachineLoad
    end: MachineLoad

    @property
    def busy(self) -> bool:
        return self.start.busy or self.end.busy

    def to_json(self) -> dict[str, Any]:
        return {"start": asdict(self.start), "end": asdict(self.end), "busy": self.busy}


def busy_warning(load: dict[str, Any] | RunLoad | None) -> str | None:
    """One line when the run's machine was busy (a :class:`RunLoad` or its JSON), else None."""
    if load is None:
        return None
    if isinstance(load, dict):
        if not load.get("busy"):
            return None
        start, end = (MachineLoad(**load[key]) for key in ("start", "end"))
    else:
        if not load.busy:
            return None
        start, end = load.start, load.end
    return (f"busy machine ({start.describe()} at the start, {end.describe()} at the end): these timings "
            "and ratios are not measurements; run again on a quiet machine")
