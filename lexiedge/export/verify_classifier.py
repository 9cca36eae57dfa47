"""Verification of a classifier artifact against the PyTorch model it came from, for every format.

An exporter hands :func:`check_classifier` a runner (``runner(feeds) -> outputs``, numpy in and out, by
name: an ONNX Runtime session, an ExecuTorch program, ...); the checks and thresholds are the same for
all of them.

Two kinds of inputs, neither of them the trace's: the validation split (real clips: max |logit
difference|, top-1 agreement on decisive clips with near-ties apart, see
:mod:`lexiedge.export.agreement`, and the task metric of both), and a shape sweep (batch 1 and 3,
other audio lengths and frame counts, missing modalities) that catches graphs specialised to the
trace shape. Every number goes into the report (and so into the manifest) before a threshold is
enforced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from lexiedge.export.agreement import measure_agreement
from lexiedge.export.classifier import (
    Batch,
    ClassifierSource,
    input_shape,
    reference_logits,
    sweep_batches,
    validation_batches,
)
from lexiedge.export.errors import AgreementError, AtolError, ShapeError, VerificationError
from lexiedge.metrics import classification_metrics, confusion_matrix
from lexiedge_runtime.tasks import av_classification as av_task
from lexiedge_runtime.tasks.av_classification import LOGITS, METRIC, PROBABILITIES, ClassifierThresholds

if TYPE_CHECKING:
    from lexiedge.api import ExportJob, PluginSettings

# what verification talks to: feeds by name in, outputs by name out (numpy both ways)
Runner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]

__all__ = [
    "ClassifierThresholds",
    "Runner",
    "check_classifier",
    "classifier_thresholds",
    "enforce_classifier",
    "one_clip_uar",
    "set_or",
    "softmax",
    "verify_classifier",
]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def set_or(settings: PluginSettings, name: str, default: Any) -> Any:
    """The setting when the target has it and the profile (or its default) gives a value; else ``default``."""
    value = getattr(settings, name, None)
    return default if value is None else value


def classifier_thresholds(settings: PluginSettings, precision: str) -> ClassifierThresholds:
    """What verification enforces on a classifier graph of ``precision`` ("fp32", "int8"): each threshold the
    target's settings set (not None), else the task's default (:data:`av_classification.THRESHOLDS`)."""
    default = av_task.THRESHOLDS[precision]
    return ClassifierThresholds(
        atol=set_or(settings, "atol", default.atol),
        min_top1=set_or(settings, "min_top1", default.min_top1),
        max_uar_drop=set_or(settings, "max_uar_drop", default.max_uar_drop),
        min_decisive_share=settings.min_decisive_share,
    )


def check_classifier(
    job: ExportJob,
    source: ClassifierSource,
    runner: Runner,
    target: str,
    thresholds: ClassifierThresholds,
    max_val_clips: int,
    write_manifest: Callable[[dict[str, Any]], None],
    *,
    fixed_input: tuple[int, int] | None = None,
) -> None:
    """Verify, hand the report to ``write_manifest``, then enforce the thresholds.

    ``fixed_input`` (samples, frames): the graph takes only that clip length (static shapes), so the shape
    sweep stays at it (see :func:`~lexiedge.export.classifier.sweep_batches`).

    Passed or rejected (not crashed), the artifact keeps every number measured: ``write_manifest`` runs
    before a :class:`VerificationError` leaves.
    """
    report: dict[str, Any] = {"thresholds": thresholds.report()}
    try:
        with job.stage(f"verification against PyTorch (up to {max_val_clips} validation clips)"):
            report = verify_classifier(
                runner, source, target, thresholds, max_val_clips=max_val_clips, fixed_input=fixed_input
            )
        enforce_classifier(report, target, thresholds)
        report["passed"] = True
    except VerificationError as exc:
        report.update(passed=False, failure=exc.reason)
        raise
    finally:
        if "passed" in report:
            write_manifest(report)


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
    artifact_logits: list[np.ndarray] = []
    reference_all: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for batch in batches:
        outputs = _run_checked(runner, batch, source.num_classes, target)
        reference = reference_logits(source, batch.feeds)
        logit_diff = max(logit_diff, float(np.abs(outputs[LOGITS] - reference).max()))
        prob_diff = max(prob_diff, float(np.abs(outputs[PROBABILITIES] - softmax(reference)).max()))
        artifact_logits.append(outputs[LOGITS])
        reference_all.append(reference)
        if batch.labels is not None:
            labels.append(batch.labels)
    report: dict[str, Any] = {"clips": 0, "max_abs_diff": {LOGITS: logit_diff, PROBABILITIES: prob_diff},
                              "top1_agreement": None}
    if not batches:
        return report
    artifact, reference = np.concatenate(artifact_logits), np.concatenate(reference_all)
    agreement = measure_agreement(reference, artifact)
    report.update(clips=agreement.samples, top1_agreement=agreement.overall, **agreement.report())
    if len(labels) == len(batches):
        truth = np.concatenate(labels)
        scores = {name: classification_metrics(confusion_matrix(truth, logits.argmax(-1), source.num_classes))
                  for name, logits in (("pytorch", reference), ("artifact", artifact))}
        report["accuracy"] = {name: scores[name]["war"] for name in scores}
        metric = METRIC.name  # the task's: UAR
        report["task_metric"] = {
            "name": metric,
            "pytorch": scores["pytorch"][metric],
            "artifact": scores["artifact"][metric],
            "delta": scores["artifact"][metric] - scores["pytorch"][metric],
            "one_clip": one_clip_uar(truth),
        }
    return report


def one_clip_uar(labels: np.ndarray) -> float:
    """The most one clip can move UAR on these labels: 1 / (classes present x clips of the rarest one).

    A validation set of 32 clips cannot resolve a 0.03 drop (one flip costs 0.031), so a drop of one
    clip's worth is within what the set can measure and is not held against the export."""
    counts = np.bincount(labels.astype(np.int64))
    present = counts[counts > 0]
    return float(1.0 / (len(present) * present.min())) if len(present) else 0.0


