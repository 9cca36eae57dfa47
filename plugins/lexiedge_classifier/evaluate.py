"""The `classification` evaluator: UAR, WAR, macro-F1, per-class recall and a confusion matrix.

A run is scored in PyTorch from its best (else final) weights; an artifact through the runtime's
``Classifier.run``, as an app runs it. Both read the same clips: the data plugin the model was trained
with (the run's profile, or the manifest's ``preprocessing``) loads ``--data`` (default: the data the
run recorded) with the same settings, split included, so the rows of one table are comparable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lexiedge.api import DataSplits, EnsembleMember, EvalRequest, EvalResult, EvaluatorPlugin
from lexiedge.cache import cache_dir
from lexiedge.errors import UsageError
from lexiedge.metrics import classification_metrics, confusion_matrix
from lexiedge_classifier.trainer import ClassifierTrainer
from lexiedge_runtime.tasks import av_classification as av_task

SPLITS = ("train", "val", "test")
BATCH = 16
CONFUSION_PNG, CONFUSION_JSON, PREDICTIONS_JSON = "confusion.png", "confusion.json", "predictions.json"
TABLE_METRICS = ("uar", "war", "macro_f1")


@dataclass
class _DataView:
    """What a dataset plugin may read from the built model: nothing model-specific for classification."""

    module: Any = None
    tokenizer: Any = None
    extras: dict = field(default_factory=dict)


class ClassificationEvaluator(EvaluatorPlugin):
    name: ClassVar[str] = "classification"
    description: ClassVar[str] = "UAR / WAR / macro-F1, per-class recall and confusion (PNG + JSON) of runs and artifacts"
    tasks: ClassVar[frozenset[str]] = ClassifierTrainer.tasks
    primary_metric: ClassVar[str] = av_task.METRIC.name

    def evaluate_run(self, request: EvalRequest) -> EvalResult:
        return self._report("run", request, self._predict(request, *self._run_model(request)))

    def evaluate_artifact(self, request: EvalRequest) -> EvalResult:
        return self._report("artifact", request, self._predict(request, *self._artifact_model(request)))

    def evaluate_ensemble(self, request: EvalRequest, members: Sequence[EnsembleMember]) -> list[EvalResult]:
        """Each member's row, then the ensemble's: the mean of the members' class probabilities.

        Every member reads the clips its own recipe loads (a speaker-normalising one with its speakers'
        profiles), so the members must score the same clips, in the same order, with the same labels.
        """
        rows, predictions = [], []
        for index, member in enumerate(members):
            where = request.out_dir / f"member-{index:02d}"
            where.mkdir(parents=True, exist_ok=True)
            member_request = replace(request, path=member.path, out_dir=where)
            model = self._run_model(member_request) if member.kind == "run" else self._artifact_model(member_request)
            name, splits, logits_of = model
            prediction = self._predict(member_request, f"{member.path.name}: {name}", splits, logits_of)
            if predictions and not _same_clips(predictions[0], prediction):
                raise UsageError(
                    f"{member.path} scores other clips than {members[0].path} (its data, split or labels "
                    "differ); an ensemble's members must be trained on the same data settings"
                )
            predictions.append(prediction)
            rows.append(self._report(member.kind, member_request, prediction))
        first = predictions[0]
        probabilities = np.mean([_softmax(prediction.logits) for prediction in predictions], axis=0)
        combined = _Prediction(f"ensemble of {len(members)} (mean of probabilities)", first.truth,
                               np.log(np.maximum(probabilities, np.finfo(np.float32).tiny)), first.labels)
        rows.append(self._report("ensemble", request, combined))
        return rows

    def _run_model(self, request: EvalRequest) -> tuple[str, DataSplits, LogitsOf]:
        import torch

        from lexiedge.plugin import get_host
        from lexiedge.rundir import recorded_data_path
        from lexiedge.trained import load_trained_model

        profile, model_key, built, checkpoint = load_trained_model(request.path, action="evaluate")
        module = built.module
        entry = profile.model(model_key)
        host = get_host()
        data = request.data or recorded_data_path(request.path)
        data_plugin = host.datasets.get(entry.data.plugin)
        data_settings = entry.data.settings
        if request.enroll is not None:  # score the clips that do not enroll, with their speakers' profiles
            from lexiedge.profile import deep_merge

            merged = deep_merge(data_settings.model_dump(), data_plugin.enrollment_overrides(request.enroll))
            data_settings = data_plugin.Settings.model_validate(merged)
        splits = data_plugin.load(
            data_settings, data, built=built, model_settings=entry.model.settings,
            cache_dir=cache_dir(), console=request.console,
        )

        inputs = ClassifierTrainer().model_inputs(built)

        def logits_of(feeds: dict[str, np.ndarray]) -> np.ndarray:
            with torch.no_grad():
                return module(*(torch.from_numpy(feeds[key]) for key in inputs)).float().numpy()

        name = f"pytorch ({checkpoint.relative_to(request.path)})" + (
            f", enrolled ({request.enroll})" if request.enroll else "")
        return name, splits, logits_of

    def _artifact_model(self, request: EvalRequest) -> tuple[str, DataSplits, LogitsOf]:
        from lexiedge.plugin import get_host

        if request.enroll is not None:
            raise UsageError(f"--enroll scores runs (PyTorch); {request.path} is an artifact, whose speaker "
                             "profile an app computes with the runtime")
        from lexiedge.rundir import recorded_data_path
        from lexiedge.runtime import Classifier, load

        model = load(request.path, "cpu")
        if not isinstance(model, Classifier):  # resolve_target matched the task; a guard for hand-made manifests
            raise UsageError(f"{request.path}: not a classifier artifact")
        preprocessing = model.manifest.get("preprocessing") or {}
        plugin_name = preprocessing.get("data_plugin")
        if not plugin_name:
            raise UsageError(f"{request.path}: the manifest names no data plugin (preprocessing.data_plugin)")
        plugin = get_host().datasets.get(plugin_name)
        settings = plugin.Settings.model_validate(preprocessing.get("data_settings") or {})
        data = request.data
        if data is None:
            run = (model.manifest.get("source") or {}).get("run")
            data = recorded_data_path(Path(run)) if run else None
        if data is None:
            raise UsageError(f"{request.path}: pass --data PATH (the labelled data to score the artifact on)")
        splits = plugin.load(settings, data, built=_DataView(), model_settings=None, cache_dir=cache_dir(),
                             console=request.console)

        def logits_of(feeds: dict[str, np.ndarray]) -> np.ndarray:
            logits, _ = model.run(feeds)
            return logits

        name = str(model.manifest.get("target") or request.path.name)
        members = (model.manifest.get("ensemble") or {}).get("count")
        if members:  # `lexiedge ensemble`'s artifact keeps its members' target: say what it is
            name = f"{name}, seed ensemble of {members} ({request.path.name})"
        return name, splits, logits_of

    # --- shared ------------------------------------------------------------------------------------------

    def _predict(self, request: EvalRequest, name: str, splits: DataSplits, logits_of: LogitsOf) -> _Prediction:
        """The logits of every scored clip of ``request.split``, with the clips' true labels."""
        dataset = _split(splits, request.split)
        truth, logits = [], []
        count = len(dataset) if request.limit is None else min(request.limit, len(dataset))
        for feeds, batch_labels in _batches(dataset, splits.collate, count):
            logits.append(np.asarray(logits_of(feeds), dtype=np.float32))
            truth.append(batch_labels)
        return _Prediction(name, np.concatenate(truth), np.concatenate(logits), list(splits.labels or []))

    def _report(self, kind: str, request: EvalRequest, prediction: _Prediction) -> EvalResult:
        name, truth, labels = prediction.name, prediction.truth, prediction.labels
        predicted = prediction.logits.argmax(-1)
        num_classes = len(labels) or int(max(truth.max(), predicted.max()) + 1)
        scores = classification_metrics(confusion_matrix(truth, predicted, num_classes))
        names = labels or [str(index) for index in range(num_classes)]
        scores["labels"] = names
        scores["recall_per_label"] = dict(zip(names, scores["recall_per_class"]))
        json_path = request.out_dir / CONFUSION_JSON
        json_path.write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")
        predictions_path = request.out_dir / PREDICTIONS_JSON  # per clip, in the data's order
        predictions_path.write_text(json.dumps({
            "labels": names,
            "truth": truth.tolist(),
            "predicted": predicted.tolist(),
            "probabilities": np.round(_softmax(prediction.logits), 6).tolist(),
        }) + "\n", encoding="utf-8")
        title = f"{name}, {request.split}: UAR {scores['uar']:.3f}, WAR {scores['war']:.3f}"
        from lexiedge_classifier.plots import plot_confusion

        png = plot_confusion(scores["confusion"], names, request.out_dir / CONFUSION_PNG, title)
        metrics = {key: float(scores[key]) for key in TABLE_METRICS}
        metrics["samples"] = scores["samples"]
        return EvalResult(name, kind, metrics, details=scores,
                          files={"confusion_png": str(png), "confusion_json": str(json_path),
                                 "predictions_json": str(predictions_path)})


LogitsOf = Callable[[dict[str, np.ndarray]], np.ndarray]


@dataclass
class _Prediction:
    """What one model (or an ensemble) predicted for the scored clips."""

    name: str  # the row's label
    truth: np.ndarray  # (clips,) true class indices
    logits: np.ndarray  # (clips, classes)
    labels: list[str]  # class names, when the data has them


def _same_clips(first: _Prediction, other: _Prediction) -> bool:
    return first.labels == other.labels and np.array_equal(first.truth, other.truth)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _split(splits: DataSplits, split: str):
    if split not in SPLITS:
        raise UsageError(f"--split {split!r}: a classifier is scored on one of {', '.join(SPLITS)}")
    dataset = getattr(splits, split)
    if dataset is None or not len(dataset):
        raise UsageError(f"the data has no {split} clips with these split settings; pass another --split")
    return dataset


def _batches(dataset, collate, count: int) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    for start in range(0, count, BATCH):
        batch = collate([dataset[index] for index in range(start, min(start + BATCH, count))])
        feeds = {key: np.ascontiguousarray(value.numpy().astype(np.float32)) for key, value in batch.items()
                 if key != ClassifierTrainer.label_key}
        yield feeds, batch[ClassifierTrainer.label_key].numpy()
