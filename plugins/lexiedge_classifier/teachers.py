"""Teachers of a distilled classifier (``train.distill``): trained runs whose mean soft predictions the
student learns beside its labels.

A seed ensemble scores above its members on unseen speakers (docs/benchmarks.md) but costs one model per
seed at inference; distillation hands what the ensemble knows to one model of the student's size. The
teachers run in eval mode, without gradients, on the exact batch the student trains on (after mixup),
so the student is taught on every blend it sees rather than on clean clips only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lexiedge.errors import UsageError

if TYPE_CHECKING:
    import torch

    from lexiedge_classifier.settings import DistillSettings


@dataclass
class Teacher:
    path: Path
    module: torch.nn.Module
    inputs: tuple[str, ...]  # the batch entries the module takes, in order
    device: Any = None  # where the module was placed and its inputs checked (first step): not redone per step


def load_teachers(settings: DistillSettings, default_inputs: tuple[str, ...]) -> list[Teacher]:
    """Each teacher run's model with its weights (best, else final); one line for a path that cannot teach.
    Called before the student's data loads, so a mistyped teacher costs no decoding."""
    from lexiedge.crossval import PLAN_JSON
    from lexiedge.trained import load_trained_model

    teachers = []
    for given in settings.teachers:
        path = Path(given).expanduser()
        if (path / PLAN_JSON).is_file():
            raise UsageError(
                f"train.distill.teachers: {given} is a cross-validation folder; its fold runs teach only under "
                "`lexiedge eval --folds` (each fold learns from the same fold's runs); outside it, pass run folders"
            )
        if not path.is_dir():
            raise UsageError(f"train.distill.teachers: {given}: no such run folder")
        _, _, built, _ = load_trained_model(path, action="distill from")
        built.module.requires_grad_(False)
        # a model may offer a cheaper computation of the same logits for inference no graph is compared with
        for_teaching = getattr(built.module, "for_teaching", None)
        if callable(for_teaching):
            for_teaching()
        teachers.append(Teacher(path, built.module, tuple(built.extras.get("inputs") or default_inputs)))
    return teachers


def check_classes(teachers: Sequence[Teacher], labels: Sequence[str] | None) -> None:
    """Every teacher predicts the student's classes in the student's order (as its run's test report
    names them; a run without one is checked by its logits' width at the first step)."""
    from lexiedge.rundir import TEST_METRICS_JSON

    for teacher in teachers:
        test_metrics = teacher.path / TEST_METRICS_JSON
        if not labels or not test_metrics.is_file():
            continue
        taught = json.loads(test_metrics.read_text(encoding="utf-8")).get("labels")
        if taught and list(taught) != list(labels):
            raise UsageError(
                f"train.distill.teachers: {teacher.path} predicts the classes {taught}, this run trains "
                f"{list(labels)}; a teacher must have the student's classes in the student's order"
            )


def distillation_loss(
    student_logits: torch.Tensor, teachers: Sequence[Teacher], batch: dict[str, Any], temperature: float
) -> torch.Tensor:
    """T^2 x KL(teachers' mean probabilities at T || the student's at T), averaged over the batch.

    T^2 keeps the term's gradient on the scale of the labels' cross-entropy whatever T is (Hinton et al.)."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        probabilities = []
        for teacher in teachers:
            if teacher.device != student_logits.device:
                missing = [key for key in teacher.inputs if key not in batch]
                if missing:
                    raise UsageError(f"train.distill.teachers: {teacher.path} reads {missing}, which this run's data does not give")
                teacher.module.to(student_logits.device)
                teacher.device = student_logits.device
            logits = teacher.module(*(batch[key] for key in teacher.inputs)).float()
            if logits.shape != student_logits.shape:
                raise UsageError(
                    f"train.distill.teachers: {teacher.path} gives logits of shape {tuple(logits.shape[1:])}, "
                    f"the student {tuple(student_logits.shape[1:])}; a teacher must predict the student's classes"
                )
            probabilities.append(F.softmax(logits / temperature, dim=-1))
        target = torch.stack(probabilities).mean(dim=0)
    log_student = F.log_softmax(student_logits.float() / temperature, dim=-1)
    return F.kl_div(log_student, target, reduction="batchmean") * temperature**2
