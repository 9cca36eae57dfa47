"""The LiteRT converter's venv is built by one process at a time: a second export waits on the build's
lock, then uses what the first one built instead of building (or deleting) it again."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

WAITER = (
    "from lexiedge_litert.converter_env import converter_python\n"
    "print('python:', converter_python(lambda line: print(line, flush=True)), flush=True)\n"
)


def test_a_second_process_waits_for_the_build_and_reuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lexiedge_litert import converter_env

    monkeypatch.setenv("LEXIEDGE_VENVS", str(tmp_path))
    venv = converter_env.env_dir()
    with open(tmp_path / f".{venv.name}.lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # this test is the process building it
        waiter = subprocess.Popen(
            [sys.executable, "-c", WAITER],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "LEXIEDGE_VENVS": str(tmp_path)},
        )
        assert waiter.stdout is not None
        said = waiter.stdout.readline()
        assert said.startswith("waiting for another process building") and str(venv) in said, said
        time.sleep(0.5)
        assert waiter.poll() is None, "it waits while the lock is held"
        # what the build leaves when it completes: the venv's Python and, last, the marker
        python = converter_env.python_of(venv)
        python.parent.mkdir(parents=True)
        python.symlink_to(sys.executable)
        (venv / converter_env.READY).write_text("built by the first process\n")
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    out, _ = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, out
    assert out.strip() == f"python: {python}", out  # no "building ..." line: it did not build again
    assert (venv / converter_env.READY).read_text() == "built by the first process\n"
