"""The `emotion-av` model plugin and its registration hook."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lexiedge.api import (
    CLIP_STATISTICS,
    MODEL_INPUTS,
    BlockStack,
    BuiltModel,
    DataSplits,
    ModelPlugin,
    PluginSettings,
    SearchParam,
)
from lexiedge.errors import UsageError
from lexiedge.plugin import hookimpl
from lexiedge_emotion_av.settings import EmotionAVSettings
from lexiedge_runtime.tasks.av_classification import (
    AUDIO_MASK,
    INPUT_NAMES,
    LABEL,
    NAME,
    SPEAKER_MEAN,
    SPEAKER_STD,
    WAVEFORM,
    ClipShape,
    example_feeds,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    import torch
    from rich.console import Console

    from lexiedge.profile import DeviceSpec, ModelEntry
    from lexiedge.registry import Registry

# RAVDESS order: emotion code EE in the file name = index + 1 (same order as lexiedge_ravdess.labels)
RAVDESS_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")

PARAMETER_GROUPS = ("audio", "visual", "fusion", "head")
STATISTICS_BATCH = 32  # training clips per batch while measuring the feature statistics

# The repeated blocks the memory plan measures at two smaller depths: (section, key, depths measured).
# Fusion blocks alternate short-conv and attention, so its stack is measured in whole pairs. The visual
# stacks are not cut: every build runs the per-frame CNN stem, which is most of the pass's time, so
# each extra build would cost more than the blocks it removes.
BLOCK_STACKS = (
    ("audio", "layers", (1, 2)),
    ("fusion", "layers", (2, 4)),
)


def class_labels(num_classes: int) -> list[str]:
    """The RAVDESS names for 8 classes; generic names for any other count."""
    if num_classes == len(RAVDESS_EMOTIONS):
        return list(RAVDESS_EMOTIONS)
    return [f"class_{index}" for index in range(num_classes)]


class EmotionAVPlugin(ModelPlugin):
    name: ClassVar[str] = "emotion-av"
    task: ClassVar[str] = NAME
    description: ClassVar[str] = (
        "compact audio-visual emotion classifier: raw 16 kHz audio (in-graph log-mel, Conformer) "
        "+ face frames (GSCB CNN, temporal attention), LFM2-style fusion, 8 RAVDESS emotions"
    )
    Settings: ClassVar[type[PluginSettings]] = EmotionAVSettings

    def build(self, settings: PluginSettings, device: DeviceSpec, *, pretrained: bool = True) -> BuiltModel:
        """A randomly initialised model on the CPU (the trainer moves it to ``device``).

        There are no published weights for this architecture, so ``pretrained`` changes nothing:
        both values build the same random initialisation (seed it with ``torch.manual_seed``).
        """
        from lexiedge_emotion_av.model import EmotionAVModel

        model_settings = _as_settings(settings)
        module = EmotionAVModel(model_settings)
        extras: dict[str, Any] = {"labels": class_labels(model_settings.num_classes)}
        if model_settings.feature_norm == "speaker":
            extras[MODEL_INPUTS] = (*INPUT_NAMES, SPEAKER_MEAN, SPEAKER_STD)
            extras[CLIP_STATISTICS] = partial(_clip_statistics, module.audio.frontend)
        return BuiltModel(module=module, extras=extras)

    def block_stacks(self, settings: PluginSettings) -> list[BlockStack]:
        """The stacks whose depth is a whole number of periods (fusion: an even number of blocks); the plan
        itself skips those no deeper than what it would measure."""
        model_settings = _as_settings(settings)
        stacks = []
        for section, key, measure_at in BLOCK_STACKS:
            if (section, key) == ("audio", "layers") and model_settings.audio.encoder != "conformer":
                continue  # the ResLSTM has no stack of blocks
            depth = getattr(getattr(model_settings, section), key)
            if depth % (measure_at[1] - measure_at[0]) == 0:
                stacks.append(BlockStack(f"{section}.{key}", depth, measure_at))
        return stacks

    def build_with_depths(self, settings: PluginSettings, device: DeviceSpec, depths: dict[str, int]) -> BuiltModel:
        model_settings = _as_settings(settings)
        sections: dict[str, dict[str, int]] = {}
        for name, depth in depths.items():
            section, key = name.split(".")
            sections.setdefault(section, {})[key] = depth
        updates = {
            section: getattr(model_settings, section).model_copy(update=keys) for section, keys in sections.items()
        }
        import torch

        # the plan reads shapes only: skip the random init (seconds for the t4-16gb visual stem)
        with torch.device("meta"):
            built = self.build(model_settings.model_copy(update=updates), device, pretrained=False)
        built.module.to_empty(device="cpu")
        return built

    def example_batch(
        self, built: BuiltModel, settings: PluginSettings, data_settings: PluginSettings, batch_size: int
    ) -> dict[str, torch.Tensor]:
        """Random inputs shaped like a collated batch of the dataset's clips (the task's example inputs, both
        modalities present), with labels; the clip is what the data settings declare (the task's contract)."""
        import numpy as np
        import torch

        model_settings = _as_settings(settings)
        clip = ClipShape.of(data_settings, "the emotion-av model's data settings")
        rng = np.random.default_rng(0)
        feeds = example_feeds(rng, batch_size, clip.clip_samples, clip.frames, clip.image_size)
        batch = {key: torch.from_numpy(value) for key, value in feeds.items()}
        batch[LABEL] = torch.from_numpy(rng.integers(0, model_settings.num_classes, batch_size))
        device = next(built.module.parameters()).device
        return {key: value.to(device) for key, value in batch.items()}

    def fit_to_data(self, built: BuiltModel, splits: DataSplits, console: Console) -> dict[str, Any] | None:
        """Global feature normalisation: the per-band log-mel mean and std of the training clips' audio.

        Clips without audio (mask 0, zeros) are left out; with ``feature_norm: utterance`` nothing is measured.
        """
        from torch.utils.data import default_collate

        settings = built.module.settings
        if settings.feature_norm == "utterance":
            return None  # (speaker: the global statistics are the fallback of clips without a profile)
        frontend = built.module.audio.frontend
        collate = splits.collate or default_collate
        clips = 0

        def audio_batches():
            nonlocal clips
            train = splits.train
            for start in range(0, len(train), STATISTICS_BATCH):
                batch = collate([train[i] for i in range(start, min(start + STATISTICS_BATCH, len(train)))])
                present = batch[AUDIO_MASK] > 0
                clips += int(present.sum())
                if present.any():
                    yield batch[WAVEFORM][present]

        summary = frontend.fit_statistics(audio_batches())
        console.print(f"emotion-av: feature normalisation measured on {clips} training clips "
                      f"({summary['frames']} feature frames)", highlight=False)
        return {"feature_norm": settings.feature_norm, "clips": clips, **summary}

    def export_onnx(self, module: torch.nn.Module, path: Path, example_inputs: Sequence[torch.Tensor], *,
                    opset: int) -> Path:
        from lexiedge_emotion_av.onnx_export import export_onnx

        waveform, frames, audio_mask, video_mask = example_inputs
        return export_onnx(module, path, (waveform, frames, audio_mask, video_mask), opset=opset)

    def search_space(self, entry: ModelEntry) -> list[SearchParam]:
        from lexiedge_emotion_av.search_space import default_space

        return default_space(entry)

    def manifest_sections(self, module: torch.nn.Module) -> dict[str, Any]:
        """``enrollment`` for a speaker-normalised model (see :mod:`lexiedge_emotion_av.onnx_export`)."""
        from lexiedge_emotion_av.onnx_export import enrollment_section, speaker_normalised

        return {"enrollment": enrollment_section(module)} if speaker_normalised(module) else {}

    def parameter_groups(self, module: torch.nn.Module) -> dict[str, int]:
        """Parameters per part: audio, visual, fusion, head (they sum to the total)."""
        return {name: sum(p.numel() for p in getattr(module, name).parameters()) for name in PARAMETER_GROUPS}


def _clip_statistics(frontend: Any, waveforms: Any) -> Any:
    """The data plugin's view of the front end: numpy waveforms (N, S) -> numpy (N, 2, F) clip statistics."""
    import numpy as np
    import torch

    device = frontend.feature_mean.device
    statistics = frontend.clip_statistics(torch.as_tensor(np.asarray(waveforms, np.float32), device=device))
    return statistics.cpu().numpy()


def _as_settings(settings: PluginSettings) -> EmotionAVSettings:
    if not isinstance(settings, EmotionAVSettings):
        raise UsageError(
            f"the emotion-av model needs EmotionAVSettings, got {type(settings).__name__} "
            "(is models.<name>.model.plugin set to emotion-av?)"
        )
    return settings


@hookimpl
def lexiedge_add_models(registry: Registry[ModelPlugin]) -> None:
    registry.add(EmotionAVPlugin)
