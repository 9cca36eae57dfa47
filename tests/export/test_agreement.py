"""Decisive samples and near-ties: what makes top-1 agreement a measure of the export, not of luck."""

from __future__ import annotations

import numpy as np
from lexiedge.export.agreement import measure_agreement, tie_margin_for, top2_margin


def _noisy(reference: np.ndarray, scale: float, seed: int = 0) -> np.ndarray:
    return reference + np.random.default_rng(seed).normal(0.0, scale, reference.shape)


def test_a_flip_at_a_near_tie_is_reported_apart_and_does_not_count_against_the_export() -> None:
    rng = np.random.default_rng(1)
    reference = rng.normal(0.0, 3.0, (200, 8))
    reference[0, :2] = [5.0, 4.999]  # a near-tie: the top two classes 0.001 apart
    artifact = _noisy(reference, 0.01)
    artifact[0, :2] = [4.999, 5.0]  # the export's noise flips it
    result = measure_agreement(reference, artifact)
    assert result.near_tie_flips >= 1 and result.on_decisive == 1.0
    assert result.overall < 1.0, "the flip is still visible in the overall agreement"
    assert result.decisive + result.near_ties == 200 and result.decisive > 190


def test_a_flip_on_a_decisive_sample_counts() -> None:
    rng = np.random.default_rng(2)
    reference = rng.normal(0.0, 3.0, (200, 8))
    artifact = _noisy(reference, 0.01)
    clear = int(np.argmax(top2_margin(reference)))  # the most decisive sample
    artifact[clear] = -artifact[clear]  # an export that gets this one badly wrong
    result = measure_agreement(reference, artifact)
    assert result.decisive_agree == result.decisive - 1 and result.on_decisive < 1.0


def test_the_tie_margin_follows_the_noise_so_a_broken_export_has_few_decisive_samples() -> None:
    rng = np.random.default_rng(3)
    reference = rng.normal(0.0, 1.0, (300, 8))
    faithful = measure_agreement(reference, _noisy(reference, 0.01))
    broken = measure_agreement(reference, _noisy(reference, 2.0))
    assert faithful.tie_margin < 0.1 < broken.tie_margin
    assert faithful.on_decisive == 1.0 and faithful.decisive_share > 0.9
    assert broken.decisive_share < 0.2, "noise as large as the decisions leaves few decisive samples: the verifiers fail that"


def test_exact_agreement_keeps_a_floor_so_exact_ties_are_never_decisive() -> None:
    reference = np.array([[1.0, 1.0, 0.0], [2.0, 0.0, 0.0]])
    result = measure_agreement(reference, reference.copy())
    assert result.noise == 0.0 and result.tie_margin == tie_margin_for(0.0) > 0
    assert (result.decisive, result.near_ties, result.on_decisive) == (1, 1, 1.0)


def test_teacher_forced_tokens_are_compared_with_the_expected_choice() -> None:
    reference = np.array([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    artifact = reference.copy()
    result = measure_agreement(reference, artifact, expected=np.array([0, 2]))
    assert result.agree == 1 and result.decisive_agree == 1


def _report(pytorch_uar: float, artifact_uar: float, labels: np.ndarray) -> dict:
    from lexiedge.export.verify_classifier import one_clip_uar

    validation = {
        "clips": len(labels), "max_abs_diff": {"logits": 0.0}, "decisive": {"share": 1.0, "agreement": 1.0,
        "samples": len(labels)}, "near_ties": {"samples": 0}, "tie_margin": 0.0, "noise_logit_p99": 0.0,
        "task_metric": {"name": "uar", "pytorch": pytorch_uar, "artifact": artifact_uar,
                        "delta": artifact_uar - pytorch_uar, "one_clip": one_clip_uar(labels)},
    }
    return {"validation": validation, "shape_sweep": {"max_abs_diff": {"logits": 0.0}}}


def test_a_uar_drop_of_one_clip_is_within_what_a_small_validation_set_resolves() -> None:
    import pytest
    from lexiedge.export.verify_classifier import ClassifierThresholds, enforce_classifier, one_clip_uar

    from lexiedge.export import AgreementError

    labels = np.repeat(np.arange(8), 4)  # 32 clips, 4 per emotion: one flip moves UAR by 1/32
    assert one_clip_uar(labels) == 1 / 32
    assert one_clip_uar(np.array([0, 0, 0, 1])) == 1 / 2, "the rarest class decides"
    thresholds = ClassifierThresholds(atol=None, min_top1=0.99, max_uar_drop=0.03)
    enforce_classifier(_report(0.75, 0.75 - 1 / 32, labels), "onnx-int8", thresholds)  # one flip: accepted
    with pytest.raises(AgreementError, match="one clip moves UAR by 0.031 on these 32 clips"):
        enforce_classifier(_report(0.75, 0.75 - 2 / 32, labels), "onnx-int8", thresholds)  # two: refused
    many = np.repeat(np.arange(8), 40)  # 320 clips: max_uar_drop itself is the bound
    with pytest.raises(AgreementError):
        enforce_classifier(_report(0.75, 0.75 - 0.04, many), "onnx-int8", thresholds)
