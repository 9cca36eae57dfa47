"""The compact audio-visual emotion classifier: raw waveform + face frames -> emotion logits.

``EmotionAVModel(waveform, frames, audio_mask, video_mask) -> logits (B, num_classes)``

- waveform (B, S) float32 mono audio in [-1, 1] at ``settings.sample_rate``; any S >= n_fft
  (~0.5 s or more is meaningful)
- frames (B, T, 3, H, W) float32 RGB in [0, 1]; any T >= 1, any H = W >= 32
- audio_mask, video_mask (B,) float32: 1 when the modality is present, 0 when missing; at least
  one of the two must be 1 per sample (both 0 gives finite but meaningless logits)

Written for ONNX export with dynamic batch, samples and frames: no Python branching on tensor
values, no shape-specialised code. Each sample is computed independently of the rest of its batch.
"""

from __future__ import annotations

import torch
from torch import nn

from lexiedge.errors import LexiedgeError
from lexiedge_emotion_av.audio import AudioEncoder
from lexiedge_emotion_av.fusion import LFM2Fusion
from lexiedge_emotion_av.settings import EmotionAVSettings, HeadSettings
from lexiedge_emotion_av.visual import VisualEncoder

MIN_IMAGE_SIZE = 32


class ModelInputError(LexiedgeError):
    """Inputs of the wrong rank or shape for the emotion-av model."""


class ClassifierHead(nn.Module):
    """MLP: in -> hidden[0] -> ... -> num_classes, GELU and dropout between layers."""

    def __init__(self, in_features: int, settings: HeadSettings, num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.LayerNorm(in_features)]
        width = in_features
        for hidden in settings.hidden:
            layers += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(settings.dropout)]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def reset_parameters(self) -> None:
        # Not residual: small-normal weights would shrink the signal at every layer, so the hidden
        # layers keep its variance (He init) and only the last one starts small (near-uniform output).
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        for layer in linears[:-1]:
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def check_inputs(
    waveform: torch.Tensor,
    frames: torch.Tensor,
    audio_mask: torch.Tensor,
    video_mask: torch.Tensor,
    n_fft: int,
) -> None:
    """One clear line for inputs of the wrong rank or size (eager mode only; export skips it)."""
    if waveform.dim() != 2:
        raise ModelInputError(f"waveform must be (batch, samples), got shape {tuple(waveform.shape)}")
    if frames.dim() != 5 or frames.shape[2] != 3:
        raise ModelInputError(
            f"frames must be (batch, frames, 3, height, width) RGB, got shape {tuple(frames.shape)}"
        )
    batch = waveform.shape[0]
    for name, tensor in (("frames", frames), ("audio_mask", audio_mask), ("video_mask", video_mask)):
        if tensor.shape[0] != batch:
            raise ModelInputError(f"{name} has batch {tensor.shape[0]} but waveform has batch {batch}")
    if audio_mask.dim() != 1 or video_mask.dim() != 1:
        raise ModelInputError(
            "audio_mask and video_mask must be (batch,), "
            f"got {tuple(audio_mask.shape)} and {tuple(video_mask.shape)}"
        )
    if waveform.shape[1] < n_fft:
        raise ModelInputError(
            f"waveform has {waveform.shape[1]} samples; the model needs at least n_fft = {n_fft}"
        )
    if frames.shape[1] < 1 or min(frames.shape[3], frames.shape[4]) < MIN_IMAGE_SIZE:
        raise ModelInputError(
            f"frames must hold >= 1 frame of at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} px, "
            f"got shape {tuple(frames.shape)}"
        )


class EmotionAVModel(nn.Module):
    """Audio (Conformer) + visual (GSCB CNN + temporal) encoders, LFM2-style fusion, MLP head."""

    def __init__(self, settings: EmotionAVSettings) -> None:
        super().__init__()
        self.settings = settings
        self.audio = AudioEncoder(settings)
        self.visual = VisualEncoder(settings.visual)
        self.fusion = LFM2Fusion(settings.fusion)
        self.head = ClassifierHead(settings.fusion.out, settings.head, settings.num_classes)
        self.apply(_init_weights)
        # Linears on the main signal path, outside any residual branch: small-normal weights would shrink
        # the signal, and Adam's steps (about lr in size) would then be large against them. At 0.02 the
        # fusion did not train at the profiles' rates on real speech; fan-in scaling keeps each one's scale.
        fusion = self.fusion
        for linear in (*self.audio.path_linears(), fusion.audio_proj, fusion.visual_proj, fusion.out_proj):
            init_path_linear(linear)
        self.head.reset_parameters()

    def for_teaching(self) -> EmotionAVModel:
        """This model, computing its spectra with an FFT in eval mode too: the same logits to float precision
        at about half the cost of a forward pass (the DFT conv is half of it at the cpu size). For a
        distillation teacher, whose logits no exported graph is compared with."""
        self.audio.frontend.fft_in_eval = True
        return self

    def forward(
        self,
        waveform: torch.Tensor,
        frames: torch.Tensor,
        audio_mask: torch.Tensor,
        video_mask: torch.Tensor,
        speaker_mean: torch.Tensor | None = None,
        speaker_std: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (B, num_classes). ``speaker_mean``/``speaker_std`` (B, F): with ``feature_norm: speaker``,
        the statistics of each clip's speaker (without them, the global training statistics)."""
        statistics = (speaker_mean, speaker_std)
        return self.logits_and_statistics(waveform, frames, audio_mask, video_mask, *statistics)[0]

    def logits_and_statistics(
        self,
        waveform: torch.Tensor,
        frames: torch.Tensor,
        audio_mask: torch.Tensor,
        video_mask: torch.Tensor,
        speaker_mean: torch.Tensor | None = None,
        speaker_std: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, the clip's feature statistics (B, 2, F): what a speaker-normalised graph also outputs)."""
        eager = not torch.compiler.is_compiling()
        if eager:
            check_inputs(waveform, frames, audio_mask, video_mask, self.settings.n_fft)
        audio_tokens, statistics = self.audio(waveform, speaker_mean, speaker_std)
        if eager and not bool(video_mask.any()):
            # No clip of the batch has video (a speech-only set): the fusion masks visual tokens out of
            # every convolution, attention and pooling, so their values cannot change the logits. Skipping
            # the branch saves a third of a training step; exported graphs (traced) always compute it.
            visual_tokens = frames.new_zeros(frames.shape[0], frames.shape[1], self.settings.visual.dim)
        else:
            visual_tokens = self.visual(frames)
        clip = self.fusion(audio_tokens, visual_tokens, audio_mask, video_mask)
        return self.head(clip), statistics


def init_path_linear(linear: nn.Linear) -> None:
    """Normal weights of std 1/sqrt(fan_in), zero bias: a unit-scale input gives a unit-scale output."""
    nn.init.normal_(linear.weight, std=linear.in_features**-0.5)
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)


def _init_weights(module: nn.Module) -> None:
    # small-normal Linear weights (transformer practice); convs keep PyTorch's fan-in default
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
