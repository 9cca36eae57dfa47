"""A run directory: the one module that knows its layout and reads it.

``lexiedge train`` writes ``runs/<profile>/<model>/<timestamp>/`` (or ``--out``)::

    profile.yaml            the resolved profile of the one model trained (written first: every later
                            stage rebuilds what was trained from the run directory alone)
    run.json                what ran and how far it got (see :class:`lexiedge.train.run_files.RunFiles`)
    history.json            one row per evaluation
    metrics.jsonl           one line per logged step and evaluation
    tb/                     the same numbers as TensorBoard events (with the tensorboard extra)
    mlruns/                 the same numbers in a local MLflow store (train.trackers with mlflow)
    test_metrics.json       the test split's metrics of the best weights (classifiers)
    run.lock                the writer's pid, held with an OS lock (:func:`run_lock`)
    checkpoints/step-NNNNNNNN/, checkpoints/best/   resumable checkpoints (:mod:`lexiedge.train.checkpoint`)
    final/model.safetensors the last weights; final/adapter/ for LoRA runs (a peft adapter)
    merged/                 ``lexiedge merge``'s output: the adapter folded into its base model

Writers (the trainer, the checkpointer, merge) and readers (export, eval, bench) take these names from
here; nothing else spells a run directory's file names. Torch-free: the CLI imports it to read a run.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lexiedge.errors import UsageError

if TYPE_CHECKING:
    from lexiedge.profile import PluginLookup, Profile

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not locked (documented in the README)
    fcntl = None  # type: ignore[assignment]

RUNS_DIR = Path("runs")
PROFILE_YAML = "profile.yaml"
RUN_JSON = "run.json"
HISTORY_JSON = "history.json"
METRICS_JSONL = "metrics.jsonl"
TEST_METRICS_JSON = "test_metrics.json"
LOCK_FILE = "run.lock"  # not a dot file: it is no temp file, and says what it is
CHECKPOINTS_DIR = "checkpoints"
BEST = "best"  # checkpoints/best: the best evaluation's checkpoint
FINAL_DIR = "final"
WEIGHTS = "model.safetensors"  # in final/ and in every checkpoint
ADAPTER = "adapter"  # final/adapter, checkpoints/best/adapter: a peft adapter directory
ADAPTER_CONFIG = "adapter_config.json"
MERGED_DIR = "merged"
TENSORBOARD_DIR = "tb"  # TensorBoard event files (when tensorboard is installed): tensorboard --logdir RUN/tb
MLFLOW_DIR = "mlruns"  # the MLflow store of a run tracked with mlflow (unless a tracking URI says elsewhere)


# --- paths ---------------------------------------------------------------------------------------

def profile_file(run_dir: Path) -> Path:
    return run_dir / PROFILE_YAML


def checkpoints_dir(run_dir: Path) -> Path:
    return run_dir / CHECKPOINTS_DIR


def best_checkpoint(run_dir: Path) -> Path:
    return run_dir / CHECKPOINTS_DIR / BEST


def final_dir(run_dir: Path) -> Path:
    return run_dir / FINAL_DIR


def final_adapter(run_dir: Path) -> Path:
    """Where a LoRA trainer saves its peft adapter at the end of a run."""
    return run_dir / FINAL_DIR / ADAPTER


def merged_dir(run_dir: Path) -> Path:
    return run_dir / MERGED_DIR


def is_merged_model(path: Path) -> bool:
    """A merged model directory (a transformers model: config.json beside the weights)."""
    return (path / "config.json").is_file()


def is_run_dir(path: Path) -> bool:
    return profile_file(path).is_file()


def find_checkpoint(run_dir: Path) -> Path | None:
    """The weights to export or evaluate: the best checkpoint if the run kept one, else the final weights."""
    for candidate in (best_checkpoint(run_dir), final_dir(run_dir)):
        if (candidate / WEIGHTS).is_file():
            return candidate
    return None


def has_mergeable_weights(run_dir: Path) -> bool:
    """An adapter-trained run: a merged model, or an adapter a model plugin's merge can fold in."""
    adapters = (final_adapter(run_dir) / ADAPTER_CONFIG, best_checkpoint(run_dir) / ADAPTER / ADAPTER_CONFIG)
    return is_merged_model(merged_dir(run_dir)) or any(marker.is_file() for marker in adapters)


