"""LFM2-style fusion of the audio and visual token sequences.

Our reading of Liquid's LFM2 hybrid: pre-norm (RMSNorm) blocks alternating a double-gated short
convolution and grouped-query attention, each followed by a SwiGLU feed-forward. Here the sequence
is the audio tokens followed by the visual tokens, each projected to ``hidden`` and tagged with a
learned modality embedding; attention is non-causal.

A modality whose mask is 0 is taken out with tensor arithmetic only (exportable, no branching):
its tokens are zeroed before every short conv, get a large negative key bias in attention, and
carry zero weight in the pooling. Both modalities missing is not a valid input; it still gives
finite logits (the pooled vector is then zero).
"""

from __future__ import annotations

import torch
from torch import nn

from lexiedge_emotion_av.layers import RMSNorm, SelfAttention, SwiGLU, key_bias, swiglu_hidden
from lexiedge_emotion_av.settings import FusionSettings

STD_EPS = 1e-5


class GatedShortConv(nn.Module):
    """LFM2's double-gated short conv: (b, c, h) = in_proj(x); out_proj(c * conv(b * h)).

    The input gate ``b`` decides what enters the convolution, the output gate ``c`` what leaves
    it; the depthwise conv mixes ``kernel`` neighbouring tokens (centred, as attention here sees
    the whole clip anyway).
    """

    def __init__(self, dim: int, kernel: int) -> None:
        super().__init__()
        self.in_proj = nn.Linear(dim, 3 * dim, bias=False)
        self.conv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim, bias=False)
        self.out_proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        """x (B, N, dim); token_mask (B, N, 1): excluded tokens must not leak into their neighbours."""
        b, c, h = self.in_proj(x).chunk(3, dim=-1)
        gated = (b * h * token_mask).transpose(1, 2)
        return self.out_proj(c * self.conv(gated).transpose(1, 2))


class FusionBlock(nn.Module):
    """RMSNorm -> (short conv | GQA) -> residual; RMSNorm -> SwiGLU -> residual."""

    def __init__(self, settings: FusionSettings, use_attention: bool) -> None:
        super().__init__()
        dim = settings.hidden
        self.use_attention = use_attention
        self.mixer_norm = RMSNorm(dim)
        if use_attention:
            self.mixer: nn.Module = SelfAttention(
                dim, settings.heads, settings.kv_heads, rotary=False, qk_norm=True, dropout=settings.dropout
            )
        else:
            self.mixer = GatedShortConv(dim, settings.conv_kernel)
        self.ffn_norm = RMSNorm(dim)
        self.ffn = SwiGLU(dim, swiglu_hidden(dim), settings.dropout)
        self.dropout = nn.Dropout(settings.dropout)

    def forward(self, x: torch.Tensor, token_mask: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        normed = self.mixer_norm(x)
        mixed = self.mixer(normed, bias) if self.use_attention else self.mixer(normed, token_mask)
        x = x + self.dropout(mixed)
        return x + self.ffn(self.ffn_norm(x))


class LFM2Fusion(nn.Module):
    """(audio (B, Ta, audio_in), visual (B, Tv, visual_in), masks (B,)) -> (B, out) clip vector."""

    def __init__(self, settings: FusionSettings) -> None:
        super().__init__()
        self.audio_proj = nn.Linear(settings.audio_in, settings.hidden)
        self.visual_proj = nn.Linear(settings.visual_in, settings.hidden)
        # one learned vector per modality (0 = audio, 1 = visual); the encoders carry positions
        self.modality = nn.Parameter(torch.randn(2, settings.hidden) * 0.02)
        self.blocks = nn.ModuleList(
            FusionBlock(settings, use_attention=i % 2 == 1) for i in range(settings.layers)
        )
        self.out_norm = RMSNorm(settings.hidden)
        self.with_std = settings.pooling == "mean_std"
        # soft attention pooling: one score vector per modality; zeros start as the plain mean
        attention = settings.pooling == "attention"
        self.attention = nn.Parameter(torch.zeros(2, settings.hidden)) if attention else None
        self.out_proj = nn.Linear(settings.hidden * (2 if self.with_std else 1), settings.out)

    def forward(
        self, audio: torch.Tensor, visual: torch.Tensor, audio_mask: torch.Tensor, video_mask: torch.Tensor
    ) -> torch.Tensor:
        audio_tokens = self.audio_proj(audio) + self.modality[0]
        visual_tokens = self.visual_proj(visual) + self.modality[1]
        x = torch.cat([audio_tokens, visual_tokens], dim=1)
        audio_keep = audio_mask.to(x.dtype)[:, None].expand(-1, audio.shape[1])
        visual_keep = video_mask.to(x.dtype)[:, None].expand(-1, visual.shape[1])
        keep = torch.cat([audio_keep, visual_keep], dim=1)  # (B, N)
        token_mask = keep[:, :, None]
        bias = key_bias(keep, x.dtype)
        for block in self.blocks:
            x = block(x, token_mask, bias)
        x = self.out_norm(x)
        return self.out_proj(self._pool(x, audio.shape[1], audio_mask.to(x.dtype), video_mask.to(x.dtype)))

    def _pool(
        self, x: torch.Tensor, audio_tokens: int | torch.SymInt, audio_mask: torch.Tensor, video_mask: torch.Tensor
    ) -> torch.Tensor:
        """Statistics of each modality's tokens (mean, and std with ``pooling: mean_std``; the
        attention-weighted mean with ``pooling: attention``), then their mean over the modalities present.

        Pooling per modality first keeps the ~10x more numerous audio tokens from outweighing the
        frames; the denominator is clamped so that an input with no modality gives zeros, not NaN.
        """
        audio_vector = self._statistics(x[:, :audio_tokens], 0)
        visual_vector = self._statistics(x[:, audio_tokens:], 1)
        present = (audio_mask + video_mask).clamp(min=1.0)[:, None]
        return (audio_vector * audio_mask[:, None] + visual_vector * video_mask[:, None]) / present

    def _statistics(self, tokens: torch.Tensor, modality: int) -> torch.Tensor:
        if self.attention is not None:
            weights = torch.softmax(torch.matmul(tokens, self.attention[modality]), dim=1)  # (B, T)
            return (tokens * weights[:, :, None]).sum(dim=1)
        mean = tokens.mean(dim=1)
        if not self.with_std:
            return mean
        centred = tokens - mean[:, None]
        std = torch.sqrt((centred * centred).mean(dim=1) + STD_EPS)  # eps: a single frame has no spread
        return torch.cat([mean, std], dim=-1)
