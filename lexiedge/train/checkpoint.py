"""Checkpoints that a SIGKILL can never leave half-written.

Layout under ``<run>/checkpoints/``::

    step-00000150/  model.safetensors   what the task saves (all weights, or the LoRA adapter)
                    trainer_state.pt    optimizer, scaler, RNG states, step, epoch, position, history
                    meta.json           step, epoch, metrics, lexiedge version (for humans and tools)
                    checksums.json      sha256 of the three files above, written last
    best/           model.safetensors + meta.json + checksums.json of the best evaluation so far

Each checkpoint is written in full into a hidden temp directory (every file fsynced), then renamed
into place: a rename is atomic, so a directory named ``step-*`` is always complete. ``best/`` is
swapped in two renames (old aside, new in); :func:`recover` repairs the one-instant gap a crash
between them could leave. Removal renames first, too, so a pruned checkpoint never sits half-deleted
under a valid name. ``trainer_state.pt`` holds only tensors, dicts, lists, numbers and strings and
loads with ``torch.load(weights_only=True)``; anything else in it is refused as not a lexiedge
checkpoint (:class:`CheckpointError`), never unpickled.

Atomic writes guard against crashes, not against a disk that flips a byte or a copy that truncates
a file: :func:`latest_intact_checkpoint` checks every file against ``checksums.json`` before a
resume trusts it, skips a damaged checkpoint with a warning, and falls back to the newest intact
one. A write that fails (a full disk) leaves nothing behind and is one :class:`CheckpointError` line.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lexiedge_runtime.errors import first_line
from safetensors.torch import load_file, save_file

from lexiedge import atomic
from lexiedge.errors import DiskFullError, LexiedgeError, disk_full_problem, is_disk_full
from lexiedge.rundir import BEST, WEIGHTS
from lexiedge.runtime.artifact import sha256_file

TRAINER_STATE = "trainer_state.pt"
META = "meta.json"
CHECKSUMS = "checksums.json"
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


def save_weights(path: Path, weights: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """safetensors of independent, contiguous CPU copies (tied weights would otherwise refuse to save)."""
    tensors = {name: tensor.detach().to("cpu", copy=True).contiguous() for name, tensor in weights.items()}
    save_file(tensors, str(path), metadata=metadata)


def write_checksums(directory: Path, names: list[str]) -> None:
    """``directory/checksums.json``: the sha256 of each named file there, written after them, atomically."""
    atomic.write_json(directory / CHECKSUMS, {name: sha256_file(directory / name) for name in names}, fsync=True)


def save_final(directory: Path, weights: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """``final/model.safetensors`` replaced atomically, then its checksum; returns the weights' path.

    The old checksum goes first, so a crash in between leaves weights without a checksum (accepted
    as unverifiable, like an older run's) rather than a checksum that no longer matches them.
    """
    target = directory / WEIGHTS
    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CHECKSUMS).unlink(missing_ok=True)
        with atomic.atomic_path(target, fsync=True) as tmp:
            save_weights(tmp, weights, metadata=metadata)
        write_checksums(directory, [WEIGHTS])
    except Exception as exc:
        if is_disk_full(exc):
            problem, remedy = disk_full_problem(exc, directory)
            raise DiskFullError(
                f"{problem} while writing the final weights; the last checkpoint is intact: {remedy} and --resume"
            ) from exc
        raise
    return target


def intact_best(root: Path, warn: Callable[[str], None]) -> Path | None:
    """``best/model.safetensors`` if it matches its checksum; a damaged one is named in one ``warn`` line."""
    best = root / BEST
    if not (best / WEIGHTS).is_file():
        return None
    problems = checkpoint_problems(best)
    if problems:
        warn(f"warning: not using the damaged best checkpoint {best}: {'; '.join(problems)}")
        return None
    return best / WEIGHTS


class CheckpointError(LexiedgeError):
    """A checkpoint that cannot be read or trusted; names the file and what is wrong with it."""

    exit_code = 2


def _write_directory(root: Path, name: str, weights: dict[str, torch.Tensor], meta: dict[str, Any], state: dict | None) -> Path:
    """Everything into ``root/.tmp-<name>-*/``, fsynced, checksums last; returns the temp directory.

    A failure removes the temp directory; a full disk (an OSError, or the RuntimeError torch.save and
    safetensors raise for a failed write) becomes one :class:`DiskFullError` line.
    """
    tmp: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f"{_TEMP_PREFIX}{name}-"))
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
        write_checksums(tmp, [WEIGHTS, *([TRAINER_STATE] if state is not None else []), META])
        _fsync_dir(tmp)
    except BaseException as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, Exception) and is_disk_full(exc):
            problem, remedy = disk_full_problem(exc, root)
            raise DiskFullError(
                f"{problem} while writing checkpoint {name}: the partial checkpoint was removed and the earlier "
                f"ones are intact; {remedy} and --resume"
            ) from exc
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
    """All three files are there (``checksums.json`` is checked by :func:`checkpoint_problems`, so that a
    checkpoint without one is reported rather than silently ignored)."""
    return all((path / name).is_file() for name in (WEIGHTS, TRAINER_STATE, META))


def list_checkpoints(root: Path) -> list[Path]:
    """Complete periodic checkpoints, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and STEP_DIR.match(p.name) and is_complete(p)]
    return sorted(found, key=lambda p: int(STEP_DIR.match(p.name).group(1)))


