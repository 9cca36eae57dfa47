"""The `tutor-jfleg` evaluator: the tutor's grammar corrections of JFLEG sentences against their four
human references (BLEU, chrF, exact match, word edit distance: :mod:`lexiedge_chat_jsonl.gec_scores`).

Each learner sentence is asked as the app asks it (the tutor's system prompt, one of its grammar
prompts, greedy decoding), and the ``corrected`` field of the tutor's JSON answer is scored; an
answer that is not the tutor's JSON is scored as its raw text, and the share of valid answers is
reported. A run is scored from its merged model in PyTorch (transformers ``generate``), an artifact
through :mod:`lexiedge.runtime`, so the rows of one table show what each export costs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from lexiedge.api import EvalRequest, EvalResult, EvaluatorPlugin
from lexiedge.errors import UsageError
from lexiedge_chat_jsonl.gec_scores import score_corrections
from lexiedge_chat_jsonl.jfleg import JFLEG_SPLITS, REFERENCES, read_lines, detokenize
from lexiedge_chat_jsonl.tutor import GRAMMAR_PROMPTS, TUTOR_SYSTEM_PROMPT
from lexiedge_runtime.tasks import causal_lm as lm_task

MAX_NEW_TOKENS = 160  # the grammar JSON of a long sentence with a few errors fits; "corrected" comes first
RESULTS_JSONL = "corrections.jsonl"
TABLE_METRICS = ("bleu", "chrf", "exact_match", "edit_distance", "valid_answers")
_CORRECTED = re.compile(r'"corrected"\s*:\s*"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sentence:
    source: str  # the learner's sentence, detokenized as a learner types it
    references: list[str]  # the four human corrections, detokenized


def read_jfleg(folder: Path, split: str, limit: int | None = None) -> list[Sentence]:
    """JFLEG's ``<split>.src`` and ``<split>.ref0..3`` as plain-text sentences (first ``limit``)."""
    if split not in JFLEG_SPLITS:
        raise UsageError(f"--split {split!r}: JFLEG has {', '.join(JFLEG_SPLITS)}")
    if not folder.is_dir():
        raise UsageError(f"--data {folder}: expected the JFLEG folder ({split}.src, {split}.ref0..ref3)")
    sources = read_lines(folder / f"{split}.src")
    references = [read_lines(folder / f"{split}.ref{k}") for k in range(REFERENCES)]
    if any(len(refs) != len(sources) for refs in references):
        raise UsageError(f"{folder}: {split}.src and {split}.ref0..ref3 must have the same number of lines")
    sentences = [
        Sentence(detokenize(src.split()), [detokenize(refs[i].split()) for refs in references])
        for i, src in enumerate(sources)
        if src.strip()
    ]
    return sentences[:limit] if limit is not None else sentences


def messages_for(index: int, sentence: Sentence) -> list[dict[str, str]]:
    prompt = GRAMMAR_PROMPTS[index % len(GRAMMAR_PROMPTS)]  # the prompts the tutor was trained on, in turn
    return [{"role": "system", "content": TUTOR_SYSTEM_PROMPT},
            {"role": "user", "content": prompt.format(sentence=sentence.source)}]


def corrected_text(answer: str) -> tuple[str, bool]:
    """The ``corrected`` sentence of a tutor answer, and whether the answer was the tutor's JSON."""
    try:
        parsed = json.loads(answer)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("corrected"), str):
        return parsed["corrected"], True
    match = _CORRECTED.search(answer)  # a truncated or slightly broken answer may still hold the sentence
    if match:
        try:
            return json.loads(f'"{match.group(1)}"'), False
        except ValueError:
            pass
    return answer.strip(), False


class TutorJflegEvaluator(EvaluatorPlugin):
    name: ClassVar[str] = "tutor-jfleg"
    description: ClassVar[str] = "grammar corrections of JFLEG sentences vs 4 references: BLEU, chrF, exact match, edits"
    tasks: ClassVar[frozenset[str]] = frozenset({lm_task.NAME})
    primary_metric: ClassVar[str] = lm_task.METRIC.name

    def evaluate_run(self, request: EvalRequest) -> EvalResult:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from lexiedge.rundir import MERGED_DIR, merged_dir

        merged = merged_dir(request.path)
        if not (merged / "config.json").is_file():
            raise UsageError(f"{request.path} has no {MERGED_DIR}/ model; run `lexiedge merge {request.path}` first")
        tokenizer = AutoTokenizer.from_pretrained(merged)
        model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
        eos = model.generation_config.eos_token_id

        def reply(messages: list[dict[str, str]]) -> str:
            ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                return_dict=True)
            with torch.no_grad():
                out = model.generate(**ids, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, eos_token_id=eos,
                                     pad_token_id=tokenizer.pad_token_id or (eos[0] if isinstance(eos, list) else eos))
            return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)

        return self._score(f"pytorch ({MERGED_DIR})", "run", request, reply)

    def evaluate_artifact(self, request: EvalRequest) -> EvalResult:
        from lexiedge.runtime import TextGenerator, load

        model = load(request.path, "cpu")
        if not isinstance(model, TextGenerator):
            raise UsageError(f"{request.path}: not a text-generation artifact")

        def reply(messages: list[dict[str, str]]) -> str:
            return model.generate(messages, max_new_tokens=MAX_NEW_TOKENS, temperature=0.0).text

        return self._score(model.manifest.get("target") or request.path.name, "artifact", request, reply)

    def _score(self, name: str, kind: str, request: EvalRequest, reply: Callable[[list[dict[str, str]]], str]) -> EvalResult:
        if request.data is None:
            raise UsageError("pass --data JFLEG_FOLDER (dev.src/test.src with .ref0..ref3 beside them)")
        sentences = read_jfleg(request.data, request.split, request.limit)
        hypotheses, valid = [], 0
        path = request.out_dir / RESULTS_JSONL
        with path.open("w", encoding="utf-8") as out:
            for index, sentence in enumerate(sentences):
                answer = reply(messages_for(index, sentence))
                corrected, is_valid = corrected_text(answer)
                hypotheses.append(corrected)
                valid += is_valid
                out.write(json.dumps({"source": sentence.source, "answer": answer, "corrected": corrected,
                                      "valid": is_valid, "references": sentence.references}) + "\n")
        scores = score_corrections(hypotheses, [s.references for s in sentences])
        scores["valid_answers"] = valid / len(sentences)
        metrics = {key: float(scores[key]) for key in TABLE_METRICS}
        metrics["sentences"] = scores["sentences"]
        return EvalResult(name, kind, metrics, details=scores, files={"corrections_jsonl": str(path)})