# --- readers -------------------------------------------------------------------------------------

def load_run_profile(run_dir: Path, host: PluginLookup | None = None) -> tuple[Profile, str]:
    """The profile a run was trained with, and its model key (one line on a path that is no run).

    Its plugins are looked up on ``host``; ``None``: the installed plugins (``lexiedge.plugin.get_host()``).
    """
    from lexiedge.profile import load_profile

    if host is None:
        from lexiedge.plugin import get_host

        host = get_host()

    path = profile_file(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"{run_dir} is a file, not a run directory written by `lexiedge train`")
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run directory")
    if not path.is_file():
        raise UsageError(f"{run_dir}: not a lexiedge run directory (no {PROFILE_YAML})")
    profile = load_profile(path, host=host)
    (model_key,) = profile.models
    return profile, model_key


def read_run_info(run_dir: Path) -> dict[str, Any]:
    """run.json as a dict; {} when it is missing or unreadable (a run killed before writing it)."""
    return _read_json_dict(run_dir / RUN_JSON)


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    """history.json's rows (one per evaluation); [] when there is none yet."""
    path = run_dir / HISTORY_JSON
    try:
        rows = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    except (OSError, json.JSONDecodeError):
        return []
    return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []


def read_test_metrics(run_dir: Path) -> dict[str, Any]:
    return _read_json_dict(run_dir / TEST_METRICS_JSON)


def recorded_data_path(run_dir: Path) -> Path | None:
    """The data the run was trained on, as `lexiedge train` recorded it in run.json."""
    info = read_run_info(run_dir)
    for key in ("data_path", "data"):
        value = info.get(key)
        if isinstance(value, dict):
            value = value.get("path") or value.get("source")
        if isinstance(value, str) and value:
            return Path(value)
    return None


def _read_json_dict(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


# --- finding runs --------------------------------------------------------------------------------

def newest_run(profile_name: str, model_key: str, runs_dir: Path = RUNS_DIR) -> Path:
    parent = runs_dir / profile_name / model_key
    runs = sorted(p for p in parent.glob("*") if is_run_dir(p)) if parent.is_dir() else []
    if not runs:
        raise UsageError(f"no run of {model_key!r} with profile {profile_name!r} under {parent}; train one first")
    return runs[-1]


def newest_runs(runs_dir: Path = RUNS_DIR) -> dict[str, Path]:
    """The newest run of every model under ``runs_dir``, whatever its profile (``runs/<profile>/<model>/<time>``)."""
    newest: dict[str, Path] = {}
    for run in runs_dir.glob(f"*/*/*/{PROFILE_YAML}") if runs_dir.is_dir() else []:
        run_dir = run.parent
        model_key = run_dir.parent.name
        if model_key not in newest or run_dir.name > newest[model_key].name:
            newest[model_key] = run_dir
    return newest


# --- one writer ----------------------------------------------------------------------------------

@contextlib.contextmanager
def run_lock(run_dir: Path, *, enabled: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on ``run_dir`` (created if needed) while the block runs.

    ``fcntl.flock`` on ``run_dir/run.lock``: the kernel drops it when the process ends, however it ends,
    so a kill -9 never leaves a stale lock behind and nothing has to be cleaned up. The file stays
    (removing it would let a third process lock a new file while a second still holds the old one)
    and holds the holder's pid, which a refused writer names. ``enabled=False`` (torchrun ranks other
    than 0, which never write the run's files) holds nothing.
    """
    if not enabled or fcntl is None:
        yield
        return
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"{run_dir} is a file; a run needs a directory (pass another --out)")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except (NotADirectoryError, FileExistsError) as exc:
        raise UsageError(f"cannot create the run directory {run_dir}: {exc.strerror} ({exc.filename})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise UsageError(
                f"{run_dir} is being written by another lexiedge process (pid {holder}); wait for it to end "
                "or stop it: one run directory has one writer"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
