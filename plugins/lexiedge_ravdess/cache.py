"""The on-disk feature cache: every clip is decoded once, then read back memory-mapped.

Layout: ``<cache_dir>/ravdess-features/<options digest>/<file key>.{json,audio.npy,video.npy}``.
The options digest covers every preprocessing setting (and the face detector in use), so changing one
misses the cache; the file key covers the source path, size and mtime, so an edited file is decoded
again. Each file is written to a temp name and renamed; the ``.json`` is written last and is the
commit marker, so a preprocessing run killed halfway leaves only entries that are whole or absent.
An entry damaged since (a truncated or overwritten ``.npy``: its header unreadable, or its size not
the one its header promises) is decoded again, like a missing one.
A clip that failed to decode is cached as a failure too: the next run reports it without retrying.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lexiedge import atomic
from lexiedge_ravdess.labels import ClipName
from lexiedge_runtime.media.decode import DecodedClip, DecodeError, DecodeOptions, decode_clip
from lexiedge_runtime.media.faces import face_detector

CACHE_VERSION = 3  # bump when decoding changes in a way the options do not show
MIN_CLIPS_PER_WORKER = 8  # below this, starting worker processes costs more than it saves


@dataclass
class CacheStats:
    """What one build did: ``decoded`` counts calls of the decoder (zero on a warm cache)."""

    hits: int = 0
    misses: int = 0  # damaged entries included
    damaged: int = 0
    decoded: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "damaged": self.damaged, "decoded": self.decoded,
                "failed": self.failed}


@dataclass(frozen=True)
class CachedClip:
    """A decoded clip on disk; ``audio``/``video`` are None when the clip has no such stream."""

    clip: ClipName
    audio: Path | None
    video: Path | None
    face_found: bool | None


@dataclass(frozen=True)
class FailedClip:
    clip: ClipName
    reason: str


def file_key(path: Path) -> str:
    """Identity of a source file's content without reading it: resolved path, size, mtime."""
    stat = path.stat()
    text = f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def options_digest(options: DecodeOptions) -> str:
    described: dict[str, Any] = {"version": CACHE_VERSION, **options.as_dict()}
    if options.face_crop and options.video:
        described["face_detector"] = face_detector().name
    text = json.dumps(described, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class FeatureCache:
    """Decoded features of RAVDESS clips for one set of preprocessing options."""

    def __init__(self, cache_dir: Path, options: DecodeOptions) -> None:
        self.options = options
        self.directory = Path(cache_dir) / "ravdess-features" / options_digest(options)
        self.stats = CacheStats()

    def build(
        self,
        clips: Sequence[ClipName],
        *,
        workers: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[list[CachedClip], list[FailedClip]]:
        """Decode the clips not cached yet (in worker processes when many); return every clip's entry."""
        self.directory.mkdir(parents=True, exist_ok=True)
        keys = {clip: file_key(clip.path) for clip in clips}
        metas: dict[ClipName, dict[str, Any]] = {}
        missing: list[ClipName] = []
        for clip in clips:
            meta = self._lookup(keys[clip])
            if meta is None:
                missing.append(clip)
            else:
                metas[clip] = meta
        self.stats.hits += len(metas)
        self.stats.misses += len(missing)
        for clip, meta in self._decode_all(missing, keys, workers, progress):
            metas[clip] = meta
            self.stats.decoded += 1
        cached: list[CachedClip] = []
        failed: list[FailedClip] = []
        for clip in clips:
            meta = metas[clip]
            if meta["ok"]:
                cached.append(self._entry(clip, meta))
            else:
                failed.append(FailedClip(clip, meta["error"]))
        self.stats.failed += len(failed)
        return cached, failed

    def _lookup(self, key: str) -> dict[str, Any] | None:
        """The committed entry for ``key``, or None when absent or incomplete."""
        try:
            meta = json.loads((self.directory / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict):
            return None
        for name in ("audio", "video"):
            if meta.get(name) and not (self.directory / meta[name]).is_file():
                return None
            if meta.get(name) and not whole_npy(self.directory / meta[name]):
                self.stats.damaged += 1
                return None
        return meta

    def _entry(self, clip: ClipName, meta: dict[str, Any]) -> CachedClip:
        audio = self.directory / meta["audio"] if meta.get("audio") else None
        video = self.directory / meta["video"] if meta.get("video") else None
        return CachedClip(clip, audio, video, meta.get("face_found"))

    def _decode_all(
        self,
        clips: list[ClipName],
        keys: dict[ClipName, str],
        workers: int | None,
        progress: Callable[[int, int], None] | None,
    ):
        if workers is None:
            workers = min(os.cpu_count() or 1, 8, len(clips) // MIN_CLIPS_PER_WORKER) if _can_spawn() else 0
        jobs = [(self.directory, keys[clip], clip.path, self.options) for clip in clips]
        done = 0
        if workers > 1:
            # spawn, not fork: the parent may hold torch threads and an open PyAV state that fork would copy.
            context = multiprocessing.get_context("spawn")
            try:
                with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                    for clip, meta in zip(clips, pool.map(decode_and_store, jobs, chunksize=4)):
                        done += 1
                        if progress:
                            progress(done, len(clips))
                        yield clip, meta
                return
            except BrokenProcessPool:
                pass  # a worker died (a crashing codec); finish in this process below
        for clip, job in list(zip(clips, jobs))[done:]:
            meta = decode_and_store(job)
            done += 1
            if progress:
                progress(done, len(clips))
            yield clip, meta


def _can_spawn() -> bool:
    """Spawned workers re-import the parent's main script; a script read from stdin cannot be re-imported."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return main_file is None or os.path.exists(main_file)


def decode_and_store(job: tuple[Path, str, Path, DecodeOptions]) -> dict[str, Any]:
    """Decode one clip and commit its cache entry; a top-level function so worker processes can run it."""
    directory, key, path, options = job
    meta: dict[str, Any] = {"source": str(path), "ok": True, "audio": None, "video": None, "face_found": None}
    try:
        decoded: DecodedClip = decode_clip(path, options)
    except DecodeError as exc:
        meta.update(ok=False, error=str(exc))
    except Exception as exc:  # an unforeseen failure in a codec binding must not stop a whole run either
        meta.update(ok=False, error=f"unexpected {type(exc).__name__}: {exc}".splitlines()[0])
    else:
        if decoded.waveform is not None:
            meta["audio"] = f"{key}.audio.npy"
            _save_npy(directory / meta["audio"], decoded.waveform.astype(np.float32, copy=False))
        if decoded.frames is not None:
            meta["video"] = f"{key}.video.npy"
            _save_npy(directory / meta["video"], decoded.frames)
            meta["face_found"] = decoded.face_found
    atomic.write_bytes(directory / f"{key}.json", json.dumps(meta).encode())
    return meta


_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def whole_npy(path: Path) -> bool:
    """Whether ``path`` is a whole ``.npy`` of plain numbers: a readable header, and exactly the bytes of
    data it promises (a truncated file, or one cut and rewritten, fails). Reads the header only."""
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = _HEADER_READERS.get(version)
            if read_header is None:  # np.save writes 1.0 (2.0 for huge headers); anything else is not ours
                return False
            shape, _, dtype = read_header(handle)
            data_start = handle.tell()
    except (OSError, ValueError, EOFError, SyntaxError):
        return False
    if dtype.hasobject:
        return False
    return path.stat().st_size == data_start + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def read_audio(entry: CachedClip) -> np.ndarray | None:
    return np.load(entry.audio, mmap_mode="r") if entry.audio is not None else None


def read_video(entry: CachedClip) -> np.ndarray | None:
    return np.load(entry.video, mmap_mode="r") if entry.video is not None else None


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.ascontiguousarray(array))
