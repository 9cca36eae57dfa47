"""Settings of the `emotion-av` model plugin: the `models.<name>.model` section of a profile.

The defaults are the small seed column (rtx3050-4gb); profiles set every size explicitly. Every
section forbids unknown keys (it is a :class:`PluginSettings`), so a misspelt key fails at load time.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from lexiedge.api import PluginSettings


def _check_heads(section: str, dim: int, heads: int, dim_name: str = "dim") -> None:
    if dim % heads:
        raise ValueError(f"{section}.{dim_name} ({dim}) must be divisible by {section}.heads ({heads})")
    if (dim // heads) % 2:
        raise ValueError(
            f"{section}.{dim_name} / {section}.heads = {dim // heads} must be even "
            "(rotary positions rotate channel pairs)"
        )


class AudioSettings(PluginSettings):
    """The audio branch: conv subsampling + Conformer blocks over the features, or ResLSTM-SA's LSTMs."""

    encoder: Literal["conformer", "reslstm"] = Field(
        "conformer",
        description=(
            "conformer: a conv stem subsampling time, then Conformer blocks (the keys below); reslstm: "
            "ResLSTM-SA's sequence model (Krasnoproshin & Vashkevich 2026): an LSTM as wide as the features "
            "whose output is added to its input, BatchNorm, then an LSTM of width dim, one token per feature "
            "frame (layers, heads, ffn, conv_kernel, subsampling and the stem keys do not apply)"
        ),
    )
    dim: int = Field(128, ge=8, description="Conformer width (128 rtx3050, 512 t4), or the second LSTM's")
    layers: int = Field(4, ge=1, description="Conformer blocks")
    heads: int = Field(4, ge=1, description="attention heads; dim must be divisible by heads")
    ffn: int = Field(512, ge=8, description="hidden size of each (macaron, half-step) feed-forward")
    conv_kernel: int = Field(
        15, ge=3, description="depthwise conv kernel in time (odd); 15 tokens = 0.6 s at 4x"
    )
    subsampling: Literal[2, 4, 8] = Field(4, description="time reduction of the stem (2 per block or conv)")
    stem: Literal["vgg", "strided"] = Field(
        "strided",
        description=(
            "strided: ESPnet's two stride-2 convs with every band flattened into one Linear (on real speech, "
            "actors 1-12 -> 13-16, cpu sizes: val UAR 0.508 vs 0.406 for vgg with the same recipe); "
            "vgg: 3x3 conv + BatchNorm + max-pool blocks, mean over the mel bands (shift-invariant in frequency)"
        ),
    )
    stem_channels: list[int] = Field(
        default_factory=lambda: [16, 32, 64, 64],
        min_length=1,
        description="vgg stem: channels of each block; the first log2(subsampling) blocks also halve time",
    )
    dropout: float = Field(0.1, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check(self) -> AudioSettings:
        _check_heads("audio", self.dim, self.heads)
        if self.stem == "vgg" and len(self.stem_channels) < math.log2(self.subsampling):
            raise ValueError(
                f"audio.stem_channels has {len(self.stem_channels)} blocks; subsampling {self.subsampling} needs "
                f"at least {int(math.log2(self.subsampling))} (each halves time once)"
            )
        if any(width < 1 for width in self.stem_channels):
            raise ValueError(f"audio.stem_channels must be positive, got {self.stem_channels}")
        if self.conv_kernel % 2 == 0:
            raise ValueError(f"audio.conv_kernel ({self.conv_kernel}) must be odd (centred 'same' padding)")
        return self


class VisualSettings(PluginSettings):
    """The visual branch: per-frame CNN stem + GSCB blocks, then temporal layers over frames."""

    dim: int = Field(128, ge=8, description="channels after the stem = width of the frame tokens")
    temporal_depth: int = Field(2, ge=0, description="temporal conv/MLP blocks over the frame sequence")
    gscb_layers: int = Field(1, ge=0, description="gated spatial-channel conv blocks per frame")
    attention_layers: int = Field(1, ge=0, description="self-attention layers over the frame sequence")
    heads: int = Field(4, ge=1, description="attention heads; dim must be divisible by heads")
    stem_channels: int = Field(32, ge=4, description="channels of the first (stride-2) stem conv")
    dropout: float = Field(0.1, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check(self) -> VisualSettings:
        _check_heads("visual", self.dim, self.heads)
        return self


class FusionSettings(PluginSettings):
    """LFM2-style fusion: alternating double-gated short-conv and GQA blocks over audio+visual tokens."""

    audio_in: int = Field(128, ge=8, description="width of the audio tokens (must equal audio.dim)")
    visual_in: int = Field(128, ge=8, description="width of the visual tokens (must equal visual.dim)")
    hidden: int = Field(256, ge=8, description="width of the fused sequence")
    layers: int = Field(
        2, ge=0, description="blocks, alternating conv, attention, conv, ...; 0: project and pool only"
    )
    out: int = Field(128, ge=1, description="width of the pooled clip vector given to the head")
    heads: int = Field(4, ge=1, description="query heads; hidden must be divisible by heads")
    kv_heads: int = Field(2, ge=1, description="key/value heads (grouped-query attention); must divide heads")
    conv_kernel: int = Field(3, ge=1, description="short depthwise conv kernel (odd, centred: non-causal)")
    pooling: Literal["mean", "mean_std", "attention"] = Field(
        "mean",
        description=(
            "how each modality's tokens become one vector: their mean, their mean and standard deviation "
            "(statistics pooling, as in x-vectors: how much a clip varies over time is a cue of emotion), or "
            "attention (soft attention: a learned score per token, softmax over the clip, the weighted mean; "
            "Mirsamadi et al. 2017, ResLSTM-SA)"
        ),
    )
    dropout: float = Field(0.1, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check(self) -> FusionSettings:
        _check_heads("fusion", self.hidden, self.heads, dim_name="hidden")
        if self.heads % self.kv_heads:
            raise ValueError(f"fusion.kv_heads ({self.kv_heads}) must divide fusion.heads ({self.heads})")
        if self.conv_kernel % 2 == 0:
            raise ValueError(f"fusion.conv_kernel ({self.conv_kernel}) must be odd (centred 'same' padding)")
        return self


class SpecAugmentSettings(PluginSettings):
    """SpecAugment's masking of the log-mel features while training (never at inference)."""

    freq_masks: int = Field(2, ge=0, description="frequency masks per clip")
    freq_width: float = Field(0.15, ge=0.0, le=1.0, description="largest share of the mel bands one mask covers")
    time_masks: int = Field(2, ge=0, description="time masks per clip")
    time_width: float = Field(0.1, ge=0.0, le=1.0, description="largest share of the frames one mask covers")


class HeadSettings(PluginSettings):
    """The classifier MLP on the pooled clip vector."""

    hidden: list[int] = Field(
        default_factory=lambda: [128, 64], description="hidden layer widths (may be empty)"
    )
    dropout: float = Field(0.1, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check(self) -> HeadSettings:
        if any(width < 1 for width in self.hidden):
            raise ValueError(f"head.hidden widths must be >= 1, got {self.hidden}")
        return self


class EmotionAVSettings(PluginSettings):
    """The whole audio-visual classifier. The log-mel front end runs inside the model (raw audio in)."""

    sample_rate: int = Field(
        16000, ge=4000, description="waveform rate the model expects (the data resamples)"
    )
    n_fft: int = Field(400, ge=16, description="STFT window in samples (400 = 25 ms at 16 kHz)")
    hop_length: int = Field(160, ge=1, description="STFT hop in samples (160 = 10 ms at 16 kHz)")
    n_mels: int = Field(64, ge=8, description="mel bands")
    features: Literal["log_mel", "mfcc_chroma"] = Field(
        "log_mel",
        description=(
            "log_mel: n_mels log mel-band energies per frame; mfcc_chroma: n_mfcc MFCCs of those bands and "
            "n_chroma pitch-class energies (ResLSTM-SA's 34 + 12, there from 85 ms frames: n_fft 1360, "
            "hop 680 at 16 kHz)"
        ),
    )
    n_mfcc: int = Field(34, ge=1, description="features: mfcc_chroma: MFCCs kept (at most n_mels)")
    n_chroma: int = Field(12, ge=1, description="features: mfcc_chroma: pitch classes per octave")
    feature_norm: Literal["global", "utterance", "speaker"] = Field(
        "global",
        description=(
            "global: per-feature mean/std measured on the training clips before training and saved with the "
            "weights (keeps loudness and spectral tilt); utterance: each clip's own per-feature statistics; "
            "speaker: the statistics of the clip's speaker's enrollment clips (data.enrollment), which the "
            "exported graph takes as optional inputs speaker_mean/speaker_std (default: the global ones) and "
            "computes from any clip as its feature_stats output"
        ),
    )
    spec_augment: SpecAugmentSettings | None = Field(
        default_factory=SpecAugmentSettings, description="time/frequency masking while training; null: off"
    )
    audio: AudioSettings = Field(default_factory=AudioSettings)
    visual: VisualSettings = Field(default_factory=VisualSettings)
    fusion: FusionSettings = Field(default_factory=FusionSettings)
    head: HeadSettings = Field(default_factory=HeadSettings)
    num_classes: int = Field(8, ge=2, description="emotions; 8 in RAVDESS order")

    @model_validator(mode="after")
    def _check(self) -> EmotionAVSettings:
        if self.hop_length > self.n_fft:
            raise ValueError(f"hop_length ({self.hop_length}) must be <= n_fft ({self.n_fft})")
        if self.n_mels > self.n_fft // 2 + 1:
            raise ValueError(
                f"n_mels ({self.n_mels}) must be <= n_fft // 2 + 1 ({self.n_fft // 2 + 1} STFT bins)"
            )
        if self.features == "mfcc_chroma" and self.n_mfcc > self.n_mels:
            raise ValueError(
                f"n_mfcc ({self.n_mfcc}) must be <= n_mels ({self.n_mels}): MFCCs are the DCT of the bands"
            )
        if self.fusion.audio_in != self.audio.dim:
            raise ValueError(
                f"fusion.audio_in ({self.fusion.audio_in}) must equal audio.dim ({self.audio.dim}): "
                "the fusion projects the audio encoder's tokens"
            )
        if self.fusion.visual_in != self.visual.dim:
            raise ValueError(
                f"fusion.visual_in ({self.fusion.visual_in}) must equal visual.dim ({self.visual.dim}): "
                "the fusion projects the visual encoder's tokens"
            )
        return self
