"""What the runtime raises. Every error an app can cause is typed and says what was expected.

Two families:

* :class:`ArtifactError` — the artifact cannot be loaded: no manifest, a manifest value of the wrong
  type or a path leaving the directory (:class:`ManifestError`), a task
  this runtime does not run, a file whose sha256 differs from the manifest or that is a symbolic
  link (:class:`ArtifactIntegrityError`), an export that failed verification
  (:class:`UnverifiedArtifactError`), a device that is not available (:class:`DeviceNotAvailableError`).
* :class:`RuntimeInputError` — one call got input it cannot run on (wrong dtype, rank, frame size,
  NaN, an empty waveform, a bad generation option, enrollment clips or a speaker profile that do not
  fit: :class:`EnrollmentError`). The runtime and the loaded model are unharmed: the app can catch it
  and go on with the next input.

Both are :class:`LexiedgeError`\\ s. That base of every user-facing lexiedge error lives here, in
the lowest layer: the toolkit's :mod:`lexiedge.errors` re-exports it, so `lexiedge infer` and
`lexiedge serve` print any of them as one line, and an app catches all of them with one ``except``.

A missing optional dependency is a :class:`MissingExtraError` naming the extra that installs it.
"""

from __future__ import annotations

from collections.abc import Sequence


class LexiedgeError(Exception):
    """An error caused by the user's input; its message is one line saying what was expected.

    ``exit_code`` is what the command line exits with (1 unless a subclass says otherwise).
    """

    exit_code: int = 1


class NotAvailableError(LexiedgeError):
    """A command or option whose implementation is not installed or not possible on this machine."""

    exit_code = 3


class MissingExtraError(NotAvailableError):
    """An optional dependency of the runtime is not installed; the message names the extra to install."""


class ArtifactError(LexiedgeError):
    """An artifact directory the runtime cannot load (names the directory and what is wrong)."""

    exit_code = 2


class ManifestError(ArtifactError):
    """A manifest value of the wrong type or range, or a path that would leave the artifact directory."""

    def __init__(self, where: str, key: str, problem: str) -> None:
        self.key = key
        super().__init__(f"{where}: manifest.json: {key}: {problem}")


class ArtifactIntegrityError(ArtifactError):
    """Files missing or changed since export: their sha256 no longer matches ``manifest.json``.

    ``problems`` holds one ``"<file>: <what>"`` line per bad file; the message names them all.
    """

    def __init__(self, artifact: str, problems: Sequence[str]) -> None:
        self.artifact = artifact
        self.problems = list(problems)
        super().__init__(
            f"{artifact}: refusing to load an artifact whose files do not match manifest.json: "
            + "; ".join(self.problems)
            + " (re-export it, or copy the artifact again)"
        )


class UnverifiedArtifactError(ArtifactError):
    """An artifact whose export verification failed (``verification.passed: false``, e.g. ``<out>.failed/``)
    or was never recorded; load it anyway only with ``allow_unverified=True``."""


class UnverifiedArtifactWarning(UserWarning):
    """Issued when an unverified artifact is loaded because the caller asked for it."""


class DeviceNotAvailableError(NotAvailableError, ArtifactError):
    """A device (execution provider) was asked for that this onnxruntime build does not offer."""

    exit_code = 3


class RuntimeInputError(LexiedgeError, ValueError):
    """Input one call cannot run on; the message says what was given and what was expected."""

    exit_code = 2


class InputDtypeError(RuntimeInputError, TypeError):
    """An array of a dtype the model does not read (or not an array at all)."""


class InputShapeError(RuntimeInputError):
    """An array of the wrong rank, channel count, frame size, or a batch size that does not match."""


class InputValueError(RuntimeInputError):
    """Values the model cannot read: NaN or infinite, out of range, empty, or a bad option value."""


class InputTooLargeError(InputValueError):
    """A file that decodes to more than the model reads: longer than ``preprocessing.max_input_seconds``,
    or video frames larger or more than the decoder's bounds (a decompression bomb, or a long recording).
    Found from the file's header before decoding, or when decoding passes the bound (a header can lie)."""


class InferenceError(RuntimeInputError):
    """ONNX Runtime refused the input although it passed the checks; names the shapes it was given."""


class EnrollmentError(RuntimeInputError):
    """Speaker enrollment refused: a model that takes no speaker profile, too few clips, a bad profile."""


class NoEnrollmentError(EnrollmentError):
    """``calibrate`` or ``speaker=`` on a model that is not normalised by its speaker (no ``enrollment``)."""


class TooFewClipsError(EnrollmentError):
    """Fewer enrollment clips than the manifest's ``enrollment.min_clips``."""


class SpeakerProfileError(EnrollmentError):
    """A speaker profile that is not one (a malformed file), or that was made with another model."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): third-party errors
    (torch.export, ONNX Runtime, ExecuTorch) run to pages, and a one-line refusal quotes only this."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
