"""Log-mel features computed inside the model, so the exported graph takes raw audio.

The STFT is a strided conv1d with a fixed, Hann-windowed DFT basis (a buffer, not a parameter):
ONNX's STFT op is missing from TensorRT and from reduced ORT Mobile builds, a Conv is everywhere.
The mel filters are computed here (HTK mel scale, peak-1 triangles as Kaldi and torchaudio's default)
with numpy; torchaudio is not a dependency.
"""

from __future__ import annotations

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
    return basis[:, None, :]


class LogMelFrontend(nn.Module):
    """(B, S) waveform -> (B, 1 + S // hop, n_mels) normalised log-mel frames.

    Frames are centred (n_fft // 2 zeros on each side). Each utterance is normalised per mel band
    over its own frames (mean 0, variance 1), so features do not depend on the batch or on the
    clip's loudness, and the statistics follow the runtime length.
    """

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_mels: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_bins = n_fft // 2 + 1
        # non-persistent: derived from the settings, so checkpoints hold only learned weights
        dft = torch.from_numpy(windowed_dft_basis(n_fft)).float()
        mel = torch.from_numpy(mel_filterbank(sample_rate, n_fft, n_mels)).float()
        self.register_buffer("dft_basis", dft, persistent=False)
        self.register_buffer("mel_filters", mel, persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        device_type = waveform.device.type
        if torch.is_autocast_enabled(device_type):
            # power spectra of full-scale audio exceed fp16's range (400-sample window: up to 4e4)
            with torch.autocast(device_type=device_type, enabled=False):
                return self._log_mel(waveform.float())
        return self._log_mel(waveform)

    def power_spectrum(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, n_fft // 2 + 1, 1 + S // hop): |STFT|^2 with a periodic Hann window, centred."""
        padded = F.pad(waveform[:, None, :], (self.n_fft // 2, self.n_fft // 2))
        spectrum = F.conv1d(padded, self.dft_basis, stride=self.hop_length)  # (B, 2 * bins, frames)
        real, imag = spectrum[:, : self.n_bins], spectrum[:, self.n_bins :]
        return real * real + imag * imag

    def mel_power(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, n_mels, frames) mel-band energies, before the log and the normalisation."""
        return torch.matmul(self.mel_filters, self.power_spectrum(waveform))

    def _log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        log_mel = torch.log(self.mel_power(waveform) + LOG_FLOOR)
        mean = log_mel.mean(dim=-1, keepdim=True)
        centred = log_mel - mean
        variance = (centred * centred).mean(dim=-1, keepdim=True)
        return (centred * torch.rsqrt(variance + NORM_EPS)).transpose(1, 2)
