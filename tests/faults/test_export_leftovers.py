"""What `lexiedge export` may delete beside its output (issue 31, items 9 and 16).

* ``--force`` replaces an artifact folder (one holding a ``manifest.json``), never a folder of anything
  else: a user's files in the ``--out`` folder are refused in one line and left as they were;
* an export killed with SIGKILL leaves its temporary folder (``.<out>.tmp-<pid>-<hex>``) beside the output;
  the next export of that output removes it, and only folders of that exact pattern whose process is gone:
  a live export's temp folder and a user's look-alike stay.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_helpers import run_process, start

pytestmark = pytest.mark.slow


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_force_never_replaces_a_folder_that_is_not_an_artifact(trained_run, artifact, tmp_path, cli):
    out = tmp_path / "photos"
    (out / "2026").mkdir(parents=True)
    (out / "holiday.jpg").write_bytes(b"\xff\xd8 a user's photo")
    (out / "2026" / "notes.txt").write_text("not an artifact", encoding="utf-8")
    before = _files(out)

    result = cli("export", "--run", str(trained_run), "--target", "onnx", "--out", str(out), "--force")

    assert result.exit_code == 2, result.stderr
    expected = (
        f"error: {out} holds files but no manifest.json, so it is not an artifact: --force replaces only "
        "an artifact folder written by `lexiedge export`; pass another --out (or empty that folder yourself)"
    )
    assert result.stderr.strip().splitlines() == [expected]
    assert _files(out) == before, "the user's files are untouched"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"], "no temp folder left beside it"

    replaced = tmp_path / "artifact"
    shutil.copytree(artifact, replaced)  # an artifact folder: --force replaces it, as before
    (replaced / "model.onnx").write_bytes(b"an older graph")
    done = cli("export", "--run", str(trained_run), "--target", "onnx", "--out", str(replaced), "--force")
    assert done.exit_code == 0, done.stderr
    assert (replaced / "model.onnx").read_bytes() == (artifact / "model.onnx").read_bytes()


def _dead_pid() -> int:
    """The pid of a process that has ended (a real one, so the number is one the system handed out)."""
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    return int(finished.stdout)


def test_a_killed_export_s_temp_folder_is_removed_by_the_next_export(trained_run, tmp_path):
    out = tmp_path / "artifact"
    victim = start("export", "--run", trained_run, "--target", "onnx", "--out", out)
    try:
        deadline = time.monotonic() + 240
        while not [p for p in tmp_path.iterdir() if p.name.startswith(".artifact.tmp-")]:
            assert victim.poll() is None, (
                f"the export ended before it was killed:\n{victim.stdout.read()[-3000:]}"
            )
            assert time.monotonic() < deadline, "the export never made its temp folder"
            time.sleep(0.01)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.communicate()
    assert victim.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir()]
    assert left and all(name.startswith(".artifact.tmp-") for name in left), left  # what a kill leaves

    live = tmp_path / f".artifact.tmp-{os.getpid()}-0123abcd"  # this process is alive: an export in flight
    look_alike = tmp_path / ".artifact.tmp-backup"  # not a name the exporter makes
    dead = tmp_path / f".artifact.tmp-{_dead_pid()}-89abcdef"
    for folder in (live, look_alike, dead):
        folder.mkdir()
        (folder / "keep.txt").write_text("x", encoding="utf-8")

    again = run_process("export", "--run", trained_run, "--target", "onnx", "--out", out)

    assert again.code == 0, again.output[-3000:]
    assert (out / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["artifact", live.name, look_alike.name])