def checkpoint_problems(checkpoint: Path) -> list[str]:
    """What is wrong with a checkpoint's files against its ``checksums.json`` (empty: intact)."""
    try:
        recorded = json.loads((checkpoint / CHECKSUMS).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [f"no {CHECKSUMS} (written by an older lexiedge, or not by lexiedge)"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return [f"{CHECKSUMS} is unreadable"]
    if not isinstance(recorded, dict) or WEIGHTS not in recorded:
        return [f"{CHECKSUMS} does not list {WEIGHTS}"]
    problems = []
    for name, expected in sorted(recorded.items()):
        if "/" in name or name in ("", ".", ".."):  # names only files of this directory
            problems.append(f"{CHECKSUMS} names {name!r}, which is not a file of the checkpoint")
            continue
        path = checkpoint / name
        try:
            actual = sha256_file(path)
        except OSError:
            problems.append(f"{name}: missing or unreadable")
            continue
        if actual != expected:
            problems.append(f"{name}: sha256 mismatch (the file changed since it was written)")
    return problems


def latest_intact_checkpoint(root: Path, warn: Callable[[str], None]) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint whose files match their checksums, and its loaded trainer state.

    A damaged one (a flipped byte, a truncated file, a missing checksum) is skipped with one ``warn``
    line (plain text) naming it and why, and the next older one is tried. A checkpoint whose checksums match but
    whose trainer state holds Python objects was written to look like ours: that is refused outright
    (:class:`CheckpointError`), not skipped. None when no checkpoint is intact.
    """
    for checkpoint in reversed(list_checkpoints(root)):
        problems = checkpoint_problems(checkpoint)
        if not problems:
            try:
                return checkpoint, load_trainer_state(checkpoint)
            except UnreadableCheckpointError as exc:
                problems = [str(exc)]
        warn(f"warning: skipping the damaged checkpoint {checkpoint}: {'; '.join(problems)}")
    return None


def prune(root: Path, keep_last: int) -> list[Path]:
    """Remove all but the newest ``keep_last`` periodic checkpoints; returns the removed ones."""
    old = list_checkpoints(root)[:-keep_last] if keep_last > 0 else list_checkpoints(root)
    for path in old:
        _remove(path)
    return old


class UnreadableCheckpointError(CheckpointError):
    """A file that fails to load although nothing says it was tampered with (truncated, another format)."""


def load_weights(path: Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device=str(device))
    except OSError:
        raise
    except Exception as exc:  # safetensors' SafetensorError: a truncated or foreign file
        first = first_line(exc)
        raise UnreadableCheckpointError(f"{path}: not a readable safetensors file ({first})") from None


def load_trainer_state(checkpoint: Path) -> dict[str, Any]:
    """``trainer_state.pt`` through ``torch.load(weights_only=True)``: plain data only, never code.

    torch's refusal of anything else is a 60-line UnpicklingError that suggests weights_only=False;
    here it is one line saying the file is not a lexiedge checkpoint.
    """
    path = checkpoint / TRAINER_STATE
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path} is not a lexiedge checkpoint: it holds Python objects other than tensors and plain data, "
            "which lexiedge never writes and never loads; refusing it"
        ) from None
    except OSError:
        raise
    except Exception as exc:  # a truncated zip, EOF, a file from another program
        first = first_line(exc)
        raise UnreadableCheckpointError(f"{path}: unreadable ({first[:200]})") from None
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"{path} is not a lexiedge checkpoint (no training state in it); refusing it")
    return state