def verify_classifier(
    runner: Runner,
    source: ClassifierSource,
    target: str,
    thresholds: ClassifierThresholds,
    *,
    max_val_clips: int,
    fixed_input: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Compare ``runner`` with the PyTorch model; returns the numbers (never raises for thresholds)."""
    sweep = sweep_batches(source, fixed_input)
    sweep_report = _compare(runner, source, sweep, target)
    validation = validation_batches(source, max_val_clips)
    val_report = _compare(runner, source, validation, target)
    val_report["shapes"] = [dict(shape) for shape in sorted({tuple(b.shape.items()) for b in validation})]
    return {
        "reference": "pytorch fp32 (the run's checkpoint)",
        "thresholds": thresholds.report(),
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
    share = val["decisive"]["share"]
    if val["clips"] and share < thresholds.min_decisive_share:
        raise AgreementError(
            target,
            LOGITS,
            f"only {share:.0%} of {val['clips']} validation clips are decisive (< {thresholds.min_decisive_share:.0%}): "
            f"the export's logit noise (p99 {val['noise_logit_p99']:.3g}) is as large as PyTorch's top-2 margins",
        )
    agreement = val["decisive"]["agreement"]
    if agreement is not None and agreement < thresholds.min_top1:
        decisive = val["decisive"]["samples"]
        raise AgreementError(
            target,
            LOGITS,
            f"top-1 agreement with PyTorch {agreement:.2%} < {thresholds.min_top1:.2%} on the {decisive} decisive "
            f"validation clips (fp32 margin above {val['tie_margin']:.3g}; {val['near_ties']['samples']} near-ties "
            "not counted)",
        )
    metric = val.get("task_metric")
    if metric is None:
        return
    if -metric["delta"] > max(thresholds.max_uar_drop, metric["one_clip"]) + 1e-9:  # 1e-9: float sums of 1/n
        raise AgreementError(
            target,
            LOGITS,
            f"validation UAR drops from {metric['pytorch']:.3f} (PyTorch) to {metric['artifact']:.3f}: "
            f"{-metric['delta']:.3f} > max_uar_drop {thresholds.max_uar_drop:g} (one clip moves UAR by "
            f"{metric['one_clip']:.3f} on these {val['clips']} clips)",
        )
