"""Tiny emotion-av configurations and inputs (a uniquely named module: test files import it directly)."""

from __future__ import annotations

from pathlib import Path

import torch

from lexiedge_emotion_av.settings import EmotionAVSettings

Inputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def build_tiny_settings(dropout: float = 0.0, **overrides: object) -> EmotionAVSettings:
    """Every architectural part present (GQA with kv_heads < heads, all layer kinds), at toy widths."""
    config: dict[str, object] = {
        "n_mels": 32,
        "audio": {"dim": 32, "layers": 1, "heads": 2, "ffn": 64, "conv_kernel": 7, "dropout": dropout},
        "visual": {
            "dim": 32,
            "temporal_depth": 1,
            "gscb_layers": 1,
            "attention_layers": 1,
            "heads": 2,
            "stem_channels": 8,
            "dropout": dropout,
        },
        "fusion": {
            "audio_in": 32,
            "visual_in": 32,
            "hidden": 32,
            "layers": 2,
            "out": 16,
            "heads": 4,
            "kv_heads": 2,
            "dropout": dropout,
        },
        "head": {"hidden": [16], "dropout": dropout},
    }
    config.update(overrides)
    return EmotionAVSettings.model_validate(config)


def make_inputs(
    batch: int,
    samples: int,
    frames: int,
    size: int = 32,
    *,
    seed: int = 0,
    audio_mask: list[float] | None = None,
    video_mask: list[float] | None = None,
) -> Inputs:
    """Noise audio in [-0.3, 0.3] and random [0, 1] frames, deterministic per seed."""
    generator = torch.Generator().manual_seed(seed)
    waveform = (torch.rand(batch, samples, generator=generator) * 2 - 1) * 0.3
    images = torch.rand(batch, frames, 3, size, size, generator=generator)
    audio = torch.ones(batch) if audio_mask is None else torch.tensor(audio_mask, dtype=torch.float32)
    video = torch.ones(batch) if video_mask is None else torch.tensor(video_mask, dtype=torch.float32)
    return waveform, images, audio, video


def decode_clip(
    path: Path, frames: int, size: int, sample_rate: int = 16000
) -> tuple[torch.Tensor, torch.Tensor]:
    """A real audio-video file -> (1, S) mono waveform at ``sample_rate`` and (1, frames, 3, size, size) RGB.

    Frames are taken evenly over the clip and resized whole (no face crop: that is the data plugin's job).
    """
    import av
    import cv2
    import numpy as np

    # PyAV's resampler (libswresample) mixes down to mono and converts the rate in one go
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    chunks: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
        chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    waveform = np.concatenate(chunks).astype(np.float32)
    with av.open(str(path)) as container:
        images = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    picks = np.linspace(0, len(images) - 1, frames).round().astype(int)
    resized = np.stack([cv2.resize(images[i], (size, size), interpolation=cv2.INTER_AREA) for i in picks])
    pixels = torch.from_numpy(resized).permute(0, 3, 1, 2).float() / 255.0
    return torch.from_numpy(waveform)[None], pixels[None]
