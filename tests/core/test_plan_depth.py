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
    whole = measure_sizes(built, model_plugin, trainer, entry, precision)
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

    measured, _ = measure_activations(built, model_plugin, trainer, entry.model.settings, entry.data.settings, precision)
    assert precision == "fp16"
    assert measured.at(1) == kept_bytes(1)
    assert measured.at(2) == kept_bytes(2)
