"""The CLI's consoles and log levels: one home for how lexiedge writes to a terminal, a pipe or a file.

A terminal gets rich as usual (colours, wrapping to its width, live progress bars). A pipe or a file (CI
logs, ``| tee``, ``> log.txt``) has no width: rich's 80-column default would cut table cells and paths with
"…", fold rules and wrap key lines mid-phrase. There, :class:`PipeAwareConsole` is as wide as a line needs
(tables at their natural width, nothing cropped), does not wrap printed text (``soft_wrap``), writes rules as
one plain line and no colour codes; rich's live displays (progress bars, spinners) print only their final
state, as rich does for any non-terminal.

Third-party chatter (transformers' "Loading weights" bars, FutureWarnings, hub and torch warnings) is
hidden unless ``--verbose``: :func:`configure` sets the libraries' own switches (``TRANSFORMERS_VERBOSITY``,
``HF_HUB_DISABLE_PROGRESS_BARS``) and Python's warning filters. ``--quiet`` silences lexiedge's own progress
lines too; errors (stderr) always show.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

from rich.console import Console, ConsoleDimensions
from rich.text import Text

#: the width of a pipe or a file: wider than any line lexiedge prints, so nothing is cut
PIPE_WIDTH = 10_000

#: libraries whose log records below ERROR are hidden unless --verbose
THIRD_PARTY_LOGGERS = (
    "transformers", "huggingface_hub", "peft", "torch", "torchaudio", "onnx", "onnxruntime", "onnxscript",
    "accelerate", "datasets", "httpx", "httpcore", "urllib3", "filelock", "matplotlib", "PIL", "numba",
)
#: modules whose UserWarnings are hidden unless --verbose (FutureWarning/DeprecationWarning: from anywhere)
THIRD_PARTY_WARNING_MODULES = r"(torch|transformers|peft|onnx|onnxruntime|onnxscript|huggingface_hub|accelerate|datasets|torchaudio|librosa|numba)(\.|$)"


class PipeAwareConsole(Console):
    """A rich Console that, when its file is not a terminal, never cuts, folds or colours a line.

    Decided at each print (the file may be redirected after the console is made); a width passed in wins,
    $COLUMNS does not (it describes a terminal, and a pipe's lines have no width to fit).
    """

    def __init__(self, *args, **kwargs) -> None:
        self._explicit_width = kwargs.get("width") is not None
        super().__init__(*args, **kwargs)

    @property
    def size(self) -> ConsoleDimensions:
        if not self._explicit_width and not self.is_terminal:
            return ConsoleDimensions(PIPE_WIDTH, self._height or 25)
        return super().size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        width, height = new_size
        self._explicit_width = True
        self._width = width
        self._height = height

    @property
    def soft_wrap(self) -> bool:
        return self._soft_wrap or not self.is_terminal

    @soft_wrap.setter
    def soft_wrap(self, value: bool) -> None:
        self._soft_wrap = value

    def rule(self, title="", *, characters: str = "─", style="rule.line", align="center") -> None:
        if self.is_terminal or not title:
            super().rule(title, characters=characters, style=style, align=align)
            return
        heading = Text.from_markup(title) if isinstance(title, str) else Text(str(title))
        self.print(Text.assemble(characters * 3 + " ", heading), soft_wrap=True, highlight=False)


def make_console(*, stderr: bool = False, **kwargs) -> PipeAwareConsole:
    return PipeAwareConsole(stderr=stderr, **kwargs)


#: what commands print (tables, progress, results)
console = make_console()
#: errors and warnings
err_console = make_console(stderr=True)

_state = {"verbose": False, "quiet": False}


def is_verbose() -> bool:
    """Whether --verbose is in effect (`lexiedge tune` shows each trial's training then)."""
    return _state["verbose"]


def output_flags() -> list[str]:
    """The global --quiet / --verbose in effect, for a lexiedge command run in a child process."""
    return ["--quiet"] * _state["quiet"] + ["--verbose"] * _state["verbose"]


def configure(*, quiet: bool = False, verbose: bool = False) -> None:
    """Apply --quiet / --verbose: lexiedge's consoles, third-party loggers, progress bars and warnings."""
    _state.update(quiet=quiet, verbose=verbose)
    # under torchrun every rank runs the command; rank 0 speaks for the run (errors still show on any rank)
    console.quiet = quiet or os.environ.get("RANK", "0") not in ("", "0")
    if verbose:
        return
    # the libraries' own switches, read when they are imported (most are imported later, lazily)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if "transformers" in sys.modules:  # already imported (a plugin did): its switches were read already
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
        except Exception:  # pragma: no cover - a transformers without these helpers
            pass
    if "huggingface_hub" in sys.modules:
        try:
            from huggingface_hub.utils import disable_progress_bars

            disable_progress_bars()
        except Exception:  # pragma: no cover
            pass
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=THIRD_PARTY_WARNING_MODULES)
