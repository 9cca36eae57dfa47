"""Gradient accumulation: two micro-batches of 2 give the gradients of one batch of 4."""

from __future__ import annotations

import copy

import torch
from lexiedge_classifier.trainer import ClassifierTrainer
from torch.utils.data import default_collate

from lexiedge.api import BuiltModel
from lexiedge.train import forward_backward
from train_fixtures import ClusterSet, TinyAV


def _gradients(built: BuiltModel, micro_batches: list) -> tuple[float, dict[str, torch.Tensor]]:
    built.module.zero_grad(set_to_none=True)
    loss = forward_backward(ClassifierTrainer(), built, micro_batches, torch.device("cpu"), "fp32")
    return loss, {name: p.grad.clone() for name, p in built.module.named_parameters()}


def test_batch_4_accum_1_equals_batch_2_accum_2() -> None:
    torch.manual_seed(0)
    module = TinyAV(hidden=8, num_classes=4, dropout=0.0)
    data = ClusterSet(4, (torch.randn(4, 32), torch.randn(4, 2, 3, 4, 4)), noise=1.0, seed=0)
    samples = [data[i] for i in range(4)]
    whole = [default_collate(samples)]
    halves = [default_collate(samples[:2]), default_collate(samples[2:])]

    loss_whole, grads_whole = _gradients(BuiltModel(module=module), whole)
    loss_halves, grads_halves = _gradients(BuiltModel(module=copy.deepcopy(module)), halves)

    assert abs(loss_whole - loss_halves) < 1e-6  # the step's loss is the mean over its micro-batches
    for name, grad in grads_whole.items():
        assert grad.abs().sum() > 0, name  # a real gradient, not two zeros that trivially agree
        torch.testing.assert_close(grads_halves[name], grad, rtol=1e-5, atol=1e-7)

    # and one micro-batch of 2 alone is something else: the equality above is not vacuous
    _, grads_first = _gradients(BuiltModel(module=copy.deepcopy(module)), halves[:1])
    assert not torch.allclose(grads_first["head.weight"], grads_whole["head.weight"], rtol=1e-3)
