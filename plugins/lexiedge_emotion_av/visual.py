"""The visual branch: a per-frame CNN (stem + GSCB blocks) pooled to one token per frame, then
temporal blocks and self-attention over the frame sequence.

Frames are processed as one (B*T, 3, H, W) image batch. Norms are GroupNorm(1, C) per image and
LayerNorm per token, never BatchNorm, so a frame's features do not depend on the rest of the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lexiedge_emotion_av.layers import FeedForward, TransformerBlock
from lexiedge_emotion_av.settings import VisualSettings

# ImageNet statistics: faces in RGB [0, 1] are brought near zero mean / unit variance in the graph,
# so every runtime feeds plain [0, 1] pixels.
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
TEMPORAL_KERNEL = 3  # frames mixed by each temporal depthwise conv


def conv_norm_act(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.GroupNorm(1, out_channels),
        nn.GELU(),
    )


class GSCB(nn.Module):
    """Gated spatial-channel convolution block.

    Our reading of the seeds' "GSCB": a depthwise-separable conv, whose output is re-weighted by a
    channel gate (squeeze-excitation: which feature maps matter) and a spatial gate (a 7x7 conv over
    the channel mean and max: where in the face to look), added back to the input.
    """

    def __init__(self, dim: int, dropout: float, reduction: int = 4, spatial_kernel: int = 7) -> None:
        super().__init__()
        squeezed = max(dim // reduction, 8)
        self.norm = nn.GroupNorm(1, dim)
        self.depthwise = nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim)
        self.pointwise = nn.Conv2d(dim, dim, kernel_size=1)
        self.activation = nn.GELU()
        self.channel_squeeze = nn.Conv2d(dim, squeezed, kernel_size=1)
        self.channel_excite = nn.Conv2d(squeezed, dim, kernel_size=1)
        self.spatial = nn.Conv2d(2, 1, kernel_size=spatial_kernel, padding=spatial_kernel // 2)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.activation(self.pointwise(self.depthwise(self.norm(x))))
        channel_gate = torch.sigmoid(
            self.channel_excite(F.gelu(self.channel_squeeze(y.mean(dim=(2, 3), keepdim=True))))
        )
        y = y * channel_gate
        summary = torch.cat([y.mean(dim=1, keepdim=True), y.amax(dim=1, keepdim=True)], dim=1)
        spatial_gate = torch.sigmoid(self.spatial(summary))
        return x + self.dropout(y * spatial_gate)


class TemporalBlock(nn.Module):
    """Depthwise conv over neighbouring frames, then a token MLP (both pre-norm, residual)."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.conv_norm = nn.LayerNorm(dim)
        self.conv = nn.Conv1d(dim, dim, TEMPORAL_KERNEL, padding=TEMPORAL_KERNEL // 2, groups=dim)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, 2 * dim, dropout, activation=nn.GELU)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.conv(self.conv_norm(x).transpose(1, 2)).transpose(1, 2))
        return x + self.mlp(self.mlp_norm(x))


class VisualEncoder(nn.Module):
    """(B, T, 3, H, W) RGB in [0, 1] -> (B, T, dim): one token per frame (H = W >= 32 works)."""

    def __init__(self, settings: VisualSettings) -> None:
        super().__init__()
        self.register_buffer("image_mean", torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor(IMAGE_STD).view(1, 3, 1, 1), persistent=False)
        # two stride-2 convs: a 96 px face becomes a 24 x 24 map before the gated blocks
        self.stem = nn.Sequential(
            conv_norm_act(3, settings.stem_channels, stride=2),
            conv_norm_act(settings.stem_channels, settings.dim, stride=2),
        )
        self.gscb = nn.Sequential(
            *(GSCB(settings.dim, settings.dropout) for _ in range(settings.gscb_layers))
        )
        self.frame_norm = nn.LayerNorm(settings.dim)
        self.temporal = nn.ModuleList(
            TemporalBlock(settings.dim, settings.dropout) for _ in range(settings.temporal_depth)
        )
        self.attention = nn.ModuleList(
            TransformerBlock(settings.dim, settings.heads, mlp_ratio=4, dropout=settings.dropout)
            for _ in range(settings.attention_layers)
        )
        self.out_norm = nn.LayerNorm(settings.dim)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        images = (frames.flatten(0, 1) - self.image_mean) / self.image_std  # (B*T, 3, H, W)
        maps = self.gscb(self.stem(images))
        tokens = self.frame_norm(maps.mean(dim=(2, 3)))  # (B*T, dim)
        x = tokens.unflatten(0, (frames.shape[0], frames.shape[1]))
        for block in self.temporal:
            x = block(x)
        for block in self.attention:
            x = block(x)
        return self.out_norm(x)
