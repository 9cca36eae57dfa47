"""`lexiedge ARGS...` run in this process, as the console script runs it: the one helper the fixtures share
(importable from every test folder: pyproject's pytest ``pythonpath`` holds tests/)."""

from __future__ import annotations


def lexiedge_ok(*args: object) -> None:
    """Run `lexiedge ARGS...` in-process; the calling test (or fixture) fails if it does not exit 0."""
    from lexiedge.cli import main

    code = main([str(arg) for arg in args])
    assert code == 0, f"lexiedge {' '.join(map(str, args))} exited {code}"
