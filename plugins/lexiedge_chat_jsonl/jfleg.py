"""JFLEG (learner sentences + 4 human corrections) -> grammar-correction chat examples.

JFLEG is CC BY-NC-SA: it is converted on the user's machine from their copy, never bundled.
Files: ``<split>.src`` and the line-aligned ``<split>.ref0`` .. ``<split>.ref3``, PTB-tokenized
("do n't", "dog ."). The answer is the tutor's grammar JSON (``tutor.GrammarAnswer``):
the chosen correction, one error per word-level difference (with a rule-based explanation: the
corpus has none), and a score from how much of the sentence survives.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lexiedge.errors import UsageError
from lexiedge_chat_jsonl.examples import write_jsonl_atomic
from lexiedge_chat_jsonl.tutor import (
    GRAMMAR_PROMPTS,
    TUTOR_SYSTEM_PROMPT,
    GrammarAnswer,
    GrammarError,
    dump_answer,
)

JFLEG_SPLITS = ("dev", "test")
REFERENCES = 4

_NO_SPACE_BEFORE = re.compile(r" (?=[.,!?;:%)\]}]|n't\b|'(?:s|re|ve|m|ll|d)\b)", re.IGNORECASE)
_NO_SPACE_AFTER = re.compile(r"(?<=[(\[{$]) ")
_PUNCTUATION = re.compile(r"^[^\w\s]+$")


def detokenize(tokens: Sequence[str]) -> str:
    """PTB tokens -> ordinary text ("do n't go ." -> "don't go.")."""
    text = " ".join(tokens)
    text = _NO_SPACE_BEFORE.sub("", text)
    text = _NO_SPACE_AFTER.sub("", text)
    return text.replace("`` ", '"').replace(" ''", '"')


def _similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.split(), b.split(), autojunk=False).ratio()


def choose_reference(source: str, references: Sequence[str]) -> str:
    """The correction most annotators wrote; when they all differ, the one that agrees most with the
    others (a single annotator's odd rewrite, or a sentence left unfixed, loses), then the one
    closest to the learner's sentence (a tutor fixes errors rather than rewriting)."""
    normalised = [" ".join(ref.split()) for ref in references]
    counts = Counter(normalised)
    best = max(counts.values())
    candidates = list(dict.fromkeys(ref for ref in normalised if counts[ref] == best))

    def consensus(ref: str) -> tuple[float, float]:
        others = list(normalised)
        others.remove(ref)  # the other annotators (a duplicate of ref still counts as agreement)
        agreement = sum(_similarity(ref, other) for other in others) / max(len(others), 1)
        return round(agreement, 6), _similarity(ref, source)

    return max(candidates, key=consensus)


def _explain(original: Sequence[str], correction: Sequence[str]) -> str:
    before, after = detokenize(original), detokenize(correction)
    if all(_PUNCTUATION.match(t) for t in (*original, *correction)):
        if not original:
            return f"Punctuation: add '{after}' here."
        if not correction:
            return f"Punctuation: '{before}' is not needed here."
        return f"Punctuation: use '{after}' instead of '{before}'."
    if not original:
        return f"A word is missing here: add '{after}'."
    if not correction:
        return f"'{before}' is not needed here; remove it."
    if before.lower() == after.lower():
        return f"Capitalisation: write '{after}'."
    if sorted(t.lower() for t in original) == sorted(t.lower() for t in correction):
        return f"Word order: say '{after}'."
    if len(original) == 1 and len(correction) == 1:
        similarity = difflib.SequenceMatcher(None, before.lower(), after.lower()).ratio()
        if similarity >= 0.6:
            return f"Spelling or word form: '{before}' should be '{after}'."
    return f"Word choice or grammar: say '{after}' instead of '{before}'."


def grammar_answer(source: str, correction: str) -> GrammarAnswer:
    """The tutor's answer for a learner sentence and its correction (both PTB-tokenized)."""
    src, tgt = source.split(), correction.split()
    matcher = difflib.SequenceMatcher(None, src, tgt, autojunk=False)
    errors = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        explanation = _explain(src[i1:i2], tgt[j1:j2])
        # A lone insertion or deletion is shown with a neighbouring word, so "original" is never empty.
        if i1 == i2 or j1 == j2:
            if i1 > 0 and j1 > 0:
                i1, j1 = i1 - 1, j1 - 1
            elif i2 < len(src) and j2 < len(tgt):
                i2, j2 = i2 + 1, j2 + 1
        original, corrected = detokenize(src[i1:i2]), detokenize(tgt[j1:j2])
        if not original or not corrected:
            continue  # a whole sentence dropped or invented: the corrected sentence says it all
        errors.append(GrammarError(original=original, correction=corrected, explanation=explanation))
    score = round(100 * matcher.ratio()) if errors else 100
    return GrammarAnswer(task="grammar", corrected=detokenize(tgt), errors=errors, score=score)


@dataclass(frozen=True)
class JflegConversion:
    examples: int
    unchanged: int  # sentences the chosen reference leaves as they are
    errors: int


def read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise UsageError(f"{path}: missing; expected JFLEG's <split>.src and <split>.ref0..ref3 files")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UsageError(f"{path}: not UTF-8 text (line {line}, byte {column}); expected JFLEG's UTF-8 text files "
                         "(re-save the file as UTF-8)") from None


def jfleg_conversations(src_dir: Path, split: str) -> list[dict]:
    """Chat examples (``{"messages": [...]}``) for one JFLEG split."""
    if split not in JFLEG_SPLITS:
        raise UsageError(f"unknown JFLEG split {split!r}; expected one of {', '.join(JFLEG_SPLITS)}")
    sources = read_lines(src_dir / f"{split}.src")
    references = [read_lines(src_dir / f"{split}.ref{k}") for k in range(REFERENCES)]
    for k, refs in enumerate(references):
        if len(refs) != len(sources):
            raise UsageError(
                f"{src_dir / f'{split}.ref{k}'}: {len(refs)} lines, but {split}.src has {len(sources)}; "
                "the files must be line-aligned"
            )
    conversations = []
    for index, source in enumerate(sources):
        if not source.strip():
            continue
        answer = grammar_answer(source, choose_reference(source, [refs[index] for refs in references]))
        prompt = GRAMMAR_PROMPTS[index % len(GRAMMAR_PROMPTS)]
        conversations.append(
            {
                "messages": [
                    {"role": "system", "content": TUTOR_SYSTEM_PROMPT},
                    {"role": "user", "content": prompt.format(sentence=detokenize(source.split()))},
                    {"role": "assistant", "content": dump_answer(answer)},
                ]
            }
        )
    return conversations


def convert_jfleg(src_dir: Path, split: str, out: Path) -> JflegConversion:
    """Convert one split and write it to ``out`` (JSONL)."""
    conversations = jfleg_conversations(src_dir, split)
    write_jsonl_atomic(conversations, out)
    answers = [json.loads(c["messages"][-1]["content"]) for c in conversations]
    return JflegConversion(
        examples=len(conversations),
        unchanged=sum(1 for a in answers if not a["errors"]),
        errors=sum(len(a["errors"]) for a in answers),
    )
