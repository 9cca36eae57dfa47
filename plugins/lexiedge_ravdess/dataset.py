"""Torch datasets over RAVDESS clips, and the collate function that builds the contract batch.

Batch (the av-classification task's contract, :mod:`lexiedge_runtime.tasks.av_classification`):
``waveform`` float32 (B, S), ``frames`` float32 (B, T, 3, H, W) in [0, 1], ``audio_mask``/``video_mask``
float32 (B,), ``label`` int64 (B,). A missing stream (an audio-only wav, a
video-only mp4, or a modality the settings drop) is zeros with mask 0, so every batch has one shape.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from lexiedge_ravdess.cache import CachedClip, read_audio, read_video
from lexiedge_ravdess.enrollment import SpeakerStatistics
from lexiedge_ravdess.labels import ClipName
from lexiedge_ravdess.preprocessing import decode_options
from lexiedge_ravdess.settings import RavdessSettings
from lexiedge_runtime.inputs import scale_frames
from lexiedge_runtime.media.decode import centre_fit, decode_clip
from lexiedge_runtime.tasks.av_classification import (
    AUDIO_MASK,
    FRAMES,
    INPUT_NAMES,
    LABEL,
    SPEAKER_MEAN,
    SPEAKER_STD,
    VIDEO_MASK,
    WAVEFORM,
)

Item = dict[str, torch.Tensor]
BATCH_KEYS = (*INPUT_NAMES, LABEL)  # the av-classification task's batch contract
# with data.enrollment and a model that reads them: the clip's speaker's feature statistics, (F,) each
SPEAKER_KEYS = (SPEAKER_MEAN, SPEAKER_STD)


def make_item(
    label: int, waveform: np.ndarray | None, frames: np.ndarray | None, settings: RavdessSettings
) -> Item:
    """One example from decoded arrays (``frames`` uint8 (T, 3, H, W)); fills and masks what is missing."""
    size, count = settings.image_size, settings.frames
    if waveform is not None and settings.use_audio:
        audio = torch.from_numpy(np.array(centre_fit(waveform, settings.num_samples), dtype=np.float32))
        audio_mask = 1.0
    else:
        audio, audio_mask = torch.zeros(settings.num_samples), 0.0
    if frames is not None and settings.use_video:
        # uint8 on disk (4x smaller than float, and exact: the source is 8-bit); scaled here by the runtime's
        # own normalisation (numpy, so a DataLoader in the main process does not wake torch's thread pool).
        video = torch.from_numpy(scale_frames(frames))
        video_mask = 1.0
    else:
        video, video_mask = torch.zeros(count, 3, size, size), 0.0
    return {
        WAVEFORM: audio,
        FRAMES: video,
        AUDIO_MASK: torch.tensor(audio_mask, dtype=torch.float32),
        VIDEO_MASK: torch.tensor(video_mask, dtype=torch.float32),
        LABEL: torch.tensor(label, dtype=torch.int64),
    }


def change_speed(waveform: np.ndarray, factor: float) -> np.ndarray:
    """The clip played ``factor`` times faster (pitch up with it), band-limited: scipy's polyphase resampler."""
    if factor == 1.0:
        return waveform
    from fractions import Fraction

    from scipy.signal import resample_poly

    ratio = Fraction(factor).limit_denominator(50)  # 1.1 -> 11/10: keep 10 samples of every 11
    return resample_poly(np.asarray(waveform, dtype=np.float32), ratio.denominator, ratio.numerator).astype(np.float32)


def collate_batch(items: Sequence[Item]) -> dict[str, torch.Tensor]:
    """Stack examples into the contract batch dict (a module-level function: DataLoader workers pickle it).

    Stacked with numpy: torch.stack wakes torch's intra-op thread pool for every key, which costs more
    than the copy itself when the loader runs in the training process on a busy CPU.
    """
    keys = BATCH_KEYS + tuple(key for key in SPEAKER_KEYS if key in items[0])
    return {key: torch.from_numpy(np.stack([item[key].numpy() for item in items])) for key in keys}


class ClipDataset(Dataset):
    """Examples of one split; subclasses say where the decoded arrays come from.

    ``train`` (the training split) turns on the augmentations the settings ask for, drawn from torch's
    generator (seeded by the trainer, so a run is repeatable): ``speed_perturb`` plays the audio at a
    random listed speed, ``random_crop`` takes a random ``clip_seconds`` window of the stored audio.
    Other splits (and inference) read the centre window, unchanged.
    """

    def __init__(self, clips: Sequence[ClipName], settings: RavdessSettings, *, train: bool = False) -> None:
        self.clips = list(clips)
        self.settings = settings
        self.train = train
        # per clip, set by the loader (data.enrollment, a model that reads them)
        self.speaker_statistics: list[SpeakerStatistics] | None = None

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def labels(self) -> list[int]:
        """Label of every example, in order (for class weights, samplers and confusion matrices)."""
        return [clip.emotion for clip in self.clips]

    def __getitem__(self, index: int) -> Item:
        waveform, frames = self._arrays(index)
        if self.train and waveform is not None and self.settings.speed_perturb:
            factors = self.settings.speed_perturb
            waveform = change_speed(waveform, factors[int(torch.randint(0, len(factors), ()))])
        if (self.train and self.settings.random_crop and waveform is not None
                and waveform.shape[0] > self.settings.num_samples):
            start = int(torch.randint(0, waveform.shape[0] - self.settings.num_samples + 1, ()))
            waveform = waveform[start : start + self.settings.num_samples]
        item = make_item(self.clips[index].emotion, waveform, frames, self.settings)
        if self.speaker_statistics is not None:
            speaker = self.speaker_statistics[index]
            item[SPEAKER_MEAN] = torch.from_numpy(speaker.mean)
            item[SPEAKER_STD] = torch.from_numpy(speaker.std)
        return item

    @abstractmethod
    def _arrays(self, index: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(waveform (N,) float32 or None, frames (T, 3, H, W) uint8 or None) of example ``index``."""


class CachedClipDataset(ClipDataset):
    """Reads memory-mapped arrays from the feature cache: no decoding in any epoch."""

    def __init__(self, entries: Sequence[CachedClip], settings: RavdessSettings, *, train: bool = False) -> None:
        super().__init__([entry.clip for entry in entries], settings, train=train)
        self.entries = list(entries)
        # Maps opened once per process (each DataLoader worker opens its own): parsing a .npy header costs
        # more than reading a clip's pages. Maps hold no file descriptors and only the pages read.
        self._opened: dict[int, tuple[np.ndarray | None, np.ndarray | None]] = {}

    def _arrays(self, index: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        if index not in self._opened:
            entry = self.entries[index]
            self._opened[index] = (read_audio(entry), read_video(entry))
        return self._opened[index]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_opened": {}}  # workers map the files themselves


class DecodingClipDataset(ClipDataset):
    """Decodes each clip whenever it is read: what a loader without the cache does (the benchmark's baseline).

    A clip that fails to decode raises here; use the cached dataset for training.
    """

    def _arrays(self, index: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        decoded = decode_clip(self.clips[index].path, decode_options(self.settings))
        return decoded.waveform, decoded.frames
