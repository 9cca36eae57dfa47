"""The memory planner: real parameter counts, measured activations, batch_size auto."""

from __future__ import annotations

import math

import pytest

from lexiedge.plan import measure_activations, plan_profile
from lexiedge.plugin import get_host
from lexiedge.profile import load_profile


@pytest.fixture(scope="module")
def cpu_plan():
    return plan_profile(load_profile("cpu", host=get_host()), "emotion-av")


def test_parameter_counts_come_from_the_built_model(cpu_plan) -> None:
    profile = load_profile("cpu", host=get_host())
    entry = profile.model("emotion-av")
    built = get_host().models.get("emotion-av").build(entry.model.settings, profile.device, pretrained=False)
    assert cpu_plan.params_total == sum(p.numel() for p in built.module.parameters())
    assert sum(cpu_plan.param_groups.values()) == cpu_plan.params_total
    assert cpu_plan.params_trainable == cpu_plan.params_total  # a classifier trains every weight
    assert cpu_plan.weights_bytes == 4 * cpu_plan.params_total  # fp32 on the CPU
    assert cpu_plan.optimizer_bytes["adamw"] == 8 * cpu_plan.params_trainable


def test_activation_estimate_extrapolates_what_is_measured(cpu_plan) -> None:
    """The linear model fitted at batch 1 and 2 predicts a direct measurement at batch 5."""
    profile = load_profile("cpu", host=get_host())
    entry = profile.model("emotion-av")
    host = get_host()
    model_plugin, trainer = host.models.get("emotion-av"), host.trainers.get("classifier")
    built = model_plugin.build(entry.model.settings, profile.device, pretrained=False)

    class FiveAsOne:
        """Presents batch 5 as 'batch 1' and batch 10 as 'batch 2' to measure_activations."""

        def example_batch(self, built, settings, data_settings, batch_size):
            return model_plugin.example_batch(built, settings, data_settings, 5 * batch_size)

    measured, _ = measure_activations(built, FiveAsOne(), trainer, entry.model.settings, entry.data.settings, "fp32")
    predicted = cpu_plan.activations.at(5)
    assert cpu_plan.activations.per_sample_bytes > 0
    assert measured.at(1) == pytest.approx(predicted, rel=0.05)


def test_auto_batch_picks_the_largest_micro_batch_that_fits() -> None:
    profile = load_profile(
        "cpu",
        [
            "models.emotion-av.train.batch_size=auto",
            "models.emotion-av.train.effective_batch=64",
            "device.reserve_gb=0",
        ],
        host=get_host(),
    )
    unconstrained = plan_profile(profile, "emotion-av")
    # a budget with room for exactly ~5 samples of activations beyond the fixed costs
    fixed = unconstrained.total_bytes(0)
    per_sample = unconstrained.total_bytes(1) - fixed
    budget_gb = (fixed + 5.5 * per_sample) / 1024**3
    tight = plan_profile(
        load_profile("cpu", [*(f"models.emotion-av.train.{k}" for k in ("batch_size=auto", "effective_batch=64")),
                             "device.reserve_gb=0", f"device.memory_gb={budget_gb}"], host=get_host()),
        "emotion-av",
    )
    assert tight.micro_batch == 5
    assert tight.grad_accum == math.ceil(64 / 5)
    assert tight.fits and tight.total_bytes(6) > tight.budget_bytes


def test_nothing_fits_a_tiny_budget(cli) -> None:
    result = cli("plan", "--profile", "cpu", "--model", "emotion-av", "--set", "device.memory_gb=0.0001",
                 "--set", "device.reserve_gb=0")
    assert result.exit_code == 0
    assert "does not fit" in result.stdout


def test_plan_command_for_the_rtx3050_seed_config(cli) -> None:
    result = cli("plan", "--profile", "rtx3050-4gb", "--model", "emotion-av")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for row in ("weights", "gradients", "optimizer: adamw", "activations", "batch data", "total", "budget"):
        assert row in out
    assert "measured" in out and "fits" in out
