"""`train.distill`: a classifier learns its teachers' soft predictions, through real runs of the pipeline.

The tiny clusters task makes what is learnt from whom visible: a student whose training labels are
shuffled (they say nothing about the inputs) learns the classes only if a trained teacher teaches it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from lexiedge_classifier.settings import DistillSettings
from lexiedge_classifier.teachers import Teacher, distillation_loss

from lexiedge.errors import UsageError
from lexiedge.rundir import find_checkpoint
from train_fixtures import FRAMES, WAVE, TinyAV, train_run

pytestmark = pytest.mark.slow

TEACHER = {"epochs": 4, "lr": 1e-2, "keep_last": 1}


def test_the_distillation_term_is_zero_for_the_teachers_own_predictions_and_pulls_towards_them() -> None:
    torch.manual_seed(0)
    teacher = TinyAV(16, 4, 0.0).eval()
    student = TinyAV(16, 4, 0.0)
    batch = {"waveform": torch.randn(8, WAVE), "frames": torch.randn(8, *FRAMES),
             "audio_mask": torch.ones(8), "video_mask": torch.ones(8)}  # fmt: skip
    inputs = ("waveform", "frames", "audio_mask", "video_mask")
    taught = [Teacher(Path("teacher"), teacher, inputs)]
    with torch.no_grad():
        own = teacher(*(batch[key] for key in inputs))
    assert distillation_loss(own, taught, batch, 2.0).item() == pytest.approx(0.0, abs=1e-6)

    optimizer = torch.optim.SGD(student.parameters(), lr=0.5)
    losses = []
    for _ in range(20):
        loss = distillation_loss(student(*(batch[key] for key in inputs)), taught, batch, 2.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 0.01 and losses[-1] < 0.5 * losses[0]
    assert all(p.grad is None for p in teacher.parameters()), "the teacher is never trained"


def test_a_student_with_meaningless_labels_learns_the_classes_from_its_teacher(tiny_profile, tmp_path: Path) -> None:
    teacher = tmp_path / "teacher"
    train_run(tiny_profile(train=TEACHER), teacher)
    assert json.loads((teacher / "test_metrics.json").read_text())["uar"] >= 0.9

    shuffled = {"shuffle_train_labels": True}
    student_train = {**TEACHER, "seed": 1}
    alone = train_run(tiny_profile(train=student_train, data=shuffled), tmp_path / "alone")
    taught = train_run(
        tiny_profile(train={**student_train, "distill": {"teachers": [str(teacher)], "weight": 0.9}}, data=shuffled),
        tmp_path / "taught",
    )
    assert alone.metrics["test/uar"] < 0.6, "shuffled labels teach nothing (chance is 0.25)"
    assert taught.metrics["test/uar"] >= 0.85, "the teacher taught the classes"


def test_teachers_that_cannot_teach_are_refused_in_one_line(tiny_profile, tmp_path: Path) -> None:
    teacher = tmp_path / "teacher"
    train_run(tiny_profile(train={"epochs": 1, "max_steps": 2}), teacher)

    def student(teachers: list[str], **data) -> None:
        train_run(tiny_profile(train={"epochs": 1, "max_steps": 1, "distill": {"teachers": teachers}}, data=data),
                  tmp_path / f"student-{len(list(tmp_path.iterdir()))}")

    with pytest.raises(UsageError, match=r"train.distill.teachers: .*nowhere: no such run folder"):
        student([str(tmp_path / "nowhere")])
    with pytest.raises(UsageError, match=r"predicts the classes \['class-0', 'class-1', 'class-2', 'class-3'\], this run trains"):
        student([str(teacher)], num_classes=3)
    crossval = tmp_path / "cv"
    crossval.mkdir()
    (crossval / "crossval-plan.json").write_text("{}")
    with pytest.raises(UsageError, match="is a cross-validation folder; its fold runs teach only under"):
        student([str(crossval)])
    weights = find_checkpoint(teacher) / "model.safetensors"  # the weights a teacher teaches with
    damaged = bytearray(weights.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    weights.write_bytes(bytes(damaged))
    with pytest.raises(UsageError, match="is damaged .*refusing to distill from it"):
        student([str(teacher)])
    with pytest.raises(ValueError, match="teachers"):
        DistillSettings(teachers=[])
