"""The in-graph front end: its DFT conv matches torch.stft (which it uses while training), puts tones in the
right mel band and pitch class, its MFCCs are the DCT of its log-mel bands, it normalises globally
(statistics of the training clips, kept with the weights) or per clip, and masks only while training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lexiedge_emotion_av.frontend import (
    AudioFrontend,
    SpecAugment,
    chroma_filterbank,
    hz_to_mel,
    mel_filterbank,
    mel_to_hz,
)

SR, N_FFT, HOP, N_MELS = 16000, 400, 160, 64


@pytest.fixture(scope="module")
def frontend() -> AudioFrontend:
    # eval mode: the exported graph's path (the DFT conv)
    return AudioFrontend(SR, N_FFT, HOP, N_MELS, normalization="utterance").eval()


def tone(frequency: float, seconds: float = 1.0, amplitude: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(SR * seconds), dtype=torch.float64) / SR
    return (amplitude * torch.sin(2 * math.pi * frequency * t)).float()[None]


def test_conv_stft_matches_torch_stft(frontend: AudioFrontend) -> None:
    waveform = (torch.rand(2, 12345, generator=torch.Generator().manual_seed(0)) * 2 - 1).double()
    reference = (
        torch.stft(
            waveform,
            N_FFT,
            HOP,
            window=torch.hann_window(N_FFT, dtype=torch.float64),
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        .abs()
        .pow(2)
    )
    ours = frontend.power_spectrum(waveform.float()).double()
    assert ours.shape == reference.shape == (2, N_FFT // 2 + 1, 1 + 12345 // HOP)
    # fp32 basis and conv against an fp64 FFT: agreement to float precision of the largest bin
    assert (ours - reference).abs().max() < 1e-5 * reference.max()
    # a basis with real strides: a zero-stride axis (a numpy view's) is refused by ExecuTorch's serializer
    assert 0 not in frontend.dft_basis.stride()


@pytest.mark.parametrize("features", ["log_mel", "mfcc_chroma"])
def test_training_computes_the_exported_features_with_an_fft(features: str) -> None:
    """Training's torch.stft and the graph's DFT conv give the same features to float precision."""
    frontend = AudioFrontend(SR, 1360, 680, 128, features=features)
    parts = ((180, 0.4), (240, 0.1), (130, 0.6))
    speech_like = torch.cat([tone(f, seconds=0.7, amplitude=a) for f, a in parts], 1)
    waveform = speech_like + 0.01 * torch.randn(speech_like.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        trained = frontend.train().raw_features(waveform)
        exported = frontend.eval().raw_features(waveform)
    assert trained.shape == exported.shape == (1, frontend.feature_dim, 1 + waveform.shape[1] // 680)
    assert (trained - exported).abs().max() < 1e-3


def test_mfccs_are_the_dct_of_the_log_mel_bands_and_chroma_names_the_note() -> None:
    from scipy.fft import dct

    frontend = AudioFrontend(SR, 1360, 680, 128, features="mfcc_chroma", n_mfcc=34, n_chroma=12).eval()
    a4 = tone(440.0) + 0.5 * tone(880.0)  # A4 and its octave
    with torch.no_grad():
        features = frontend.raw_features(a4)[0].double()  # (46, frames)
        log_mel = frontend.log_mel(a4)[0].double()
    assert features.shape[0] == frontend.feature_dim == 46
    expected = dct(log_mel.numpy(), type=2, norm="ortho", axis=0)[:34]
    assert np.abs(features[:34].numpy() - expected).max() < 1e-3
    chroma = features[34:, 2:-2]  # inner frames (the edges see padding)
    assert (chroma.argmax(dim=0) == 9).all(), "A is pitch class 9 counting from C"
    peaks = chroma.max(dim=0).values
    assert peaks.allclose(torch.ones(chroma.shape[1], dtype=torch.float64)), "peak-normalised"
    filters = chroma_filterbank(SR, 1360)
    assert filters.shape == (12, 681) and filters.min() >= 0 and filters.flags["C_CONTIGUOUS"]


def test_filterbank_is_triangles_on_the_htk_scale() -> None:
    filters = mel_filterbank(SR, N_FFT, N_MELS)
    assert filters.shape == (N_MELS, N_FFT // 2 + 1)
    assert (filters >= 0).all() and (filters.sum(axis=1) > 0).all(), "every band must see some bin"
    assert filters.max() <= 1.0
    peaks = filters.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all() and peaks[-1] > peaks[0]
    assert np.allclose(mel_to_hz(hz_to_mel(np.array([0.0, 700.0, 8000.0]))), [0.0, 700.0, 8000.0])
    assert hz_to_mel(np.array(1000.0)) == pytest.approx(1000.0, rel=2e-3)  # the scale's anchor


@pytest.mark.parametrize("frequency", [300.0, 1000.0, 4000.0])
def test_a_tone_peaks_in_the_band_centred_nearest_it(frontend: AudioFrontend, frequency: float) -> None:
    corners = mel_to_hz(np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(SR / 2)), N_MELS + 2))
    expected = int(np.abs(corners[1:-1] - frequency).argmin())
    energies = frontend.mel_power(tone(frequency))[0].mean(dim=-1)
    assert abs(int(energies.argmax()) - expected) <= 1


def test_features_are_normalised_per_clip_and_ignore_loudness(frontend: AudioFrontend) -> None:
    generator = torch.Generator().manual_seed(1)
    speechlike = torch.randn(1, SR, generator=generator) * 0.02 + tone(220.0, amplitude=0.3)
    features = frontend(speechlike)
    assert features.shape == (1, 1 + SR // HOP, N_MELS)
    assert features.mean(dim=1).abs().max() < 1e-4
    assert (features.std(dim=1, unbiased=False) - 1).abs().max() < 1e-3
    quieter = frontend(speechlike * 0.25)
    # log(g^2 x) only shifts each band's mean, which is removed; the 1e-6 log floor is the only
    # difference (visible in the weakest band's quietest frames)
    assert (quieter - features).abs().max() < 0.05
    assert (quieter - features).abs().mean() < 1e-3


def _speechlike(seed: int, pitch: float, level: float) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(1, SR, generator=generator) * 0.02 * level + tone(pitch, amplitude=0.3 * level)


def test_global_statistics_are_fitted_on_the_training_clips_and_keep_loudness() -> None:
    frontend = AudioFrontend(SR, N_FFT, HOP, N_MELS, normalization="global")
    clips = [_speechlike(seed, pitch, level) for seed, (pitch, level) in enumerate(
        [(220.0, 1.0), (180.0, 0.3), (300.0, 0.6), (250.0, 1.2)])]
    summary = frontend.fit_statistics(iter([torch.cat(clips[:2]), torch.cat(clips[2:])]))
    assert summary["frames"] == 4 * (1 + SR // HOP)
    features = torch.cat([frontend(clip) for clip in clips], dim=1)  # every frame of the fitted clips
    assert features.mean(dim=1).abs().max() < 1e-4
    assert (features.std(dim=1, unbiased=False) - 1).abs().max() < 1e-3
    # unlike per-clip normalisation, a 12 dB quieter clip has lower features: loudness is a cue of emotion
    loud, quiet = frontend(clips[0]), frontend(clips[0] * 0.25)
    assert (loud - quiet).mean() > 0.5
    # the statistics are buffers of the state dict: they travel with the weights (and into the ONNX graph)
    state = frontend.state_dict()
    assert set(state) == {"feature_mean", "feature_std"}
    restored = AudioFrontend(SR, N_FFT, HOP, N_MELS)
    restored.load_state_dict(state)
    assert torch.equal(restored(clips[1]), frontend(clips[1]))


def test_spec_augment_masks_stripes_while_training_and_is_the_identity_otherwise() -> None:
    features = torch.randn(4, 300, N_MELS) + 5.0  # no feature is 0 before masking
    augment = SpecAugment(freq_masks=2, freq_width=0.2, time_masks=2, time_width=0.1)
    augment.eval()
    assert torch.equal(augment(features), features)
    augment.train()
    torch.manual_seed(0)
    masked = augment(features)
    zero = masked == 0
    assert zero.any(dim=(1, 2)).all(), "every clip gets masks"
    bands_zeroed = zero.all(dim=1).sum(dim=1)  # whole bands
    frames_zeroed = zero.all(dim=2).sum(dim=1)  # whole frames
    assert (bands_zeroed <= 2 * int(0.2 * N_MELS) + 2).all() and (frames_zeroed <= 2 * 30 + 2).all()
    assert torch.equal(masked[~zero], features[~zero]), "what is not masked is untouched"
    torch.manual_seed(0)
    assert torch.equal(augment(features), masked), "seeded: the same masks"


@pytest.mark.parametrize("samples", [N_FFT, 8000, 48000 + 37])
def test_any_length_gives_finite_features(frontend: AudioFrontend, samples: int) -> None:
    features = frontend(torch.zeros(1, samples))  # silence: constant log floor, variance 0
    assert features.shape == (1, 1 + samples // HOP, N_MELS)
    assert torch.isfinite(features).all()


def test_autocast_keeps_the_front_end_in_fp32(frontend: AudioFrontend) -> None:
    loud = tone(1000.0, amplitude=1.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features = frontend(loud)
    assert features.dtype == torch.float32
    assert torch.allclose(features, frontend(loud))


@pytest.mark.shared_data
def test_real_speech_gives_normalised_features_that_ignore_gain(
    frontend: AudioFrontend, shared_data
) -> None:
    import soundfile

    files = sorted((shared_data / "ravdess-speech").glob("Actor_*/03-01-*.wav"))
    rate_16k = [
        path
        for path in files
        if soundfile.info(str(path)).samplerate == SR and soundfile.info(str(path)).channels == 1
    ]
    if not rate_16k:
        pytest.skip("no 16 kHz mono RAVDESS speech file in the shared data")
    audio, _ = soundfile.read(str(rate_16k[0]), dtype="float32")
    waveform = torch.from_numpy(audio)[None]
    features = frontend(waveform)
    assert features.shape == (1, 1 + waveform.shape[1] // HOP, N_MELS)
    assert torch.isfinite(features).all()
    assert (features.std(dim=1, unbiased=False) - 1).abs().max() < 1e-3
    # RAVDESS silences are digital near-zeros, below the 1e-6 log floor: the floor gates them, so a
    # 12 dB quieter copy is not identical, but still gives strongly correlated features
    quieter = frontend(waveform * 0.25)
    assert torch.corrcoef(torch.stack([features.flatten(), quieter.flatten()]))[0, 1] > 0.95
    # frames with speech stand well above the silence around it after normalisation
    energy = frontend.mel_power(waveform)[0].sum(dim=0)
    speech = energy > 1e-2 * energy.max()
    assert 0.1 < speech.float().mean() < 0.9
    assert features[0, speech].mean() > features[0, ~speech].mean() + 1.0
