"""Verification of a classifier artifact against the PyTorch model it came from.

Two kinds of inputs, neither of them the trace's: the validation split (real clips: max |logit
difference|, top-1 agreement, accuracy of both), and a shape sweep (batch 1 and 3, other audio
lengths and frame counts, missing modalities) that catches graphs specialised to the trace shape.
Every number goes into the report (and so into the manifest) before a threshold is enforced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lexiedge.export import AgreementError, AtolError, ShapeError
from lexiedge_onnx.classifier import (
    LOGITS,
    PROBABILITIES,
    Batch,
    ClassifierSource,
    input_shape,
    reference_logits,
    sweep_batches,
    validation_batches,
)
from lexiedge_onnx.runners import Runner, softmax


@dataclass(frozen=True)
class ClassifierThresholds:
    atol: float | None  # on logits; None: reported, not enforced (quantized graphs)
    min_top1: float


def _run_checked(runner: Runner, batch: Batch, num_classes: int, target: str) -> dict[str, np.ndarray]:
    """Run one batch; a failure or a wrong output shape at this input shape is a ShapeError, NaN an AtolError."""
    count = len(next(iter(batch.feeds.values())))
    try:
        outputs = runner(batch.feeds)
    except Exception as exc:  # the runtime's message says which node refused the shape
        said = " ".join(str(exc).split()) or type(exc).__name__  # one line; ORT puts the shapes on later lines
        raise ShapeError(target, LOGITS, f"the graph fails on {batch.description}: {said[:300]}") from None
    for name in (LOGITS, PROBABILITIES):
        if name not in outputs:
            raise ShapeError(target, name, f"output missing (outputs: {sorted(outputs)})")
        shape = tuple(outputs[name].shape)
        if shape != (count, num_classes):
            raise ShapeError(
                target, name, f"shape {shape} on {batch.description}; expected {(count, num_classes)}"
            )
        if not np.isfinite(outputs[name]).all():  # NaN would also slip through every "diff > atol" test
            raise AtolError(target, name, f"non-finite values (NaN or inf) on {batch.description}")
    return outputs


def _compare(runner: Runner, source: ClassifierSource, batches: list[Batch], target: str) -> dict[str, Any]:
    logit_diff = prob_diff = 0.0
    agree = total = correct_artifact = correct_reference = 0
    for batch in batches:
        outputs = _run_checked(runner, batch, source.num_classes, target)
        reference = reference_logits(source, batch.feeds)
        logit_diff = max(logit_diff, float(np.abs(outputs[LOGITS] - reference).max()))
        prob_diff = max(prob_diff, float(np.abs(outputs[PROBABILITIES] - softmax(reference)).max()))
        predicted, expected = outputs[LOGITS].argmax(-1), reference.argmax(-1)
        agree += int((predicted == expected).sum())
        total += len(predicted)
        if batch.labels is not None:
            correct_artifact += int((predicted == batch.labels).sum())
            correct_reference += int((expected == batch.labels).sum())
    report: dict[str, Any] = {
        "clips": total,
        "max_abs_diff": {LOGITS: logit_diff, PROBABILITIES: prob_diff},
        "top1_agreement": agree / total if total else None,
    }
    if batches and batches[0].labels is not None:
        report["accuracy"] = {"artifact": correct_artifact / total, "pytorch": correct_reference / total}
    return report


def verify_classifier(
    runner: Runner,
    source: ClassifierSource,
    target: str,
    thresholds: ClassifierThresholds,
    *,
    max_val_clips: int,
) -> dict[str, Any]:
    """Compare ``runner`` with the PyTorch model; returns the numbers (never raises for thresholds)."""
    sweep = sweep_batches(source)
    sweep_report = _compare(runner, source, sweep, target)
    validation = validation_batches(source, max_val_clips)
    val_report = _compare(runner, source, validation, target)
    val_report["shapes"] = [dict(shape) for shape in sorted({tuple(b.shape.items()) for b in validation})]
    return {
        "reference": "pytorch fp32 (the run's checkpoint)",
        "thresholds": {"atol": thresholds.atol, "min_top1": thresholds.min_top1},
        "trace_shape": input_shape(source.example[0], source.example[1]),
        "validation": val_report,
        "shape_sweep": {
            "shapes": [b.description for b in sweep],
            "inputs": [b.shape for b in sweep],
            "max_abs_diff": sweep_report["max_abs_diff"],
            "top1_agreement": sweep_report["top1_agreement"],
        },
        "passed": None,
    }


def enforce_classifier(report: dict[str, Any], target: str, thresholds: ClassifierThresholds) -> None:
    """Raise the typed error of the first threshold missed (after the report was saved)."""
    val, sweep = report["validation"], report["shape_sweep"]
    if thresholds.atol is not None:
        for where, numbers in (("validation split", val), ("shape sweep", sweep)):
            diff = numbers["max_abs_diff"][LOGITS]
            if diff > thresholds.atol:
                raise AtolError(target, LOGITS, f"max |difference| {diff:.3g} > atol {thresholds.atol:g} on the {where}")
    agreement = val["top1_agreement"]
    if agreement is not None and agreement < thresholds.min_top1:
        raise AgreementError(
            target,
            LOGITS,
            f"top-1 agreement with PyTorch {agreement:.2%} < {thresholds.min_top1:.2%} on {val['clips']} validation clips",
        )
