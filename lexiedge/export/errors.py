"""The errors of the export stage (optimum's ``ShapeError``/``AtolError`` are the model): each names the
target, the output, what was measured against which threshold and where the rejected artifact is."""

from __future__ import annotations

from pathlib import Path

from lexiedge.errors import LexiedgeError


class ExportError(LexiedgeError):
    """An export that could not be produced (a converter failed, a model cannot be traced, ...)."""


class VerificationError(ExportError):
    """An artifact whose outputs do not match the source model's (optimum's ValidationError).

    The message names the target, the output, what was measured against which threshold, and the
    directory where the rejected artifact was kept (set by :func:`lexiedge.export.run.export_run` once
    it is moved).
    """

    kind = "verification failed"

    def __init__(self, target: str, output: str, detail: str, *, saved_path: Path | None = None) -> None:
        self.target = target
        self.output = output
        self.detail = detail
        self.saved_path = saved_path
        super().__init__(self._message())

    @property
    def reason(self) -> str:
        """What failed, without the target and the saved path (the manifest's ``verification.failure``)."""
        return f"{self.kind} for output {self.output!r}: {self.detail}"

    def _message(self) -> str:
        where = f"; the rejected artifact is in {self.saved_path}" if self.saved_path else ""
        return f"{self.target} export: {self.reason}{where}"

    def __str__(self) -> str:  # saved_path is set after construction
        return self._message()


class ShapeError(VerificationError):
    """The artifact fails (or returns the wrong shape) at input shapes other than the trace's."""

    kind = "shape check failed"


class AtolError(VerificationError):
    """An output differs from the source model's by more than the target's tolerance."""

    kind = "values differ"


class AgreementError(VerificationError):
    """Top-1 (classifier) or greedy-token (LLM) agreement below the target's threshold."""

    kind = "agreement too low"
