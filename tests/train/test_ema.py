"""train.ema_decay: a moving average of the trainable weights, evaluated, kept as best and final, resumable."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lexiedge.train import checkpoint as ckpt
from lexiedge.train.ema import WeightAverage
from train_fixtures import train_run


def _parameters(seed: int) -> list[torch.nn.Parameter]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(3, 2, generator=generator)), torch.nn.Parameter(torch.randn(4, generator=generator))]


def _step(parameters: list[torch.nn.Parameter], shift: float) -> None:
    with torch.no_grad():
        for parameter in parameters:
            parameter.add_(shift)


def test_the_average_follows_the_formula_with_its_warm_up() -> None:
    parameters = _parameters(0)
    average = WeightAverage(parameters, decay=0.9)
    expected = [p.detach().clone() for p in parameters]
    for update, shift in enumerate((1.0, -0.5, 2.0, 0.25)):
        _step(parameters, shift)
        decay = min(0.9, (1 + update) / (10 + update))
        expected = [decay * e + (1 - decay) * p.detach() for e, p in zip(expected, parameters)]
        average.update()
    assert average.updates == 4
    for got, want in zip(average.average, expected):
        assert torch.allclose(got, want, atol=1e-6)


def test_applied_swaps_the_average_in_and_the_trained_weights_back() -> None:
    parameters = _parameters(1)
    average = WeightAverage(parameters, decay=0.5)
    _step(parameters, 3.0)
    average.update()
    trained = [p.detach().clone() for p in parameters]
    with average.applied():
        assert all(torch.equal(p, a) for p, a in zip(parameters, average.average))
        assert not torch.equal(parameters[0], trained[0])
    assert all(torch.equal(p, t) for p, t in zip(parameters, trained))


def test_a_saved_average_continues_exactly_and_a_mismatch_is_refused() -> None:
    straight, resumed = _parameters(2), _parameters(2)
    first, second = WeightAverage(straight, 0.8), WeightAverage(resumed, 0.8)
    for shift in (1.0, 2.0):
        _step(straight, shift), _step(resumed, shift)
        first.update(), second.update()
    state = second.state_dict()
    again = WeightAverage(resumed, 0.8)
    again.load_state_dict(state)
    for shift in (0.5, -1.0):
        _step(straight, shift), _step(resumed, shift)
        first.update(), again.update()
    assert again.updates == first.updates == 4
    assert all(torch.equal(a, b) for a, b in zip(first.average, again.average))
    with pytest.raises(ValueError, match="does not match"):
        WeightAverage([torch.nn.Parameter(torch.zeros(5))], 0.8).load_state_dict(state)


def _built(profile_path: Path):
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile

    host = get_host()
    profile = load_profile(profile_path, [], host=host)
    entry = profile.model("tiny")
    return host.models.get(entry.model.plugin).build(entry.model.settings, profile.device, pretrained=False)


def test_a_run_evaluates_keeps_and_resumes_the_average(tiny_profile, tmp_path: Path) -> None:
    """Checkpoints keep the trained weights with the average beside them; best and final are the average."""
    train = {"epochs": 2, "batch_size": 8, "ema_decay": 0.9, "keep_last": 5, "lr": 5e-2}
    profile = tiny_profile(train=train)
    run = tmp_path / "run"
    train_run(profile, run)

    checkpoints = ckpt.list_checkpoints(run / "checkpoints")
    last = checkpoints[-1]
    state = ckpt.load_trainer_state(last)
    saved = state["weight_average"]
    assert saved["decay"] == 0.9 and saved["updates"] == state["step"] > 0
    trained = load_file(last / ckpt.WEIGHTS)
    final = load_file(run / "final" / ckpt.WEIGHTS)
    # the final weights are the average (kept in the model's parameter order), not the step's trained weights
    names = [name for name, _ in _built(profile).module.named_parameters()]
    averaged = dict(zip(names, saved["average"]))
    assert all(torch.equal(final[name], averaged[name]) for name in names)
    assert any(not torch.equal(final[name], trained[name]) for name in names)

    # a resume to more epochs picks the average up where it stopped (no fresh start)
    train_run(profile, run, resume=True, overrides=["models.tiny.train.epochs=3"])
    resumed = ckpt.load_trainer_state(ckpt.list_checkpoints(run / "checkpoints")[-1])
    assert resumed["weight_average"]["updates"] == resumed["step"] > state["step"]
