"""The LiteRT converter's own Python environment, built on first use and kept under the lexiedge cache.

litert-torch (PyTorch -> .tflite) pins ``typing-extensions < 4.13``, which would downgrade pydantic and break
lexiedge's own environment. So it never enters it: the exporter saves the model as a ``torch.export``
program (.pt2, no lexiedge code needed to load it) and runs :mod:`lexiedge_litert.child` with the Python of
a virtual environment of its own, ``<cache>/venvs/litert-torch-<version>-torch-<version>/`` (the lexiedge
cache; ``$LEXIEDGE_VENVS`` puts it elsewhere). The first export builds it (one line says so and where; a few
minutes, about 2 GB: torch, litert-torch, ai-edge-quantizer and their dependencies from the package index
pip is configured for); later exports reuse it. Its torch is the version this process runs, so the saved
program loads there exactly as it was traced.

Two processes never build it at once: the build holds an exclusive lock (``fcntl.flock`` on a file beside
it; the kernel drops it however the process ends), and the one that waited finds it ready. The build goes
to a temporary folder renamed into place when complete, with a marker file written last, so an interrupted
build leaves nothing that looks usable. A failed build (offline, no index) is one line naming what to
install (:class:`~lexiedge.errors.NotAvailableError`, exit 3).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from lexiedge.cache import cache_dir
from lexiedge.errors import NotAvailableError

try:
    import fcntl
except ImportError:  # Windows: no flock; the temp-then-rename build still never leaves half a venv
    fcntl = None  # type: ignore[assignment]

CONVERTER = "litert-torch"
CONVERTER_VERSION = "0.10.0"  # tested here: litert-torch 0.10.0 -> ai-edge-litert 2.3, ai-edge-quantizer 0.10
READY = ".lexiedge-ready"  # written last: a folder without it is an interrupted build
PIP_TIMEOUT_S = 3600


def torch_requirement() -> str:
    """``torch==X.Y.Z`` of this process's torch (a local tag ``+cpu``: pip's configuration picks it)."""
    import torch

    return f"torch=={torch.__version__.split('+')[0]}"


def venvs_dir() -> Path:
    override = os.environ.get("LEXIEDGE_VENVS")
    return Path(override).expanduser() if override else cache_dir() / "venvs"


def env_dir() -> Path:
    torch_version = torch_requirement().removeprefix("torch==")
    return venvs_dir() / f"{CONVERTER}-{CONVERTER_VERSION}-torch-{torch_version}"


def python_of(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def requirements() -> list[str]:
    return [torch_requirement(), f"{CONVERTER}=={CONVERTER_VERSION}"]


def is_ready(venv: Path) -> bool:
    return (venv / READY).is_file() and python_of(venv).is_file()


def converter_python(say: Callable[[str], None]) -> Path:
    """The Python of the converter's environment, built now (under the lock) if it does not exist yet."""
    venv = env_dir()
    if is_ready(venv):
        return python_of(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(venv, say):
        if not is_ready(venv):  # another process may have built it while this one waited
            say(f"building the LiteRT converter's own environment (first use, a few minutes, ~2 GB): {venv}")
            build(venv)
    return python_of(venv)


@contextlib.contextmanager
def _build_lock(venv: Path, say: Callable[[str], None]) -> Iterator[None]:
    if fcntl is None:
        yield
        return
    with open(venv.parent / f".{venv.name}.lock", "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another process building {venv}")
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def build(venv: Path) -> None:
    """Create ``venv`` with :func:`requirements` installed: in a temporary folder, renamed into place."""
    shutil.rmtree(venv, ignore_errors=True)  # an interrupted or broken build (no READY): start again
    temp = venv.parent / f".{venv.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        _run([sys.executable, "-m", "venv", str(temp)], "create a virtual environment")
        _run(
            [
                str(python_of(temp)),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *requirements(),
            ],
            "install " + " ".join(requirements()),
        )
        # the marker goes in last: a rename of a folder without it never looks usable
        (temp / READY).write_text(" ".join(requirements()) + "\n")
        os.replace(temp, venv)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NotAvailableError(f"could not {what} for the LiteRT converter: {exc}") from None
    if done.returncode != 0:
        said = [
            line
            for line in (done.stderr or done.stdout).splitlines()
            if line.strip() and not line.startswith("WARNING:")
        ]
        last = said[-1].strip() if said else f"exit code {done.returncode}"
        raise NotAvailableError(
            f"could not {what} for the LiteRT converter ({last[:300]}); it needs "
            f"{' and '.join(requirements())} from a package index (or pip's cache): connect to one, or "
            f"build {env_dir()} yourself (`python -m venv`, `pip install {' '.join(requirements())}`, "
            f"then create the file {READY} in it)"
        )
