"""Checkpoints that a SIGKILL can never leave half-written.

Layout under ``<run>/checkpoints/``::

    step-00000150/  model.safetensors   what the task saves (all weights, or the LoRA adapter)
                    trainer_state.pt    optimizer, scaler, RNG states, step, epoch, position, history
                    meta.json           step, epoch, metrics, lexiedge version (for humans and tools)
    best/           model.safetensors + meta.json of the best evaluation so far

Each checkpoint is written in full into a hidden temp directory (every file fsynced), then renamed
into place: a rename is atomic, so a directory named ``step-*`` is always complete. ``best/`` is
swapped in two renames (old aside, new in); :func:`recover` repairs the one-instant gap a crash
between them could leave. Removal renames first, too, so a pruned checkpoint never sits half-deleted
under a valid name. ``trainer_state.pt`` holds only tensors, dicts, lists, numbers and strings and
loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

CHECKPOINTS = "checkpoints"
BEST = "best"
WEIGHTS = "model.safetensors"
TRAINER_STATE = "trainer_state.pt"
META = "meta.json"
STEP_DIR = re.compile(r"^step-(\d{8})$")
_TEMP_PREFIX = ".tmp-"
_TRASH_PREFIX = ".trash-"
_OLD_BEST = ".old-best"


def step_dir_name(step: int) -> str:
    return f"step-{step:08d}"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # directories cannot be opened on some platforms (Windows); rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def write_json_atomic(path: Path, data: Any) -> None:
    """A whole JSON file or none: temp file beside it, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_weights(path: Path, weights: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """safetensors of independent, contiguous CPU copies (tied weights would otherwise refuse to save)."""
    tensors = {name: tensor.detach().to("cpu", copy=True).contiguous() for name, tensor in weights.items()}
    save_file(tensors, str(path), metadata=metadata)


def _write_directory(root: Path, name: str, weights: dict[str, torch.Tensor], meta: dict[str, Any], state: dict | None) -> Path:
    """Everything into ``root/.tmp-<name>-*/``, fsynced; returns the temp directory."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f"{_TEMP_PREFIX}{name}-"))
    try:
        save_weights(tmp / WEIGHTS, weights, metadata={"format": "pt"})
        _fsync_file(tmp / WEIGHTS)
        if state is not None:
            with open(tmp / TRAINER_STATE, "wb") as handle:
                torch.save(state, handle)
                handle.flush()
                os.fsync(handle.fileno())
        with open(tmp / META, "w", encoding="utf-8") as handle:
            json.dump(meta, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        _fsync_dir(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def save_checkpoint(root: Path, step: int, weights: dict[str, torch.Tensor], state: dict, meta: dict[str, Any]) -> Path:
    """Write ``root/step-<step>/`` atomically and return it (an existing one of that step is replaced)."""
    final = root / step_dir_name(step)
    tmp = _write_directory(root, final.name, weights, meta, state)
    if final.exists():  # re-saving a step (a resumed run that ends where it was killed)
        _remove(final)
    os.replace(tmp, final)
    _fsync_dir(root)
    return final


def save_best(root: Path, weights: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Replace ``root/best/`` atomically: old aside, new in, old removed."""
    final = root / BEST
    tmp = _write_directory(root, BEST, weights, meta, state=None)
    aside = root / _OLD_BEST
    if aside.exists():
        shutil.rmtree(aside)
    if final.exists():
        os.replace(final, aside)
    os.replace(tmp, final)
    _fsync_dir(root)
    shutil.rmtree(aside, ignore_errors=True)
    return final


def _remove(path: Path) -> None:
    """Rename out of the valid names first, then delete: never a half-deleted ``step-*``."""
    trash = path.with_name(f"{_TRASH_PREFIX}{path.name}-{os.getpid()}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def recover(root: Path) -> None:
    """Undo what a crash mid-save left: temp and trash directories go, an orphaned old best comes back."""
    if not root.is_dir():
        return
    aside = root / _OLD_BEST
    if aside.is_dir():
        if (root / BEST).is_dir():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(aside, root / BEST)
    for path in root.iterdir():
        if path.name.startswith((_TEMP_PREFIX, _TRASH_PREFIX)):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def is_complete(path: Path) -> bool:
    return all((path / name).is_file() for name in (WEIGHTS, TRAINER_STATE, META))


def list_checkpoints(root: Path) -> list[Path]:
    """Complete periodic checkpoints, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and STEP_DIR.match(p.name) and is_complete(p)]
    return sorted(found, key=lambda p: int(STEP_DIR.match(p.name).group(1)))


def latest_checkpoint(root: Path) -> Path | None:
    checkpoints = list_checkpoints(root)
    return checkpoints[-1] if checkpoints else None


def prune(root: Path, keep_last: int) -> list[Path]:
    """Remove all but the newest ``keep_last`` periodic checkpoints; returns the removed ones."""
    old = list_checkpoints(root)[:-keep_last] if keep_last > 0 else list_checkpoints(root)
    for path in old:
        _remove(path)
    return old


def load_weights(path: Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    return load_file(str(path), device=str(device))


def load_trainer_state(checkpoint: Path) -> dict[str, Any]:
    return torch.load(checkpoint / TRAINER_STATE, map_location="cpu", weights_only=True)


def read_meta(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / META).read_text(encoding="utf-8"))
