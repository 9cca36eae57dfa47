"""Verification of an LLM artifact against the merged PyTorch model (fp32).

Three checks, on tutor prompts of several lengths (none of them a traced shape: the builder writes
the graph directly, and every axis must hold):

1. logits of a first pass with ONNX Runtime: batch 1, and batch 3 of different lengths (right-padded);
   a graph built with a pruned LM head (``last_logits_only``) has the last position's logits only,
   compared in the rows whose last position is a prompt token;
2. the KV-cache path: the prompt, then PyTorch's greedy tokens fed one at a time with
   ``past_key_values`` -> ``present``; logits and next-token agreement at every step (batch 1 and 3);
3. greedy generation through ONNX Runtime GenAI (its own KV buffer) against ``generate`` in PyTorch.

``token_agreement`` is the share of steps in (2) where the artifact's argmax is PyTorch's greedy
token; it is enforced on the decisive steps only (PyTorch's top-2 margin above twice the export's
logit noise, see :mod:`lexiedge.export.agreement`), near-ties are counted apart. ``generation`` counts
prompts whose whole generation in (3) is identical, and where one is not, whether it first left
PyTorch's at a near-tie (allowed: a coin toss) or at a decisive step (a real difference).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lexiedge.export import AgreementError, AtolError, ShapeError
from lexiedge.export.causal_lm import LmSource, padded, prompt_ids
from lexiedge.export.verify_lm import Steps, enforce_lm, generation_report, reference_generation, reference_logits
from lexiedge_onnx.genai import greedy_generate, load_genai_model
from lexiedge_onnx.runners import OrtRunner
from lexiedge_runtime.tasks.causal_lm import (
    ATTENTION_MASK,
    INPUT_IDS,
    LOGITS,
    PAST_PREFIX,
    LmThresholds,
    present_name,
)

__all__ = ["KvDecoder", "LmThresholds", "enforce_lm", "verify_lm"]


class KvDecoder:
    """A raw ONNX Runtime session over a GenAI decoder: explicit past/present KV tensors."""

    def __init__(self, runner: OrtRunner) -> None:
        self.runner = runner
        inputs = {i.name: i for i in runner.session.get_inputs()}
        self.past_names = sorted(n for n in inputs if n.startswith(PAST_PREFIX))
        if INPUT_IDS not in inputs or not self.past_names:
            raise ShapeError("llm", INPUT_IDS, f"not a decoder with a KV cache (inputs: {sorted(inputs)})")
        shape = inputs[self.past_names[0]].shape  # (batch, kv_heads, past, head_size); head_size may be symbolic
        self.kv_heads = shape[1]
        self.head_size = shape[3] if isinstance(shape[3], int) else None
        self.dtype = np.float16 if "float16" in inputs[self.past_names[0]].type else np.float32

    def with_head_size(self, head_size: int) -> KvDecoder:
        self.head_size = self.head_size or head_size
        return self

    def empty(self, batch: int) -> dict[str, np.ndarray]:
        return {name: np.zeros((batch, self.kv_heads, 0, self.head_size), self.dtype) for name in self.past_names}

    def __call__(self, ids: np.ndarray, mask: np.ndarray, past: dict[str, np.ndarray]) -> tuple[np.ndarray, dict]:
        feeds = {INPUT_IDS: ids.astype(np.int64), ATTENTION_MASK: mask.astype(np.int64), **past}
        outputs = self.runner(feeds)
        present = {name: outputs[present_name(name)] for name in self.past_names}
        return outputs[LOGITS].astype(np.float32), present


def _guard(target: str, what: str, call):
    try:
        return call()
    except (ShapeError, AtolError, AgreementError):
        raise
    except Exception as exc:  # the runtime refusing an input shape is the failure we look for
        said = " ".join(str(exc).split()) or type(exc).__name__  # one line; ORT puts the shapes on later lines
        raise ShapeError(target, LOGITS, f"the graph fails on {what}: {said[:300]}") from None


def _decode(target: str, what: str, decoder: KvDecoder, ids: np.ndarray, mask: np.ndarray,
            past: dict[str, np.ndarray]) -> tuple[np.ndarray, dict]:
    """One decoder call; a refused input shape is a ShapeError, non-finite logits an AtolError."""
    logits, present = _guard(target, what, lambda: decoder(ids, mask, past))
    attended = np.asarray(mask)[:, -logits.shape[1]:].astype(bool)  # right padding may hold anything
    if not np.isfinite(logits[attended]).all():  # NaN would also slip through every "diff > atol" test
        raise AtolError(target, LOGITS, f"non-finite values (NaN or inf) on {what}")
    return logits, present


def verify_lm(runner: OrtRunner, artifact: Path, source: LmSource, target: str, *, prompts: int, new_tokens: int,
              head_size: int, genai: bool = True, last_logits_only: bool = False) -> dict[str, Any]:
    """Compare the artifact's graph (``runner``) and the artifact through ORT GenAI with PyTorch.

    Returns the numbers; thresholds are enforced by :func:`enforce_lm` once they are saved.
    """
    decoder = KvDecoder(runner).with_head_size(head_size)
    all_prompts = prompt_ids(source, max(prompts, 4))
    prefill_diff = _first_pass_diff(decoder, source, target, all_prompts, last_logits_only)
    generations = [reference_generation(source, p, new_tokens) for p in all_prompts[:prompts]]
    steps = _teacher_forced_steps(decoder, source, target, all_prompts, generations, prompts)
    agreement = steps.agreement()
    report: dict[str, Any] = {
        "reference": f"pytorch fp32 ({source.model_dir})",
        "prompts": prompts,
        "prompt_lengths": [len(p) for p in all_prompts[:prompts]],
        "batch_sizes": [1, 3],
        "max_abs_diff": {"logits_first_pass": prefill_diff, "logits_kv_decode": steps.max_diff},
        "token_agreement": agreement.overall if agreement else None,
        "teacher_forced_steps": agreement.samples if agreement else 0,
        **(agreement.report() if agreement else {}),
    }
    if genai:
        tie_margin = agreement.tie_margin if agreement else 0.0
        report["generation"] = _genai_generation(artifact, source, target, all_prompts[:prompts], generations,
                                                 new_tokens, tie_margin)
    return report


def _first_pass_diff(decoder: KvDecoder, source: LmSource, target: str,
                     all_prompts: list[list[int]], last_logits_only: bool = False) -> float:
    """Check 1: the largest |logit difference| of a first pass, batch 1 and a right-padded batch 3 of three
    lengths (padding positions aside); a wrong output shape is a ShapeError. ``last_logits_only``: the
    graph's logits are the last position's (pruned LM head), compared where that position is no padding."""
    pad = source.eos_ids()[0]
    vocab = int(source.config.get("vocab_size", 0))
    diff = 0.0
    for group in ([all_prompts[0]], all_prompts[1:4]):
        ids, mask = padded(group, pad)
        what = f"a first pass of batch {len(group)}, lengths {[len(p) for p in group]}"
        logits, _ = _decode(target, what, decoder, ids, mask, decoder.empty(len(group)))
        expected = (len(group), 1) if last_logits_only else ids.shape
        if logits.shape[:2] != expected or (vocab and logits.shape[2] != vocab):
            raise ShapeError(target, LOGITS, f"shape {logits.shape} on {what}; expected {(*expected, vocab)}")
        reference = reference_logits(source, ids, mask)
        valid = mask.astype(bool)
        if last_logits_only:
            reference, valid = reference[:, -1:], valid[:, -1:]
        diff = max(diff, float(np.abs(logits[valid] - reference[valid]).max()))
    return diff


def _teacher_forced_steps(decoder: KvDecoder, source: LmSource, target: str, all_prompts: list[list[int]],
                          generations: list[list[int]], prompts: int) -> Steps:
    """Check 2: the KV-cache path, fed PyTorch's greedy tokens one at a time: batch 1 per prompt, then a
    batch of 3 prompts cut to one length (with PyTorch's greedy tokens for those exact rows)."""
    steps = Steps()
    for group in [[i] for i in range(prompts)] + [list(range(min(3, prompts)))]:
        length = min(len(all_prompts[i]) for i in group)
        rows = [all_prompts[i][:length] for i in group]
        if len(group) > 1:  # truncated prompts: PyTorch's greedy tokens for these exact rows
            rows_gen = [reference_generation(source, r, 4) for r in rows]
        else:
            rows_gen = [generations[group[0]]]
        follow = min(len(g) for g in rows_gen)
        if follow == 0:
            continue
        full = np.array([r + g[:follow] for r, g in zip(rows, rows_gen)], dtype=np.int64)
        reference = reference_logits(source, full, np.ones_like(full))
        for step, logits in enumerate(_kv_decode(decoder, target, full, length, follow)):
            steps.add(logits, reference[:, length - 1 + step], full[:, length + step])
    return steps


def _kv_decode(decoder: KvDecoder, target: str, full: np.ndarray, length: int,
               follow: int) -> list[np.ndarray]:
    """The last-position logits of a prefill of ``full[:, :length]`` and of each of the next ``follow - 1``
    tokens fed one at a time through the KV cache."""
    batch = len(full)
    what = f"KV-cache decoding of batch {batch} after {length} prompt tokens"
    prompt, mask = full[:, :length], np.ones((batch, length))
    logits, past = _decode(target, what, decoder, prompt, mask, decoder.empty(batch))
    step_logits = [logits[:, -1]]
    for step in range(follow - 1):
        position = length + step
        token = full[:, position : position + 1]
        logits, past = _decode(target, what, decoder, token, np.ones((batch, position + 1)), past)
        step_logits.append(logits[:, -1])
    return step_logits


def _genai_generation(artifact: Path, source: LmSource, target: str, prompts: list[list[int]],
                      generations: list[list[int]], new_tokens: int, tie_margin: float) -> dict[str, Any]:
    """Check 3: greedy generation through ONNX Runtime GenAI against PyTorch's."""
    model = _guard(target, "loading with onnxruntime-genai", lambda: load_genai_model(artifact))
    return generation_report("onnxruntime-genai", source, prompts, generations, new_tokens, tie_margin,
                             lambda prompt, tokens: greedy_generate(model, prompt, tokens))
