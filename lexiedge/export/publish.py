"""Putting an artifact in place: written in a temporary sibling folder, renamed over the output only once
it passed verification, so ``artifacts/<model>/<target>/`` is always the old artifact or the new, whole one.

The temporary folder is ``.<out>.tmp-<pid>-<8 hex>`` and an artifact being replaced is moved aside to
``.<out>.old-<pid>-<8 hex>`` for the moment of the swap. An export that was killed leaves them behind;
the next export of the same output removes those (that exact pattern only, and only when the process in
the name is gone), and undoes a swap that was cut between its two renames (the previous artifact goes
back). An artifact that failed verification is kept for inspection at ``<out>.failed/``.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

import psutil

from lexiedge.export.manifest import MANIFEST


def temp_dir_for(out_dir: Path) -> Path:
    """A new, empty temporary folder beside ``out_dir`` for this process's export (leftovers gone first)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(out_dir)
    tmp = _sibling(out_dir, "tmp")
    tmp.mkdir()
    return tmp


def clean_leftovers(out_dir: Path) -> list[Path]:
    """Remove what killed exports of ``out_dir`` left beside it; returns the folders removed.

    Only names :func:`temp_dir_for` and :func:`publish` make (``.<out>.tmp-<pid>-<hex>``,
    ``.<out>.old-<pid>-<hex>``), and only when no process of that pid is alive (a reused pid keeps a
    folder one export longer; it never removes a live export's). A ``.old-`` folder while ``out_dir``
    is missing is the previous artifact of a swap cut short: it is renamed back instead.
    """
    if not out_dir.parent.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(out_dir.name)}\.(tmp|old)-(\d+)-[0-9a-f]{{8}}")
    removed = []
    for path in sorted(out_dir.parent.iterdir()):
        match = pattern.fullmatch(path.name)
        if match is None or not path.is_dir() or path.is_symlink() or psutil.pid_exists(int(match.group(2))):
            continue
        if match.group(1) == "old" and not out_dir.exists():
            os.replace(path, out_dir)
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def publish(tmp: Path, out_dir: Path) -> None:
    """Swap the finished artifact in; the old one (--force) is removed only after the swap."""
    old = None
    if out_dir.exists():
        old = _sibling(out_dir, "old")
        os.replace(out_dir, old)
    try:
        os.replace(tmp, out_dir)
    except BaseException:
        if old is not None:
            os.replace(old, out_dir)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def keep_rejected(tmp: Path, out_dir: Path) -> Path:
    """Move an artifact that failed verification next to the real one (``<out>.failed``), for inspection.

    A previous ``<out>.failed`` is replaced only when it is one (it holds a manifest.json); any other
    folder of that name is left alone and this one goes to ``<out>.failed-<8 hex>``.
    """
    rejected = out_dir.parent / f"{out_dir.name}.failed"
    if rejected.exists() and not (rejected / MANIFEST).is_file():
        rejected = out_dir.parent / f"{out_dir.name}.failed-{uuid.uuid4().hex[:8]}"
    shutil.rmtree(rejected, ignore_errors=True)
    os.replace(tmp, rejected)
    return rejected


def _sibling(out_dir: Path, kind: str) -> Path:
    return out_dir.parent / f".{out_dir.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
