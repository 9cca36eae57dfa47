"""User-facing errors.

Every error a user can cause (a bad profile, an unknown plugin, a missing run) is a
:class:`LexiedgeError`: the CLI prints its message as one line and exits with its ``exit_code``,
never with a traceback. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable

# The base classes live in the runtime distribution (its lowest layer, which apps install alone), so a
# runtime error is a LexiedgeError here too: one class each, re-exported.
from lexiedge_runtime.errors import LexiedgeError, NotAvailableError

__all__ = [
    "DiskFullError",
    "LexiedgeError",
    "NotAvailableError",
    "ProfileError",
    "UnknownPluginError",
    "UsageError",
    "describe_os_error",
    "is_disk_full",
]


class ProfileError(LexiedgeError):
    """A profile file that does not load or validate: names the file, the key and what was expected."""

    exit_code = 2

    def __init__(self, source: str, key: str | None, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + problem)


class UnknownPluginError(LexiedgeError):
    """A plugin name that no installed plugin registers; lists the known ones."""

    exit_code = 2

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        listed = ", ".join(self.known) if self.known else "none installed"
        super().__init__(f"unknown {kind} plugin {name!r}; known {kind} plugins: {listed}")


class UsageError(LexiedgeError):
    """A command used in a way it does not support (missing run, existing output, ...)."""

    exit_code = 2


# The errors of the machine rather than of lexiedge's code: a full disk or quota, a read-only or
# forbidden folder, a file where a folder must be. They are one line for the user, not a traceback.
ENVIRONMENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR}
)
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
# what C++ writers (torch.save, safetensors, onnx) put in the RuntimeError they raise for a failed write
_WRITE_FAILURE_WORDS = ("No space left on device", "file write failed", "Disk quota exceeded", "failed writing file")


def describe_os_error(exc: BaseException) -> str | None:
    """One line for an environment :class:`OSError` (see ENVIRONMENT_ERRNOS), None for any other error."""
    if not isinstance(exc, OSError) or exc.errno not in ENVIRONMENT_ERRNOS:
        return None
    where = f"{exc.filename}: " if exc.filename else ""
    reason = exc.strerror or errno.errorcode.get(exc.errno or 0, "error")
    hint = {
        errno.ENOSPC: "free some space (or write elsewhere) and run the command again",
        errno.EDQUOT: "free some space within your quota and run the command again",
        errno.EROFS: "write to another folder",
        errno.EACCES: "check the folder's permissions or write elsewhere",
        errno.EPERM: "check the folder's permissions or write elsewhere",
    }.get(exc.errno or 0)
    return f"{where}{reason}" + (f"; {hint}" if hint else "")


def is_disk_full(exc: BaseException) -> bool:
    """Whether a write failed because the disk (or quota) is full, through OSError or a C++ writer's RuntimeError."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # the cause chain, once round
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return True
        if not isinstance(current, OSError) and any(word in str(current) for word in _WRITE_FAILURE_WORDS):
            return True
        current = current.__cause__ or current.__context__
    return False


class DiskFullError(LexiedgeError):
    """Writing failed for want of space; whatever was being written was removed, nothing half-written is left."""

    exit_code = 1
