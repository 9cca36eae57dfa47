"""Generate the bundled English-tutor sample set (data/tutor_sample.jsonl), deterministically.

    python tools/make_tutor_sample.py                    # rewrite the bundled file
    python tools/make_tutor_sample.py --out x.jsonl --seed 1

Everything comes from the word lists and error patterns in tutor_sample/grammar.py, vocabulary.py
and fluency.py (written for this project, no external data). Every conversation is
system (the tutor prompt) -> user (a learner's question) -> assistant (one JSON answer that
validates against tutor.py's schemas).
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lexiedge_chat_jsonl.examples import write_jsonl_atomic
from tutor_sample.fluency import DIALOGUE_PROMPTS, FLUENCY
from tutor_sample.fluency import PROMPTS as FLUENCY_PROMPTS
from tutor_sample.grammar import FAMILIES, Sentence
from tutor_sample.vocabulary import CONTEXT_PROMPTS, WORDS
from tutor_sample.vocabulary import PROMPTS as VOCABULARY_PROMPTS
from lexiedge_chat_jsonl.tutor import (
    GRAMMAR_PROMPTS,
    TUTOR_SYSTEM_PROMPT,
    FluencyAnswer,
    GrammarAnswer,
    GrammarError,
    VocabularyAnswer,
    dump_answer,
)

DEFAULT_SEED = 20250101
GRAMMAR_SINGLE = 150  # one sentence, one error
GRAMMAR_DOUBLE = 45  # two sentences, two errors of different kinds
GRAMMAR_CORRECT = 30  # already correct: the tutor must not invent errors
VOCABULARY = 100
FLUENCY_EXAMPLES = 100
MIN_SCORE = 20


def conversation(user: str, answer: str) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": TUTOR_SYSTEM_PROMPT},
            {"role": "user", "content": user},
            {"role": "assistant", "content": answer},
        ]
    }


def grammar_answer(sentences: list[Sentence], *, correct: bool = False) -> tuple[str, GrammarAnswer]:
    """(learner text, answer) for one or more sentences; ``correct`` shows the corrected text as-is."""
    corrected = " ".join(s.right() for s in sentences)
    if correct:
        return corrected, GrammarAnswer(task="grammar", corrected=corrected, errors=[], score=100)
    fixes = [fix for s in sentences for fix in s.fixes]
    errors = [GrammarError(original=f.wrong, correction=f.right, explanation=f.explanation) for f in fixes]
    score = max(MIN_SCORE, 100 - sum(f.weight for f in fixes))
    learner = " ".join(s.wrong() for s in sentences)
    return learner, GrammarAnswer(task="grammar", corrected=corrected, errors=errors, score=score)


def _family_cycle(rng: random.Random) -> Iterator[str]:
    """Family names in shuffled rounds, so every kind of error is equally common."""
    names = sorted(FAMILIES)
    while True:
        rng.shuffle(names)
        yield from names


def grammar_examples(rng: random.Random) -> list[dict[str, Any]]:
    seen: set[str] = set()
    examples: list[dict[str, Any]] = []
    families = _family_cycle(rng)

    def add(sentences: list[Sentence], correct: bool = False) -> bool:
        learner, answer = grammar_answer(sentences, correct=correct)
        if learner in seen:
            return False
        seen.add(learner)
        prompt = rng.choice(GRAMMAR_PROMPTS).format(sentence=learner)
        examples.append(conversation(prompt, dump_answer(answer)))
        return True

    for count, parts, correct in (
        (GRAMMAR_SINGLE, 1, False),
        (GRAMMAR_DOUBLE, 2, False),
        (GRAMMAR_CORRECT, 1, True),
    ):
        added = 0
        for _ in range(count * 50):  # bounded: fixed-phrase families run out of new sentences
            if added == count:
                break
            names = [next(families) for _ in range(parts)]
            if len(set(names)) < parts:
                continue
            added += add([FAMILIES[name](rng) for name in names], correct)
        if added < count:
            raise RuntimeError(f"only {added} distinct grammar examples of {count} with {parts} part(s)")
    return examples


def vocabulary_examples(rng: random.Random) -> list[dict[str, Any]]:
    """Every word once with a plain question, then words again met in context, up to ``VOCABULARY``."""
    examples = []
    plain = list(WORDS)
    in_context = rng.sample(WORDS, k=VOCABULARY - len(WORDS))
    for entry in plain:
        prompt = rng.choice(VOCABULARY_PROMPTS).format(word=entry.word)
        examples.append((prompt, entry, entry.examples[0]))
    for entry in in_context:
        # The learner met the word in one example sentence; the answer teaches it with the other.
        prompt = rng.choice(CONTEXT_PROMPTS).format(word=entry.word, context=entry.examples[1])
        examples.append((prompt, entry, entry.examples[0]))
    return [
        conversation(
            prompt,
            dump_answer(
                VocabularyAnswer(
                    task="vocabulary",
                    word=entry.word,
                    part_of_speech=entry.part_of_speech,
                    definition=entry.definition,
                    example=example,
                    level=entry.level,  # type: ignore[arg-type]
                )
            ),
        )
        for prompt, entry, example in examples
    ]


def fluency_examples(rng: random.Random) -> list[dict[str, Any]]:
    """Every phrase (each slot value) once; dialogue phrases a second time, asked with their situation."""
    variants = [
        (
            phrase,
            *(
                text.format(x=value) if value else text
                for text in (phrase.said, phrase.feedback, phrase.suggestion)
            ),
        )
        for phrase in FLUENCY
        for value in phrase.slots or ("",)
    ]
    chosen = [(rng.choice(FLUENCY_PROMPTS).format(said=variant[1]), variant) for variant in variants]
    dialogue = [v for v in variants if v[0].situation]
    for variant in rng.sample(dialogue, k=min(len(dialogue), FLUENCY_EXAMPLES - len(chosen))):
        chosen.append(
            (rng.choice(DIALOGUE_PROMPTS).format(situation=variant[0].situation, said=variant[1]), variant)
        )
    if len(chosen) < FLUENCY_EXAMPLES:
        raise RuntimeError(f"only {len(chosen)} fluency examples; write more phrases in tools/tutor_sample/fluency.py")
    return [
        conversation(
            prompt,
            dump_answer(
                FluencyAnswer(task="fluency", feedback=feedback, suggestion=suggestion, score=phrase.score)
            ),
        )
        for prompt, (phrase, _said, feedback, suggestion) in chosen[:FLUENCY_EXAMPLES]
    ]


def build_sample(seed: int = DEFAULT_SEED) -> list[dict[str, Any]]:
    """The whole sample set, in a seeded shuffled order."""
    rng = random.Random(seed)
    examples = grammar_examples(rng) + vocabulary_examples(rng) + fluency_examples(rng)
    rng.shuffle(examples)
    return examples


def main(argv: list[str] | None = None) -> None:
    from lexiedge_chat_jsonl.dataset import SAMPLE_PATH

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=SAMPLE_PATH, help="where to write (default: the bundled file)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    examples = build_sample(args.seed)
    write_jsonl_atomic(examples, args.out)
    print(f"wrote {len(examples)} examples to {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
