"""User-facing errors.

Every error a user can cause (a bad profile, an unknown plugin, a missing run) is a
:class:`LexiedgeError`: the CLI prints its message as one line and exits with its ``exit_code``,
never with a traceback. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations

import errno
import os
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
    "disk_full_problem",
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
# what C++ and Rust writers (torch.save, safetensors, onnx) put in the error they raise for a failed write:
# their own words, or the OS's ("File too large (os error 27)" from safetensors under `ulimit -f`)
_WRITE_FAILURE_WORDS = ("file write failed", "failed writing file", *(os.strerror(code) for code in DISK_FULL_ERRNOS))
# what the user is told for each: the problem (with where) and what to do
_FULL = {
    errno.ENOSPC: ("no space left on the disk of {where}", "free some space"),
    errno.EDQUOT: ("the disk quota is full for {where}", "free some space within your quota"),
    errno.EFBIG: ("a file in {where} outgrew the file size limit (ulimit -f)", "raise the limit"),
}


def describe_os_error(exc: BaseException) -> str | None:
    """One line for an environment :class:`OSError` (see ENVIRONMENT_ERRNOS), None for any other error."""
    if not isinstance(exc, OSError) or exc.errno not in ENVIRONMENT_ERRNOS:
        return None
    where = f"{exc.filename}: " if exc.filename else ""
    reason = exc.strerror or errno.errorcode.get(exc.errno or 0, "error")
    hint = {
        errno.ENOSPC: "free some space (or write elsewhere) and run the command again",
        errno.EDQUOT: "free some space within your quota and run the command again",
        errno.EFBIG: "raise the file size limit (ulimit -f) or write elsewhere",
        errno.EROFS: "write to another folder",
        errno.EACCES: "check the folder's permissions or write elsewhere",
        errno.EPERM: "check the folder's permissions or write elsewhere",
    }.get(exc.errno or 0)
    return f"{where}{reason}" + (f"; {hint}" if hint else "")


def is_disk_full(exc: BaseException) -> bool:
    """Whether a write failed because the disk (or quota, or the file size limit) is full, through an OSError
    or a C++/Rust writer's own error."""
    return _full_errno(exc) is not None


def disk_full_problem(exc: BaseException, where: object) -> tuple[str, str]:
    """For a write :func:`is_disk_full` recognises: what happened at ``where`` and what to do, as
    ("no space left on the disk of X", "free some space") or the quota's or file size limit's words."""
    problem, remedy = _FULL[_full_errno(exc) or errno.ENOSPC]
    return problem.format(where=where), remedy


def _full_errno(exc: BaseException) -> int | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # the cause chain, once round
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return current.errno
        if not isinstance(current, OSError):
            text = str(current)
            named = next((code for code in DISK_FULL_ERRNOS if os.strerror(code) in text), None)
            if named is not None or any(word in text for word in _WRITE_FAILURE_WORDS):
                return named or errno.ENOSPC  # torch's "file write failed" names no cause: most often space
        current = current.__cause__ or current.__context__
    return None


class DiskFullError(LexiedgeError):
    """Writing failed for want of space; whatever was being written was removed, nothing half-written is left."""

    exit_code = 1
