"""`lexiedge ARGS...` run in this process, as the console script runs it: the one helper the fixtures share
(importable from every test folder: pyproject's pytest ``pythonpath`` holds tests/)."""

from __future__ import annotations


def lexiedge_ok(*args: object) -> None:
    """Run `lexiedge ARGS...` in-process; the calling test (or fixture) fails if it does not exit 0."""
    from lexiedge.cli import main

    code = main([str(arg) for arg in args])
    assert code == 0, f"lexiedge {' '.join(map(str, args))} exited {code}"


def lexiedge_ok_in_a_new_process(*args: object) -> None:
    """Run `lexiedge ARGS...` as a user does, in a process of its own (``python -m lexiedge``).

    For the speaker-normalised model's ONNX exports: traced in a process that had exported the ResLSTM
    model before (tests/emotion_av_model), torch.onnx produced a graph whose samples axis was frozen to the
    trace's length, which the export's shape check then refused. A user's `lexiedge export` is a process of
    its own, so the fixtures export as one; the in-process cause is an open finding (issue 29's note).
    """
    import subprocess
    import sys

    command = [sys.executable, "-m", "lexiedge", *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"lexiedge {' '.join(map(str, args))} exited {done.returncode}: {done.stderr[-2000:]}"
