"""The memory plan of a deep model, from builds with one and two of its repeated blocks.

`lexiedge plan` never builds the whole model when its plugin names stacks of repeated blocks: the
numbers must be the ones a whole build measures, for both shipped model plugins and under autocast.
"""

from __future__ import annotations

import pytest
import torch

from lexiedge.plan import measure_activations, measure_sizes, model_sizes, training_precision
from lexiedge.plugin import get_host
from lexiedge.profile import load_profile


def _parts(profile, key):
    host = get_host()
    entry = profile.model(key)
    model_plugin = host.models.get(entry.model.plugin)
    trainer = host.trainers.get(entry.train.plugin)
    precision = training_precision(profile.device, getattr(entry.train.settings, "precision", "auto"))
    return entry, model_plugin, trainer, precision


def _whole_and_reduced(profile, key):
    entry, model_plugin, trainer, precision = _parts(profile, key)
    lines: list[str] = []
    reduced, method = model_sizes(model_plugin, trainer, entry, profile.device, precision, lines.append)
    torch.manual_seed(0)
    built = model_plugin.build(entry.model.settings, profile.device, pretrained=False)
    whole, _ = measure_sizes(built, model_plugin, trainer, entry, precision)
    return whole, reduced, method, lines


def _assert_same_sizes(whole, reduced) -> None:
    assert reduced.params_total == pytest.approx(whole.params_total, abs=0.5)
    assert reduced.params_trainable == pytest.approx(whole.params_trainable, abs=0.5)
    assert reduced.param_groups == pytest.approx(whole.param_groups, abs=0.5)
    assert reduced.weights_bytes == pytest.approx(whole.weights_bytes, abs=0.5)
    assert reduced.activations_per_sample == pytest.approx(whole.activations_per_sample, rel=1e-9)
    assert reduced.activations_fixed == pytest.approx(whole.activations_fixed, rel=1e-9, abs=1.0)
    assert reduced.batch_bytes_per_sample == whole.batch_bytes_per_sample


def test_emotion_av_stacks_extrapolate_to_the_whole_model_under_autocast() -> None:
    """rtx3050-4gb sizes (fp16: CPU bf16 autocast) with a deeper audio branch and fusion."""
    profile = load_profile(
        "rtx3050-4gb",
        ["models.emotion-av.model.audio.layers=5", "models.emotion-av.model.fusion.layers=6"],
        host=get_host(),
    )
    whole, reduced, method, lines = _whole_and_reduced(profile, "emotion-av")
    assert "audio.layers 1 and 2 of 5" in method and "fusion.layers 2 and 4 of 6" in method
    assert len(lines) == 3  # one build at the smaller depths, one per stack at its larger depth
    _assert_same_sizes(whole, reduced)


def test_qwen_decoder_layers_extrapolate_to_the_whole_model() -> None:
    """A local 5-layer Qwen2 base with LoRA: counts, frozen/trainable split and activations."""
    from lexiedge_qwen_lora.tiny import tiny_base_dir

    base = tiny_base_dir(0, num_hidden_layers=5)
    profile = load_profile("cpu", [f"models.qwen-lora.model.base={base}"], host=get_host())
    whole, reduced, method, _ = _whole_and_reduced(profile, "qwen-lora")
    assert "decoder layers 1 and 2 of 5" in method
    assert 0 < reduced.params_trainable < reduced.params_total
    _assert_same_sizes(whole, reduced)


