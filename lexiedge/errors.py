"""User-facing errors.

Every error a user can cause (a bad profile, an unknown plugin, a missing run) is a
:class:`LexiedgeError`: the CLI prints its message as one line and exits with its ``exit_code``,
never with a traceback. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations

from collections.abc import Iterable


class LexiedgeError(Exception):
    """An error caused by the user's input; its message is one line saying what was expected."""

    exit_code: int = 1


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


class NotAvailableError(LexiedgeError):
    """A command or option whose implementation is not installed or not possible on this machine."""

    exit_code = 3
