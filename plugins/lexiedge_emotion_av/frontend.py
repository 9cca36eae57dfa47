"""Audio features computed inside the model, so the exported graph takes raw audio.

Two kinds (``features``): log-mel bands, or MFCC + chroma (ResLSTM-SA's input: the DCT of the log-mel
bands, whose first coefficients describe the spectral envelope, beside the energy of each of the 12
pitch classes, per frame divided by the strongest: the voice's pitch as a musical note, independent
of loudness).

The STFT of the exported graph (and of eval mode) is a strided conv1d with a fixed, Hann-windowed DFT
basis (a buffer, not a parameter): ONNX's STFT op is missing from TensorRT and from reduced ORT
Mobile builds, a Conv is everywhere. While training, ``torch.stft`` (an FFT) computes the same spectra
to float precision at a fraction of the cost of the conv's O(n_fft^2) per frame (5x at n_fft 1360).
Eval mode keeps the conv, so a model's eval metrics and an export's verification reference compute
what the graph computes; ``fft_in_eval`` lets inference that no graph is compared with (a distillation
teacher's) use the FFT too.
The mel and chroma filters are computed here with numpy (mel: HTK scale, peak-1 triangles as Kaldi and
torchaudio's default; chroma: librosa's Gaussian pitch-class filters); torchaudio and librosa are not
dependencies.

Normalisation is global by default (ESPnet's GlobalMVN, Kaldi's global CMVN): one mean and one
standard deviation per mel band, measured on the training clips before the first step
(:meth:`LogMelFrontend.fit_statistics`) and saved with the weights, so the exported graph carries
them. Normalising each clip by its own statistics instead ("utterance") removes each band's level
over the clip, which is exactly the loudness and spectral tilt that tell angry from sad: on real
RAVDESS speech the model then stayed at chance (see the README's ablation).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LOG_FLOOR = 1e-6  # log(mel + 1e-6): silence maps to a finite floor instead of -inf
NORM_EPS = 1e-5  # variance floor of the per-utterance normalisation (a silent clip has variance 0)


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """HTK mel scale."""
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> np.ndarray:
    """Triangular mel filters (n_mels, n_fft // 2 + 1) with peak 1.

    Triangles are evaluated at the STFT bin frequencies; their corners are equally spaced on the
    HTK mel scale between f_min and f_max (default: Nyquist). No area (Slaney) normalisation: the
    per-band normalisation after the log removes any per-band scale anyway, and unscaled band
    energies stay far above the log floor for quiet speech.
    """
    f_max = sample_rate / 2.0 if f_max is None else f_max
    bin_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    corners_hz = mel_to_hz(np.linspace(hz_to_mel(np.array(f_min)), hz_to_mel(np.array(f_max)), n_mels + 2))
    lower, centre, upper = corners_hz[:-2, None], corners_hz[1:-1, None], corners_hz[2:, None]
    rising = (bin_hz[None, :] - lower) / (centre - lower)
    falling = (upper - bin_hz[None, :]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def windowed_dft_basis(n_fft: int) -> np.ndarray:
    """Conv1d weight (2 * (n_fft // 2 + 1), 1, n_fft): rows of Hann * cos, then Hann * -sin."""
    n = np.arange(n_fft)
    k = np.arange(n_fft // 2 + 1)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / n_fft)  # periodic Hann, as torch.hann_window
    angles = 2.0 * np.pi * k[:, None] * n[None, :] / n_fft
    basis = np.concatenate([np.cos(angles) * window, -np.sin(angles) * window], axis=0)
    # a copy, not the view: the view's new axis has stride 0, which torch keeps and ExecuTorch's
    # serializer rejects
    return basis[:, None, :].copy()


def chroma_filterbank(sample_rate: int, n_fft: int, n_chroma: int = 12, *, centre_octave: float = 5.0,
                      octave_width: float = 2.0) -> np.ndarray:
    """Pitch-class filters (n_chroma, n_fft // 2 + 1): librosa's ``filters.chroma`` (Ellis), tuning 0.

    Each STFT bin adds to the pitch classes near its frequency (a Gaussian on the circle of classes,
    as wide as the bin is in pitch), weighted by a Gaussian over octaves centred on ``centre_octave``
    (octave 5 of A440/16: ~880 Hz... the voice's harmonics), rows starting at C.
    """
    frequencies = np.linspace(0, sample_rate, n_fft, endpoint=False)[1:]
    octaves = np.log2(frequencies / (440.0 / 16.0))  # octaves above A0 (27.5 Hz)
    bins = n_chroma * octaves
    bins = np.concatenate(([bins[0] - 1.5 * n_chroma], bins))  # the DC bin: far below, like librosa
    widths = np.concatenate((np.maximum(bins[1:] - bins[:-1], 1.0), [1.0]))
    distance = np.subtract.outer(bins, np.arange(n_chroma, dtype=np.float64)).T  # (n_chroma, n_fft)
    half = round(n_chroma / 2)
    distance = np.remainder(distance + half + 10 * n_chroma, n_chroma) - half
    weights = np.exp(-0.5 * (2 * distance / np.tile(widths, (n_chroma, 1))) ** 2)
    weights /= np.maximum(np.linalg.norm(weights, axis=0, keepdims=True), np.finfo(np.float64).tiny)
    weights *= np.exp(-0.5 * ((bins / n_chroma - centre_octave) / octave_width) ** 2)
    weights = np.roll(weights, -3 * (n_chroma // 12), axis=0)  # A-based classes -> C first
    return np.ascontiguousarray(weights[:, : n_fft // 2 + 1])


def dct_basis(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II rows (n_out, n_in): MFCC k of n_in log-mel bands (scipy's ``norm='ortho'``)."""
    n = np.arange(n_in)
    k = np.arange(n_out)[:, None]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    basis[0] /= np.sqrt(2.0)
    return basis


Normalization = Literal["global", "utterance", "speaker"]
FeatureKind = Literal["log_mel", "mfcc_chroma"]
CHROMA_FLOOR = 1e-10  # a silent frame's chroma stays 0 instead of 0 / 0


class AudioFrontend(nn.Module):
    """(B, S) waveform -> (B, 1 + S // hop, feature_dim) normalised feature frames.

    ``features``: "log_mel" (``n_mels`` log mel-band energies) or "mfcc_chroma" (``n_mfcc`` MFCCs of the
    ``n_mels`` log-mel bands, then ``n_chroma`` pitch-class energies per frame divided by the frame's
    largest). Frames are centred (n_fft // 2 zeros on each side). ``normalization``: "global" subtracts
    the per-feature mean and divides by the per-feature standard deviation of the training clips
    (buffers ``feature_mean`` / ``feature_std``, 0 and 1 until :meth:`fit_statistics`); "utterance" uses
    each clip's own statistics over its frames (mean 0, variance 1 per feature and clip).
    """

    def __init__(
        self,
        sample_rate: int,
        n_fft: int,
        hop_length: int,
        n_mels: int,
        normalization: Normalization = "global",
        *,
        features: FeatureKind = "log_mel", n_mfcc: int = 34, n_chroma: int = 12,
    ) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_bins = n_fft // 2 + 1
        self.normalization = normalization
        self.features = features
        self.feature_dim = n_mels if features == "log_mel" else n_mfcc + n_chroma
        self.fft_in_eval = False  # see the module's docstring; EmotionAVModel.for_teaching sets it
        # derived from the settings; non-persistent: checkpoints hold only what was learned or measured
        dft = torch.from_numpy(windowed_dft_basis(n_fft)).float()
        mel = torch.from_numpy(mel_filterbank(sample_rate, n_fft, n_mels)).float()
        self.register_buffer("dft_basis", dft, persistent=False)
        self.register_buffer("mel_filters", mel, persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)  # training's FFT only
        if features == "mfcc_chroma":
            # persistent (small, and converters such as ExecuTorch's and LiteRT's lift persistent buffers more
            # readily); contiguous copies, never numpy views with zero strides
            self.register_buffer("dct", torch.from_numpy(dct_basis(n_mels, n_mfcc).copy()).float())
            chroma = torch.from_numpy(chroma_filterbank(sample_rate, n_fft, n_chroma).copy()).float()
            self.register_buffer("chroma_filters", chroma)
        # persistent: measured on the training data, saved (and exported) with the weights
        self.register_buffer("feature_mean", torch.zeros(self.feature_dim))
        self.register_buffer("feature_std", torch.ones(self.feature_dim))

    def forward(
        self, waveform: torch.Tensor, mean: torch.Tensor | None = None, std: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Normalised features; ``mean``/``std`` (B, feature_dim): a speaker's statistics (``normalization:
        speaker``; without them, the global ones)."""
        return self.features_and_statistics(waveform, mean, std)[0]

    def features_and_statistics(self, waveform: torch.Tensor, mean: torch.Tensor | None = None,
                                std: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(normalised features (B, frames, F), the clip's statistics (B, 2, F): per feature the mean and the
        mean square of its raw values over the frames, whose average over a speaker's clips is their
        profile)."""
        device_type = waveform.device.type
        if torch.is_autocast_enabled(device_type):
            # power spectra of full-scale audio exceed fp16's range (400-sample window: up to 4e4)
            with torch.autocast(device_type=device_type, enabled=False):
                return self._features_and_statistics(waveform.float(), mean, std)
        return self._features_and_statistics(waveform, mean, std)

    def _features_and_statistics(
        self, waveform: torch.Tensor, mean: torch.Tensor | None, std: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raw = self.raw_features(waveform)
        statistics = torch.stack([raw.mean(dim=-1), (raw * raw).mean(dim=-1)], dim=1)
        return self._normalised(raw, mean, std), statistics

    def raw_features(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, feature_dim, frames): the features before normalisation."""
        power = self.power_spectrum(waveform)
        log_mel = torch.log(torch.matmul(self.mel_filters, power) + LOG_FLOOR)
        if self.features == "log_mel":
            return log_mel
        mfcc = torch.matmul(self.dct, log_mel)
        chroma = torch.matmul(self.chroma_filters, power)
        chroma = chroma / chroma.amax(dim=1, keepdim=True).clamp(min=CHROMA_FLOOR)
        return torch.cat([mfcc, chroma], dim=1)

    def power_spectrum(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, n_fft // 2 + 1, 1 + S // hop): |STFT|^2 with a periodic Hann window, centred.

        Training (or ``fft_in_eval``), and not exporting: ``torch.stft``; otherwise the DFT conv the exported
        graph has.
        """
        if (self.training or self.fft_in_eval) and not torch.compiler.is_compiling() and not torch.onnx.is_in_onnx_export():
            spectrum = torch.stft(waveform, self.n_fft, self.hop_length, window=self.window, center=True,
                                  pad_mode="constant", return_complex=True)
            return spectrum.real * spectrum.real + spectrum.imag * spectrum.imag
        padded = F.pad(waveform[:, None, :], (self.n_fft // 2, self.n_fft // 2))
        spectrum = F.conv1d(padded, self.dft_basis, stride=self.hop_length)  # (B, 2 * bins, frames)
        real, imag = spectrum[:, : self.n_bins], spectrum[:, self.n_bins :]
        return real * real + imag * imag

    def mel_power(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, n_mels, frames) mel-band energies, before the log and the normalisation."""
        return torch.matmul(self.mel_filters, self.power_spectrum(waveform))

    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, n_mels, frames) log mel-band energies, not normalised."""
        return torch.log(self.mel_power(waveform) + LOG_FLOOR)

    def _normalised(self, raw: torch.Tensor, mean: torch.Tensor | None = None, std: torch.Tensor | None = None
                    ) -> torch.Tensor:
        if self.normalization == "utterance":
            clip_mean = raw.mean(dim=-1, keepdim=True)
            centred = raw - clip_mean
            variance = (centred * centred).mean(dim=-1, keepdim=True)
            normalised = centred * torch.rsqrt(variance + NORM_EPS)
        elif self.normalization == "speaker" and mean is not None and std is not None:
            normalised = (raw - mean[:, :, None]) / std[:, :, None]
        else:
            normalised = (raw - self.feature_mean[:, None]) / self.feature_std[:, None]
        return normalised.transpose(1, 2)

    @torch.no_grad()
    def clip_statistics(self, waveforms: torch.Tensor, batch: int = 32) -> torch.Tensor:
        """(N, S) -> (N, 2, F): each clip's per-feature mean and mean square, as the exported graph's
        feature_stats (the eval-mode path, in batches)."""
        was_training = self.training
        self.eval()
        try:
            return torch.cat([self.features_and_statistics(waveforms[i : i + batch])[1]
                              for i in range(0, waveforms.shape[0], batch)])
        finally:
            self.train(was_training)

    @torch.no_grad()
    def fit_statistics(self, waveforms: Iterable[torch.Tensor]) -> dict[str, Any]:
        """Set ``feature_mean`` / ``feature_std`` to the per-feature statistics of the frames of
        ``waveforms``.

        ``waveforms``: (B, S) batches of training audio (clips without audio left out by the caller).
        Sums run in float64, so the order of the batches does not change the result beyond rounding.
        """
        total = total_sq = None
        frames = 0
        for batch in waveforms:
            log_mel = self.raw_features(batch.to(self.mel_filters.device).float()).double()  # (B, F, T)
            band_sum, band_sq = log_mel.sum(dim=(0, 2)), (log_mel * log_mel).sum(dim=(0, 2))
            total = band_sum if total is None else total + band_sum
            total_sq = band_sq if total_sq is None else total_sq + band_sq
            frames += log_mel.shape[0] * log_mel.shape[2]
        if not frames:
            return {"frames": 0}
        mean = total / frames
        std = (total_sq / frames - mean * mean).clamp(min=NORM_EPS).sqrt()
        self.feature_mean.copy_(mean.float())
        self.feature_std.copy_(std.float())
        return {"frames": frames, "mean": [round(float(v), 4) for v in mean],
                "std": [round(float(v), 4) for v in std]}


class SpecAugment(nn.Module):
    """SpecAugment's frequency and time masking (Park et al., 2019) on normalised features, training only.

    Each of ``freq_masks`` masks zeroes up to ``freq_width`` of the bands, each of ``time_masks`` up to
    ``time_width`` of the frames, at random positions drawn per clip from torch's generator (so a
    seeded run is repeatable). Zero is the features' global mean. In eval mode (and so in every
    export) it is the identity.
    """

    def __init__(self, freq_masks: int, freq_width: float, time_masks: int, time_width: float) -> None:
        super().__init__()
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width = time_masks, time_width

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, M) -> (B, T, M) with masked stripes set to 0."""
        if not self.training:
            return features
        batch, frames, bands = features.shape
        keep = torch.ones_like(features, dtype=torch.bool)
        for count, width, size, axis in ((self.freq_masks, self.freq_width, bands, 2),
                                         (self.time_masks, self.time_width, frames, 1)):
            positions = torch.arange(size, device=features.device)
            for _ in range(count):
                lengths = (torch.rand(batch, device=features.device) * (width * size + 1)).floor()
                starts = (torch.rand(batch, device=features.device) * (size - lengths + 1)).floor()
                stripe = (positions[None] >= starts[:, None]) & (positions[None] < (starts + lengths)[:, None])
                keep &= ~(stripe[:, None, :] if axis == 2 else stripe[:, :, None])
        return features * keep
