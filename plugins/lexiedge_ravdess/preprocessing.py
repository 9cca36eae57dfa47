"""RAVDESS settings -> the runtime's decoder: which options this plugin decodes with, and what artifacts record.

Decoding itself lives in the runtime distribution (:mod:`lexiedge_runtime.media`, the ``[media]``
extra), so training, evaluation and apps run one piece of code. This module only chooses its options:
the feature cache keeps ``settings.kept_seconds`` of audio (room for training's random crops), and
evaluation and inference take the centre ``settings.num_samples`` of that (dataset.py).
"""

from __future__ import annotations

from lexiedge_ravdess.settings import RavdessSettings
from lexiedge_runtime.media.spec import DecodeOptions, MediaSpec


def decode_options(settings: RavdessSettings) -> DecodeOptions:
    """What the feature cache decodes each clip with (and what keys it)."""
    return DecodeOptions(
        sample_rate=settings.sample_rate,
        clip_seconds=settings.kept_seconds,
        frames=settings.frames,
        image_size=settings.image_size,
        face_crop=settings.face_crop,
        audio=settings.use_audio,
        video=settings.use_video,
    )


def media_spec(settings: RavdessSettings) -> MediaSpec:
    """The decoding an evaluation clip goes through, as the manifest records it for ``predict_file``."""
    options = decode_options(settings)
    detector = None
    if options.face_crop and options.video:
        from lexiedge_runtime.media.faces import face_detector  # OpenCV loads only here

        detector = face_detector().name
    return MediaSpec(options, clip_samples=settings.num_samples, face_detector=detector)
