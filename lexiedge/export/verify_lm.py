"""Checks of an LLM artifact against the merged PyTorch model (fp32) that every format shares.

An exporter runs the artifact its own way (an ONNX Runtime session with explicit past/present tensors, an
ExecuTorch program with its cache inside) and hands the results here:

* :class:`Steps` collects the artifact's and PyTorch's logits at every teacher-forced KV-cache step (the
  prompt, then PyTorch's greedy tokens fed one at a time); ``token_agreement`` is measured on the
  decisive steps only (PyTorch's top-2 margin above twice the export's logit noise, see
  :mod:`lexiedge.export.agreement`), near-ties are counted apart;
* :func:`generation_report` compares greedy generation through the artifact's runtime with PyTorch's
  ``generate`` (:func:`reference_generation`), each up to its first EOS, and where one parts from the
  other, says whether it did at a near-tie or at a decisive step;
* :func:`enforce_lm` enforces the thresholds once the numbers are saved in the manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lexiedge.export.agreement import Agreement, measure_agreement, top2_margin
from lexiedge.export.causal_lm import LmSource
from lexiedge.export.errors import AgreementError, AtolError
from lexiedge_runtime.tasks.causal_lm import LOGITS, LmThresholds

__all__ = [
    "LmThresholds",
    "Steps",
    "divergence_margin",
    "enforce_lm",
    "generation_report",
    "reference_generation",
    "reference_logits",
]


def reference_generation(source: LmSource, prompt: list[int], new_tokens: int) -> list[int]:
    import torch

    with torch.no_grad():
        out = source.model.generate(
            torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            max_new_tokens=new_tokens, do_sample=False, eos_token_id=source.eos_ids(),
            pad_token_id=source.eos_ids()[0],
        )
    return [int(t) for t in out[0, len(prompt):]]


def reference_logits(source: LmSource, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        out = source.model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), use_cache=False)
    return out.logits.float().numpy()


@dataclass
class Steps:
    """The artifact's and PyTorch's logits at every teacher-forced KV-cache step, and the tokens expected."""

    artifact: list[np.ndarray] = field(default_factory=list)
    reference: list[np.ndarray] = field(default_factory=list)
    expected: list[np.ndarray] = field(default_factory=list)
    max_diff: float = 0.0

    def add(self, artifact: np.ndarray, reference: np.ndarray, expected: np.ndarray) -> None:
        self.max_diff = max(self.max_diff, float(np.abs(artifact - reference).max()))
        self.artifact.append(artifact)
        self.reference.append(reference)
        self.expected.append(expected)

    def agreement(self) -> Agreement | None:
        if not self.artifact:
            return None
        return measure_agreement(np.concatenate(self.reference), np.concatenate(self.artifact),
                                 expected=np.concatenate(self.expected))


def until_eos(tokens: list[int], eos: set[int]) -> list[int]:
    """``tokens`` up to their first EOS, without it."""
    for index, token in enumerate(tokens):
        if token in eos:
            return tokens[:index]
    return tokens


def generation_report(runtime: str, source: LmSource, prompts: list[list[int]], generations: list[list[int]],
                      new_tokens: int, tie_margin: float,
                      generate: Callable[[list[int], int], list[int]]) -> dict[str, Any]:
    """Greedy generation through the artifact's runtime (``generate(prompt_ids, new_tokens) -> ids``) against
    PyTorch's ``generations``; where one parts from the other, whether it did at a near-tie (a coin toss,
    PyTorch's top-2 margin at most ``tie_margin``) or at a decisive step.

    Both sides are compared up to their first EOS: PyTorch's ``generate`` keeps the EOS it stops at, while
    runtimes differ (ONNX Runtime GenAI's sequence and the runtime's generators end before it), and an
    answer that ends where PyTorch's ends is the same answer."""
    eos = set(source.eos_ids())
    identical, positions, matches, at_near_tie = 0, 0, 0, 0
    for prompt, generated in zip(prompts, generations):
        expected, produced = until_eos(generated, eos), until_eos(generate(prompt, new_tokens), eos)
        identical += int(produced == expected)
        positions += max(len(produced), len(expected))
        matches += sum(a == b for a, b in zip(produced, expected))
        if produced != expected:
            at_near_tie += int(divergence_margin(source, prompt, expected, produced) <= tie_margin)
    return {
        "runtime": runtime,
        "new_tokens": new_tokens,
        "identical": identical,
        "of": len(prompts),
        "diverged_at_near_tie": at_near_tie,
        "diverged_at_decisive_step": len(prompts) - identical - at_near_tie,
        "position_agreement": matches / positions if positions else None,
    }


def divergence_margin(source: LmSource, prompt: list[int], expected: list[int], produced: list[int]) -> float:
    """PyTorch's top-2 logit margin at the first position where two greedy generations part."""
    first = next((i for i, (a, b) in enumerate(zip(expected, produced)) if a != b), min(len(expected), len(produced)))
    ids = np.array([prompt + expected[:first]], dtype=np.int64)
    logits = reference_logits(source, ids, np.ones_like(ids))
    return float(top2_margin(logits[:, -1])[0])


def enforce_lm(report: dict[str, Any], target: str, thresholds: LmThresholds) -> None:
    if thresholds.atol is not None:
        for key, diff in report["max_abs_diff"].items():
            if diff > thresholds.atol:
                raise AtolError(target, LOGITS, f"max |difference| {diff:.3g} > atol {thresholds.atol:g} ({key})")
    decisive = report.get("decisive") or {}
    steps = report.get("teacher_forced_steps") or 0
    if steps and decisive["share"] < thresholds.min_decisive_share:
        raise AgreementError(
            target, LOGITS,
            f"only {decisive['share']:.0%} of {steps} KV-cache steps are decisive (< {thresholds.min_decisive_share:.0%}): "
            f"the export's logit noise (p99 {report['noise_logit_p99']:.3g}) is as large as PyTorch's top-2 margins",
        )
    agreement = decisive.get("agreement")
    if agreement is not None and agreement < thresholds.min_token_agreement:
        raise AgreementError(
            target, LOGITS,
            f"next-token agreement with PyTorch's greedy tokens {agreement:.2%} < {thresholds.min_token_agreement:.2%} "
            f"on {decisive['samples']} decisive KV-cache steps (fp32 margin above {report['tie_margin']:.3g}; "
            f"{report['near_ties']['samples']} near-ties not counted)",
        )
    generation = report.get("generation")
    if thresholds.identical_generation and generation and generation["diverged_at_decisive_step"]:
        raise AgreementError(
            target, LOGITS,
            f"greedy generation through {generation['runtime']} leaves PyTorch's at a decisive step on "
            f"{generation['diverged_at_decisive_step']} of {generation['of']} prompts "
            f"(position agreement {generation['position_agreement']:.2%})",
        )
