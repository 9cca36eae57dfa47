"""The audio branch: log-mel front end, a convolutional stem that subsamples time, Conformer blocks.

Two stems. ``strided`` (the default) is ESPnet's Conv2dSubsampling: two stride-2 convolutions, then
every (channel, band) flattened into one Linear, so each band position has its own weights. ``vgg``:
VGG-style blocks of 3x3 convolutions with BatchNorm and max-pooling over time and mel bands, then the
mean over the remaining bands; its features do not move when a voice moves up or down the mel axis,
and at inference its BatchNorm uses running statistics, so a sample's output never depends on the rest
of its batch. On real RAVDESS speech (actors 1-12 -> 13-16, the cpu recipe) the strided stem scored
val UAR 0.508 and the VGG stem 0.406 (README, "Measured").
The Conformer blocks use LayerNorm (per time step).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lexiedge_emotion_av.frontend import AudioFrontend, SpecAugment
from lexiedge_emotion_av.layers import FeedForward, SelfAttention
from lexiedge_emotion_av.settings import EmotionAVSettings


class ConvSubsampling(nn.Module):
    """(B, T, n_mels) -> (B, ~T / factor, dim): stride-2 3x3 conv2d layers over (time, mel), then Linear."""

    def __init__(self, n_mels: int, dim: int, factor: int) -> None:
        super().__init__()
        convs: list[nn.Module] = []
        channels, mel_bins = 1, n_mels
        for _ in range(int(math.log2(factor))):
            convs += [nn.Conv2d(channels, dim, kernel_size=3, stride=2, padding=1), nn.SiLU()]
            channels, mel_bins = dim, (mel_bins - 1) // 2 + 1
        self.convs = nn.Sequential(*convs)
        self.proj = nn.Linear(dim * mel_bins, dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.convs(features[:, None])  # (B, dim, T', mel')
        return self.proj(x.permute(0, 2, 1, 3).flatten(2))


class VggStem(nn.Module):
    """(B, T, n_mels) -> (B, ~T / factor, dim): VGG blocks, the mean over mel bands, then Linear.

    Block ``i``: Conv2d 3x3 (``channels[i]``), BatchNorm, ReLU, MaxPool2d halving the mel bands and, in the
    first log2(factor) blocks, time. Pooling rounds odd sizes up, as the strided stem's arithmetic does.
    """

    def __init__(self, n_mels: int, dim: int, factor: int, channels: list[int]) -> None:
        super().__init__()
        time_blocks = int(math.log2(factor))
        layers: list[nn.Module] = []
        previous, mel_bins = 1, n_mels
        for index, width in enumerate(channels):
            pool_time = 2 if index < time_blocks else 1
            pool_mel = 2 if mel_bins >= 2 else 1
            layers += [nn.Conv2d(previous, width, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(), nn.MaxPool2d((pool_time, pool_mel), ceil_mode=True)]
            previous, mel_bins = width, -(-mel_bins // pool_mel)
        self.blocks = nn.Sequential(*layers)
        self.proj = nn.Linear(previous, dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.blocks(features[:, None])  # (B, C, T', mel')
        return self.proj(x.mean(dim=3).transpose(1, 2))


class ConformerConvModule(nn.Module):
    """Pointwise (2x) -> GLU -> depthwise conv in time -> LayerNorm -> SiLU -> pointwise."""

    def __init__(self, dim: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.pointwise_in = nn.Linear(dim, 2 * dim)
        self.glu = nn.GLU(dim=-1)
        self.depthwise = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.conv_norm = nn.LayerNorm(dim)
        self.activation = nn.SiLU()
        self.pointwise_out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.glu(self.pointwise_in(self.norm(x)))
        y = self.depthwise(y.transpose(1, 2)).transpose(1, 2)
        y = self.activation(self.conv_norm(y))
        return self.dropout(self.pointwise_out(y))


class ConformerBlock(nn.Module):
    """Macaron Conformer: half FFN, self-attention (rotary positions), conv module, half FFN, norm."""

    def __init__(self, dim: int, heads: int, ffn: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.ffn1_norm = nn.LayerNorm(dim)
        self.ffn1 = FeedForward(dim, ffn, dropout)
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, rotary=True, dropout=dropout)
        self.attn_dropout = nn.Dropout(dropout)
        self.conv = ConformerConvModule(dim, kernel, dropout)
        self.ffn2_norm = nn.LayerNorm(dim)
        self.ffn2 = FeedForward(dim, ffn, dropout)
        self.out_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + 0.5 * self.ffn1(self.ffn1_norm(x))
        x = x + self.attn_dropout(self.attn(self.attn_norm(x)))
        x = x + self.conv(x)
        x = x + 0.5 * self.ffn2(self.ffn2_norm(x))
        return self.out_norm(x)


class ResLSTM(nn.Module):
    """ResLSTM-SA's sequence model: (B, T, F) -> (B, T, dim).

    LSTM1 is as wide as its input and its output is added to it (a residual: the raw features stay in
    view), BatchNorm over the features, then LSTM2 of width ``dim``. Initialised as the paper's code:
    Xavier-normal input weights, orthogonal recurrent weights, forget-gate bias 1 (in both bias vectors).
    ONNX: each LSTM is one ``LSTM`` op over the runtime's number of frames.
    """

    def __init__(self, features: int, dim: int) -> None:
        super().__init__()
        self.lstm1 = nn.LSTM(features, features, batch_first=True)
        self.norm = nn.BatchNorm1d(features)
        self.lstm2 = nn.LSTM(features, dim, batch_first=True)
        for lstm in (self.lstm1, self.lstm2):
            nn.init.xavier_normal_(lstm.weight_ih_l0)
            nn.init.orthogonal_(lstm.weight_hh_l0)
            for bias in (lstm.bias_ih_l0, lstm.bias_hh_l0):
                nn.init.zeros_(bias)
                with torch.no_grad():
                    # gates in torch's order: input, forget, cell, output
                    bias[lstm.hidden_size : 2 * lstm.hidden_size].fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        enriched, _ = self.lstm1(x)
        x = self.norm((x + enriched).transpose(1, 2)).transpose(1, 2)
        tokens, _ = self.lstm2(x)
        return tokens


class AudioEncoder(nn.Module):
    """(B, S) raw waveform -> (B, Ta, dim) audio tokens: Ta ~ (1 + S // hop) / subsampling for the Conformer,
    1 + S // hop (one per feature frame) for the ResLSTM."""

    def __init__(self, settings: EmotionAVSettings) -> None:
        super().__init__()
        audio = settings.audio
        self.frontend = AudioFrontend(
            settings.sample_rate, settings.n_fft, settings.hop_length, settings.n_mels, settings.feature_norm,
            features=settings.features, n_mfcc=settings.n_mfcc, n_chroma=settings.n_chroma,
        )
        width = self.frontend.feature_dim
        augment = settings.spec_augment
        self.spec_augment = (
            SpecAugment(augment.freq_masks, augment.freq_width, augment.time_masks, augment.time_width)
            if augment is not None
            else nn.Identity()
        )
        self.dropout = nn.Dropout(audio.dropout)
        self.recurrent = audio.encoder == "reslstm"
        if self.recurrent:
            self.sequence = ResLSTM(width, audio.dim)
            return
        if audio.stem == "vgg":
            self.subsampling: nn.Module = VggStem(width, audio.dim, audio.subsampling, audio.stem_channels)
        else:
            self.subsampling = ConvSubsampling(width, audio.dim, audio.subsampling)
        self.blocks = nn.ModuleList(
            ConformerBlock(audio.dim, audio.heads, audio.ffn, audio.conv_kernel, audio.dropout)
            for _ in range(audio.layers)
        )

    def path_linears(self) -> list[nn.Linear]:
        """Linears on the main signal path outside any residual branch (see EmotionAVModel's init)."""
        return [] if self.recurrent else [self.subsampling.proj]

    def forward(self, waveform: torch.Tensor, speaker_mean: torch.Tensor | None = None,
                speaker_std: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(audio tokens, the clip's feature statistics (B, 2, F): AudioFrontend.features_and_statistics)."""
        features, statistics = self.frontend.features_and_statistics(waveform, speaker_mean, speaker_std)
        x = self.spec_augment(features)
        if self.recurrent:
            return self.dropout(self.sequence(x)), statistics
        x = self.dropout(self.subsampling(x))
        for block in self.blocks:
            x = block(x)
        return x, statistics
