"""Whole files or none: every file the toolkit writes in place goes through here.

A reader (another process, a resumed run, a crash's aftermath) sees either the old file or the new
one, never half of one: the data is written to a temporary file in the same directory (so the rename
stays on one file system), optionally fsynced, then renamed over the target with :func:`os.replace`.
If writing fails, the temporary file is removed and the old file is left as it was.

Temporary names start with ``.<name>.`` and end with ``.tmp`` (or the ``suffix`` asked for, for
writers that pick a format from the extension), so they are hidden and easy to recognise. The file
gets the permissions of any new file (the umask's), not ``mkstemp``'s owner-only 0600.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "write_bytes", "write_json", "write_text"]


def _reserve(path: Path, suffix: str) -> Path:
    """Create an empty, unique temporary file beside ``path`` (umask permissions) and return its path."""
    while True:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{suffix}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
        os.close(fd)
        return tmp


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = False, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error, rename it to ``path``.

    The temporary file exists (empty) when the block starts; the block may overwrite it with any
    writer that takes a path. With ``fsync`` its data reach the disk before the rename. On any error
    (including ``KeyboardInterrupt``) the temporary file is removed and ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _reserve(target, suffix)
    try:
        yield tmp
        if fsync:
            _fsync_file(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` whole or not at all; returns ``path``."""
    target = Path(path)
    with atomic_path(target, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return target


def write_text(path: str | os.PathLike[str], text: str, *, fsync: bool = False, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` whole or not at all; returns ``path``."""
    target = Path(path)
    with atomic_path(target, fsync=fsync) as tmp:
        tmp.write_text(text, encoding=encoding)
    return target


def write_json(path: str | os.PathLike[str], data: Any, *, fsync: bool = False, indent: int | None = 2) -> Path:
    """``data`` as JSON (``indent`` spaces, a final newline), whole or not at all; returns ``path``.

    The text is built before the temporary file is created, so data that cannot be serialised leave
    nothing behind at all.
    """
    return write_text(path, json.dumps(data, indent=indent) + "\n", fsync=fsync)
