"""EmotionAVModel behaviour: shapes, missing modalities, per-sample independence, training, sizes."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from lexiedge.api import BuiltModel
from lexiedge_emotion_av.model import EmotionAVModel, ModelInputError
from lexiedge_emotion_av.plugin import EmotionAVPlugin
from lexiedge_emotion_av.settings import EmotionAVSettings

# The seed columns of contracts.md / DESIGN.md section 1 (heads: 4 on rtx, 8 on t4; kv_heads as the profiles).
SEED_CONFIGS = {
    "rtx3050-4gb": {
        "audio": {"dim": 128, "layers": 4, "heads": 4, "ffn": 512},
        "visual": {"dim": 128, "temporal_depth": 2, "gscb_layers": 1, "attention_layers": 1, "heads": 4},
        "fusion": {
            "audio_in": 128,
            "visual_in": 128,
            "hidden": 256,
            "layers": 2,
            "out": 128,
            "heads": 4,
            "kv_heads": 2,
        },
        "head": {"hidden": [128, 64]},
    },
    "t4-16gb": {
        "audio": {"dim": 512, "layers": 8, "heads": 8, "ffn": 2048},
        "visual": {"dim": 512, "temporal_depth": 4, "gscb_layers": 2, "attention_layers": 2, "heads": 8},
        "fusion": {
            "audio_in": 512,
            "visual_in": 512,
            "hidden": 1024,
            "layers": 4,
            "out": 512,
            "heads": 8,
            "kv_heads": 2,
        },
        "head": {"hidden": [512, 256]},
    },
}


@pytest.mark.parametrize(
    ("batch", "samples", "frames", "size"),
    [(1, 8000, 1, 32), (2, 16000, 4, 48), (3, 12345, 3, 40), (2, 400, 2, 32)],
)
def test_forward_shapes(tiny_model, inputs, batch: int, samples: int, frames: int, size: int) -> None:
    with torch.no_grad():
        logits = tiny_model(*inputs(batch, samples, frames, size, seed=batch + samples))
    assert logits.shape == (batch, 8)
    assert torch.isfinite(logits).all()


def test_a_missing_modality_is_ignored_not_just_reweighted(tiny_model, inputs) -> None:
    waveform, frames, both, _ = inputs(2, 8000, 3, seed=1)
    other_waveform, other_frames, _, _ = inputs(2, 8000, 3, seed=2)
    zero = torch.zeros(2)
    with torch.no_grad():
        full = tiny_model(waveform, frames, both, both)
        video_only = tiny_model(waveform, frames, zero, both)
        audio_only = tiny_model(waveform, frames, both, zero)
        # with the audio masked out, what the waveform holds must not matter (and vice versa)
        video_only_other_audio = tiny_model(other_waveform, frames, zero, both)
        audio_only_other_video = tiny_model(waveform, other_frames, both, zero)
        video_only_other_video = tiny_model(waveform, other_frames, zero, both)
        neither = tiny_model(waveform, frames, zero, zero)
    assert (full - video_only).abs().max() > 1e-3
    assert (full - audio_only).abs().max() > 1e-3
    assert torch.allclose(video_only, video_only_other_audio, atol=1e-6)
    assert torch.allclose(audio_only, audio_only_other_video, atol=1e-6)
    assert (video_only - video_only_other_video).abs().max() > 1e-3, "the present modality must still count"
    assert torch.isfinite(neither).all()


def test_a_samples_logits_do_not_depend_on_its_batch(tiny_model, inputs) -> None:
    waveform, frames, _, _ = inputs(4, 9600, 3, seed=3)
    audio_mask = torch.tensor([1.0, 0.0, 1.0, 1.0])
    video_mask = torch.tensor([1.0, 1.0, 0.0, 1.0])
    with torch.no_grad():
        together = tiny_model(waveform, frames, audio_mask, video_mask)
        alone = torch.cat(
            [
                tiny_model(
                    waveform[i : i + 1], frames[i : i + 1], audio_mask[i : i + 1], video_mask[i : i + 1]
                )
                for i in range(4)
            ]
        )
        order = torch.tensor([2, 0, 3, 1])
        shuffled = tiny_model(waveform[order], frames[order], audio_mask[order], video_mask[order])
    assert torch.allclose(together, alone, atol=1e-5)
    assert torch.allclose(together[order], shuffled, atol=1e-5)
    assert (together[0] - together[3]).abs().max() > 1e-3  # different clips, different logits


def test_a_batch_without_video_skips_the_visual_branch_with_the_same_logits(tiny_model, inputs) -> None:
    waveform, frames, ones, _ = inputs(3, 9600, 2, seed=5)
    no_video = torch.zeros(3)
    one_video = torch.tensor([0.0, 0.0, 1.0])  # one clip with video: the branch runs for the whole batch
    calls = []
    hook = tiny_model.visual.register_forward_hook(lambda *_: calls.append(1))
    try:
        with torch.no_grad():
            skipped = tiny_model(waveform, frames, ones, no_video)
            assert not calls, "no clip has video: the visual branch is not run"
            computed = tiny_model(waveform, frames, ones, one_video)
            assert calls
    finally:
        hook.remove()
    torch.testing.assert_close(skipped[:2], computed[:2], atol=1e-6, rtol=0)


def test_a_teacher_computes_the_same_logits_without_the_dft_conv(tiny_model, inputs) -> None:
    """for_teaching (a distillation teacher): eval-mode logits from an FFT, not the exported graph's DFT conv."""
    waveform, frames, ones, _ = inputs(3, 9600, 2, seed=7)
    with torch.no_grad():
        exported_path = tiny_model(waveform, frames, ones, ones)
        teacher = tiny_model.for_teaching()
        taught = teacher(waveform, frames, ones, ones)
        teacher.audio.frontend.dft_basis.zero_()  # the conv's basis: a teacher no longer reads it
        without_conv = teacher(waveform, frames, ones, ones)
    assert teacher.training is False, "a teacher stays in eval mode (no dropout)"
    torch.testing.assert_close(taught, exported_path, atol=1e-4, rtol=0)
    torch.testing.assert_close(without_conv, taught, atol=0, rtol=0)


