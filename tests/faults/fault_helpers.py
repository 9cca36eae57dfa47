"""Running lexiedge in the fault suite: in this process, or as a real process with the fault plugins."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import fault_plugins
from cli_runner import lexiedge_ok  # noqa: F401  (the fault tests' import of it)


@dataclass
class Finished:
    code: int
    output: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.output.splitlines() if line.strip()]


def start(*args: object, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen:
    """`lexiedge ARGS` as a real process with the fault plugins; stdout and stderr together."""
    return subprocess.Popen(fault_plugins.script_command(*map(str, args)), env=env or fault_plugins.process_env(),
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen, timeout: float = 300) -> Finished:
    output, _ = process.communicate(timeout=timeout)
    return Finished(process.returncode, output)


def run_process(*args: object, env: dict[str, str] | None = None, cwd: Path | None = None) -> Finished:
    return finish(start(*args, env=env, cwd=cwd))


def wait_until_stopped(process, deadline_s: float = 240) -> None:
    """Until a fault process has SIGSTOPped itself at the point its environment named (fault_plugins)."""
    import time

    import psutil

    handle = psutil.Process(process.pid)
    deadline = time.monotonic() + deadline_s
    while handle.status() != psutil.STATUS_STOPPED:
        assert process.poll() is None, f"the process ended before it stopped:\n{process.stdout.read()[-3000:]}"
        assert time.monotonic() < deadline, "the process never reached its stopping point"
        time.sleep(0.02)
