"""The `classifier` trainer plugin: a :class:`~lexiedge.train.task.TrainTask` for class logits.

The model is called positionally with the batch entries named by :attr:`ClassifierTrainer.input_keys`
and must return logits ``(B, num_classes)``; the target is ``batch[label_key]`` (int64 class indices).
Another classification task reuses it by subclassing and changing those two class attributes (and
``tasks``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from lexiedge import atomic
from lexiedge.api import MODEL_INPUTS, BuiltModel, DataSplits, TrainerPlugin, TrainJob, TrainResult, TrainTask
from lexiedge.metrics import classification_metrics, confusion_matrix
from lexiedge_runtime.tasks import av_classification as av_task
from lexiedge.rundir import TEST_METRICS_JSON
from lexiedge_classifier.settings import ClassifierSettings

if TYPE_CHECKING:
    import torch

    from lexiedge_classifier.settings import DistillSettings
    from lexiedge_classifier.teachers import Teacher

# torch, the training engine and matplotlib are imported where they are used: loading the plugin (every
# `lexiedge` command, `--help` included) stays a fraction of a second

CURVES_PNG = "curves.png"
CONFUSION_PNG = "confusion.png"


class ClassifierTrainer(TrainerPlugin, TrainTask):
    name = "classifier"
    description = "cross-entropy classifier training; UAR/WAR/macro-F1 per epoch, best by val UAR, test report + plots"
    tasks: ClassVar[frozenset[str]] = frozenset({av_task.NAME})
    Settings = ClassifierSettings

    #: batch entries passed to the model, in order: the task's graph inputs (tasks.av_classification)
    input_keys: ClassVar[tuple[str, ...]] = av_task.INPUT_NAMES
    label_key: ClassVar[str] = av_task.LABEL
    best_metric: ClassVar[tuple[str, str]] = (f"val/{av_task.METRIC.name}", av_task.METRIC.mode)

    #: batch entries blended by mixup (the inputs that carry signal; masks are combined with max)
    mixed_keys: ClassVar[tuple[str, ...]] = av_task.SIGNAL_INPUTS
    mask_keys: ClassVar[tuple[str, ...]] = av_task.MASK_INPUTS

    def __init__(self) -> None:
        self.label_smoothing = 0.0
        self.mixup = 0.0
        self.distill: DistillSettings | None = None
        self.teachers: list[Teacher] = []
        self.class_weight: torch.Tensor | None = None
        self.labels: list[str] | None = None
        # running confusion of the training batches since the last evaluation (see train_metrics)
        self._train_confusion: torch.Tensor | None = None

    # --- TrainerPlugin ------------------------------------------------------------------------------

    def fit(self, job: TrainJob) -> TrainResult:
        settings = job.entry.train.settings
        self.label_smoothing = getattr(settings, "label_smoothing", 0.0)
        self.mixup = getattr(settings, "mixup", 0.0)
        from lexiedge.train import Engine, prepare

        self.distill = getattr(settings, "distill", None)
        if self.distill is not None:
            from lexiedge_classifier.teachers import load_teachers

            self.teachers = load_teachers(self.distill, self.input_keys)
        built, splits = prepare(job)
        self.labels = splits.labels
        if self.teachers:
            from lexiedge_classifier.teachers import check_classes

            check_classes(self.teachers, self.labels)
            job.console.print(
                f"classifier: distilling {len(self.teachers)} teacher(s) (weight {self.distill.weight}, "
                f"temperature {self.distill.temperature}): " + ", ".join(str(t.path) for t in self.teachers),
                highlight=False,
            )
        if getattr(settings, "class_weights", "none") == "balanced":
            self.class_weight = balanced_class_weights(splits.train, len(self.labels or []) or None, self.label_key)
            job.console.print("classifier: class weights " + ", ".join(f"{w:.2f}" for w in self.class_weight.tolist()),
                              highlight=False)
        return Engine(job, settings, built, splits, task=self).run()

    def loss(self, built: BuiltModel, batch: dict[str, Any]) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        labels = batch[self.label_key]
        weight = self.class_weight.to(labels.device) if self.class_weight is not None else None

        def hard(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(logits, target, weight=weight, label_smoothing=self.label_smoothing)

        if self.mixup > 0 and built.module.training:
            # mixup (Zhang et al., 2018): one Beta(a, a) weight per batch, a shuffled partner for each sample;
            # drawn from torch's generator, so a seeded (or resumed) run draws the same blends
            blend = float(torch.distributions.Beta(self.mixup, self.mixup).sample())
            partner = torch.randperm(labels.shape[0], device=labels.device)
            seen = dict(batch)
            for key in self.mixed_keys:
                seen[key] = blend * batch[key] + (1.0 - blend) * batch[key][partner]
            for key in self.mask_keys:
                seen[key] = torch.maximum(batch[key], batch[key][partner])
            logits = self.logits(built, seen).float()
            labels_loss = blend * hard(logits, labels) + (1.0 - blend) * hard(logits, labels[partner])
        else:
            seen = batch
            logits = self.logits(built, seen).float()
            labels_loss = hard(logits, labels)
        self._count_training_predictions(logits, labels)
        if self.teachers and built.module.training:
            from lexiedge_classifier.teachers import distillation_loss

            taught = distillation_loss(logits, self.teachers, seen, self.distill.temperature)
            return (1.0 - self.distill.weight) * labels_loss + self.distill.weight * taught
        return labels_loss

    # --- TrainTask ------------------------------------------------------------------------------------

    def logits(self, built: BuiltModel, batch: dict[str, Any]) -> torch.Tensor:
        return built.module(*(batch[key] for key in self.model_inputs(built)))

    def model_inputs(self, built: BuiltModel) -> tuple[str, ...]:
        """The batch entries the module takes: its plugin's ``extras["inputs"]``, else input_keys."""
        return tuple(built.extras.get(MODEL_INPUTS) or self.input_keys)

    def evaluate(self, built: BuiltModel, loader: Iterable[dict[str, Any]], split: str) -> dict[str, Any]:
        """Mean cross-entropy (hard labels, no smoothing) and the scores of the whole split."""
        import torch.nn.functional as F

        loss_sum, count = 0.0, 0
        true: list[np.ndarray] = []
        predicted: list[np.ndarray] = []
        num_classes = len(self.labels) if self.labels else 0
        for batch in loader:
            logits = self.logits(built, batch).float()
            labels = batch[self.label_key]
            loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
            count += labels.numel()
            num_classes = max(num_classes, logits.shape[-1])
            true.append(labels.cpu().numpy())
            predicted.append(logits.argmax(dim=-1).cpu().numpy())
        y_true = np.concatenate(true) if true else np.zeros(0, dtype=np.int64)
        y_pred = np.concatenate(predicted) if predicted else np.zeros(0, dtype=np.int64)
        metrics = classification_metrics(confusion_matrix(y_true, y_pred, num_classes))
        return {"loss": loss_sum / count if count else float("nan"), **metrics}

    def train_metrics(self) -> dict[str, Any]:
        """Scores of the training batches since the last call (train mode, so with dropout), then reset."""
        if self._train_confusion is None:
            return {}
        metrics = classification_metrics(self._train_confusion.cpu().numpy())
        self._train_confusion = None
        return {key: metrics[key] for key in ("uar", "war", "macro_f1", "confusion")}

    def train_metrics_state(self) -> dict[str, Any]:
        """The window's running confusion: a resumed run's train scores then count the whole window."""
        return {} if self._train_confusion is None else {"confusion": self._train_confusion.detach().cpu().clone()}

    def load_train_metrics_state(self, state: dict[str, Any]) -> None:
        self._train_confusion = state.get("confusion")

    def chance_level(self) -> float | None:
        """UAR of a model that guesses (or always says one class): 1 / classes."""
        return 1.0 / len(self.labels) if self.labels else None

    def checkpoint_state(self, built: BuiltModel) -> dict[str, torch.Tensor]:
        return dict(built.module.state_dict())

    def load_checkpoint_state(self, built: BuiltModel, state: dict[str, torch.Tensor]) -> None:
        built.module.load_state_dict(state)

    def on_run_end(self, built: BuiltModel, run_dir: Path, splits: DataSplits, history: list[dict[str, Any]]) -> dict:
        from lexiedge_classifier.plots import plot_confusion, plot_curves

        written = {"curves_png": str(plot_curves(history, run_dir / CURVES_PNG))}
        test_path = run_dir / TEST_METRICS_JSON
        if test_path.is_file():
            test = json.loads(test_path.read_text(encoding="utf-8"))
            names = splits.labels or [str(index) for index in range(len(test["confusion"]))]
            test["labels"] = names
            test["recall_per_label"] = dict(zip(names, test["recall_per_class"]))
            atomic.write_json(test_path, test, fsync=True)
            title = f"test ({test['checkpoint']} weights, step {test['step']}): UAR {test['uar']:.3f}, WAR {test['war']:.3f}"
            written["confusion_png"] = str(plot_confusion(test["confusion"], names, run_dir / CONFUSION_PNG, title))
        return written

    # --- helpers --------------------------------------------------------------------------------------

    def _count_training_predictions(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        import torch

        with torch.no_grad():
            num_classes = logits.shape[-1]
            pairs = labels.detach() * num_classes + logits.detach().argmax(-1)
            # index_add_, not bincount: its output shape does not depend on the values, so the memory
            # plan's fake-tensor pass runs through it
            counts = pairs.new_zeros(num_classes**2).index_add_(0, pairs, torch.ones_like(pairs))
            counts = counts.view(num_classes, num_classes)
        # kept on the device: no host sync per step, only when train_metrics reads it
        # (a confusion restored from a checkpoint sits on the CPU until the first count moves it here)
        self._train_confusion = counts if self._train_confusion is None else self._train_confusion.to(counts.device) + counts


def balanced_class_weights(dataset: Any, num_classes: int | None, label_key: str) -> torch.Tensor:
    """n / (classes x n_class) per class of ``dataset`` (its ``labels`` list, else every item's label).

    A class the split lacks gets weight 0 (it contributes no loss anyway); weights average 1 over samples.
    """
    labels = getattr(dataset, "labels", None)
    if labels is None:
        labels = [int(dataset[index][label_key]) for index in range(len(dataset))]
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes or 0).astype(np.float64)
    present = counts > 0
    weights = np.zeros_like(counts)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    import torch

    return torch.tensor(weights, dtype=torch.float32)