def test_a_few_optimiser_steps_fit_a_fixed_batch(tiny_settings, inputs) -> None:
    torch.manual_seed(0)
    model = EmotionAVModel(tiny_settings(dropout=0.0)).train()
    waveform, frames, audio_mask, video_mask = inputs(
        4, 8000, 2, seed=4, audio_mask=[1, 1, 0, 1], video_mask=[1, 0, 1, 1]
    )
    labels = torch.tensor([0, 3, 5, 7])
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        loss = F.cross_entropy(model(waveform, frames, audio_mask, video_mask), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.85 * losses[0], losses
    every_group_learns = {
        name: any(p.grad is not None and p.grad.abs().sum() > 0 for p in getattr(model, name).parameters())
        for name in ("audio", "visual", "fusion", "head")
    }
    assert all(every_group_learns.values()), every_group_learns


def test_mixed_precision_forward_is_finite(tiny_model, inputs) -> None:
    waveform, frames, audio_mask, video_mask = inputs(2, 8000, 2, seed=5)
    waveform = waveform / waveform.abs().max()  # full scale: fp16/bf16 would overflow a naive power spectrum
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = tiny_model(waveform, frames, audio_mask, video_mask)
    with torch.no_grad():
        reference = tiny_model(waveform, frames, audio_mask, video_mask)
    assert torch.isfinite(logits).all()
    assert (logits.float() - reference).abs().max() < 0.2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"waveform": torch.zeros(2, 1, 8000)}, "waveform must be (batch, samples)"),
        ({"frames": torch.zeros(2, 3, 32, 32)}, "frames must be (batch, frames, 3, height, width)"),
        ({"audio_mask": torch.ones(3)}, "audio_mask has batch 3 but waveform has batch 2"),
        ({"waveform": torch.zeros(2, 100)}, "needs at least n_fft = 400"),
        ({"frames": torch.zeros(2, 3, 3, 16, 16)}, "at least 32x32 px"),
    ],
)
def test_bad_inputs_get_one_clear_error(tiny_model, inputs, change: dict, message: str) -> None:
    waveform, frames, audio_mask, video_mask = inputs(2, 8000, 3)
    arguments = {
        "waveform": waveform,
        "frames": frames,
        "audio_mask": audio_mask,
        "video_mask": video_mask,
    } | change
    with pytest.raises(ModelInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tiny_model(**arguments)


def _expected_head_parameters(settings: EmotionAVSettings) -> int:
    widths = [settings.fusion.out, *settings.head.hidden, settings.num_classes]
    layer_norm = 2 * settings.fusion.out
    return layer_norm + sum(a * b + b for a, b in itertools.pairwise(widths))


def test_seed_configurations_parameter_counts() -> None:
    plugin = EmotionAVPlugin()
    counts: dict[str, tuple[int, dict[str, int]]] = {}
    for name, config in SEED_CONFIGS.items():
        settings = EmotionAVSettings.model_validate(config)
        built = plugin.build(settings, None, pretrained=False)  # device unused: models build on the CPU
        assert isinstance(built, BuiltModel) and built.extras["labels"][0] == "neutral"
        total = sum(p.numel() for p in built.module.parameters())
        groups = plugin.parameter_groups(built.module)
        print(f"{name}: {total:,} parameters; " + ", ".join(f"{k} {v:,}" for k, v in groups.items()))
        assert list(groups) == ["audio", "visual", "fusion", "head"]
        assert sum(groups.values()) == total and all(v > 0 for v in groups.values())
        assert groups["head"] == _expected_head_parameters(settings)
        counts[name] = (total, groups)
        del built
    small, large = counts["rtx3050-4gb"][0], counts["t4-16gb"][0]
    assert 1_000_000 < small < 10_000_000 and 50_000_000 < large < 200_000_000
    assert large > 10 * small
    for group in ("audio", "visual", "fusion", "head"):
        assert counts["t4-16gb"][1][group] > 4 * counts["rtx3050-4gb"][1][group]


def test_speaker_normalisation_reads_the_speakers_statistics(tiny_settings, inputs) -> None:
    """feature_norm: speaker: the speaker's (B, F) statistics replace the global ones; without them the model
    is the global-normalised one; the clip's own statistics (the graph's feature_stats) are its raw
    features' mean and mean square over frames."""
    torch.manual_seed(0)
    model = EmotionAVModel(tiny_settings(feature_norm="speaker")).eval()
    frontend = model.audio.frontend
    frontend.feature_mean.copy_(torch.linspace(-3, 1, frontend.feature_dim))
    frontend.feature_std.copy_(torch.linspace(1, 2, frontend.feature_dim))
    arrays = inputs(3, 12000, 2, seed=5)
    batch = arrays[0].shape[0]
    mean = frontend.feature_mean.expand(batch, -1)
    std = frontend.feature_std.expand(batch, -1)
    with torch.no_grad():
        fallback, statistics = model.logits_and_statistics(*arrays)
        as_global = model(*arrays, mean.contiguous(), std.contiguous())
        shifted = model(*arrays, mean + 0.5, std * 2)
        raw = frontend.raw_features(arrays[0])
    assert torch.allclose(fallback, as_global, atol=1e-6), "the global statistics as a profile = no profile"
    assert (fallback - shifted).abs().max() > 1e-3, "another speaker profile changes the logits"
    assert statistics.shape == (batch, 2, frontend.feature_dim)
    assert torch.allclose(statistics[:, 0], raw.mean(-1), atol=1e-5)
    assert torch.allclose(statistics[:, 1], (raw * raw).mean(-1), rtol=1e-5, atol=1e-4)