def test_dropping_saved_tensors_counts_what_keeping_them_holds() -> None:
    """The plan's pass drops each saved tensor once counted; a pass that keeps them all (what a
    training step holds until backward) counts the same bytes."""
    profile = load_profile("rtx3050-4gb", host=get_host())
    entry, model_plugin, trainer, precision = _parts(profile, "emotion-av")
    torch.manual_seed(0)
    built = model_plugin.build(entry.model.settings, profile.device, pretrained=False)
    built.module.train()
    parameters = {p.untyped_storage().data_ptr() for p in built.module.parameters()}

    def kept_bytes(batch_size: int) -> int:
        batch = model_plugin.example_batch(built, entry.model.settings, entry.data.settings, batch_size)
        kept: dict[int, int] = {}

        def keep(tensor: torch.Tensor) -> torch.Tensor:
            storage = tensor.untyped_storage()
            if storage.data_ptr() not in parameters:
                kept.setdefault(storage.data_ptr(), storage.nbytes())
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t), torch.autocast("cpu", dtype=torch.bfloat16):
            loss = trainer.loss(built, batch)
        del loss
        return sum(kept.values())

    real, _ = measure_activations(
        built, model_plugin, trainer, entry.model.settings, entry.data.settings, precision, fake=False
    )
    assert precision == "fp16"
    assert real.at(1) == kept_bytes(1)
    assert real.at(2) == kept_bytes(2)
    # The plan's fake-tensor pass: torch's shape rule for layer_norm gives its saved mean/rstd the input's
    # dtype (bf16), where the CPU and CUDA kernels keep them in fp32: 2 bytes per normalised row, 0.02% here
    fake, _ = measure_activations(built, model_plugin, trainer, entry.model.settings, entry.data.settings, precision)
    assert "fake tensors" in fake.method
    assert fake.at(1) == pytest.approx(kept_bytes(1), rel=1e-3)
    assert fake.at(2) == pytest.approx(kept_bytes(2), rel=1e-3)


def test_the_fake_pass_measures_what_the_real_pass_measures_and_leaves_the_model_real() -> None:
    """A LoRA Qwen2 under bf16 autocast (the GPU profiles' case): the fake-tensor pass counts the bytes
    the real CPU pass counts, the caller's model keeps its real weights, and the host's trainer keeps no
    state from the plan."""
    from lexiedge_qwen_lora.tiny import tiny_base_dir

    base = tiny_base_dir(0, num_hidden_layers=2)
    profile = load_profile(
        "t4-16gb", [f"models.qwen-lora.model.base={base}", "models.qwen-lora.model.seq_len=64"], host=get_host()
    )
    entry, model_plugin, trainer, precision = _parts(profile, "qwen-lora")
    assert precision == "fp16"
    built = model_plugin.build(entry.model.settings, profile.device, pretrained=False)
    weights = {name: p for name, p in built.module.named_parameters()}
    throughput_before = dict(vars(trainer.throughput))

    fake, fake_batch = measure_activations(built, model_plugin, trainer, entry.model.settings, entry.data.settings, precision)
    assert vars(trainer.throughput) == throughput_before  # the plan counted its tokens on a copy
    real, real_batch = measure_activations(
        built, model_plugin, trainer, entry.model.settings, entry.data.settings, precision, fake=False
    )
    assert "fake tensors" in fake.method
    assert fake.per_sample_bytes > 0
    assert (fake.fixed_bytes, fake.per_sample_bytes, fake_batch) == (real.fixed_bytes, real.per_sample_bytes, real_batch)
    assert all(p is weights[name] and type(p) is torch.nn.Parameter for name, p in built.module.named_parameters())


class _CountsActiveUnits(torch.nn.Module):
    """Reads a value computed from its weights (how many hidden units fire): no fake tensor has one."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(4, 8)
        self.out = torch.nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(self.hidden(x))
        active = int((hidden > 0).sum())  # data-dependent: a Python int of an activation
        return self.out(hidden) * (1.0 + 0.0 * active)


def test_a_model_that_needs_values_is_measured_for_real_and_says_so() -> None:
    from lexiedge.api import BuiltModel

    class Plugin:
        def example_batch(self, built, settings, data_settings, batch_size):
            return {"x": torch.randn(batch_size, 4), "y": torch.zeros(batch_size, dtype=torch.long)}

    class Trainer:
        def loss(self, built, batch):
            return torch.nn.functional.cross_entropy(built.module(batch["x"]), batch["y"])

    built = BuiltModel(module=_CountsActiveUnits())
    lines: list[str] = []
    measured, batch_bytes = measure_activations(built, Plugin(), Trainer(), None, None, "fp32", lines.append)
    assert "on the CPU" in measured.method and "fake" not in measured.method
    assert len(lines) == 1 and "fake-tensor pass not possible" in lines[0] and "measuring on the CPU" in lines[0]
    assert measured.per_sample_bytes > 0 and batch_bytes == 4 * 4 + 8
    assert all(type(p) is torch.nn.Parameter for p in built.module.parameters())
