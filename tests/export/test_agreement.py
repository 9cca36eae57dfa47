"""Decisive samples and near-ties: what makes top-1 agreement a measure of the export, not of luck."""

from __future__ import annotations

import numpy as np
from lexiedge_onnx.agreement import measure_agreement, tie_margin_for, top2_margin


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
