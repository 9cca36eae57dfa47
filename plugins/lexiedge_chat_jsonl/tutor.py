"""The English tutor's answer format: one JSON object per assistant turn, typed by its ``task``.

An app parses the model's answer with :func:`parse_answer`; the bundled sample set and the JFLEG
conversion write answers that validate against these models, so the fine-tuned model learns to
emit exactly what the app reads.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

TUTOR_SYSTEM_PROMPT = (
    "You are an English tutor for learners. Reply with one JSON object and nothing else. "
    'Grammar: {"task":"grammar","corrected","errors":[{"original","correction","explanation"}],'
    '"score":0-100}. '
    'Vocabulary: {"task":"vocabulary","word","part_of_speech","definition","example","level":"A1"-"C2"}. '
    'Fluency: {"task":"fluency","feedback","suggestion","score":0-100}.'
)

# How learners ask for a correction (the sample set and the JFLEG conversion share them).
GRAMMAR_PROMPTS = (
    "Please correct my grammar: {sentence}",
    "Can you check this sentence? {sentence}",
    "Is this correct English? {sentence}",
    "Fix the mistakes in this sentence: {sentence}",
    'I wrote this for my English class: "{sentence}" Is it right?',
    "Check my grammar, please:\n{sentence}",
    "Are there any mistakes here? {sentence}",
    "Correct this: {sentence}",
)

CEFR_LEVELS = ("A1", "A2", "B1", "B2", "C1", "C2")
TASKS = ("grammar", "vocabulary", "fluency")


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GrammarError(_Answer):
    original: str = Field(
        min_length=1, description="the learner's words (with a neighbour when a word is missing)"
    )
    correction: str = Field(min_length=1)
    explanation: str = Field(min_length=1)


class GrammarAnswer(_Answer):
    task: Literal["grammar"]
    corrected: str = Field(min_length=1, description="the whole sentence, corrected")
    errors: list[GrammarError] = Field(description="empty when the sentence was already correct")
    score: int = Field(ge=0, le=100)


class VocabularyAnswer(_Answer):
    task: Literal["vocabulary"]
    word: str = Field(min_length=1)
    part_of_speech: str = Field(min_length=1)
    definition: str = Field(min_length=1)
    example: str = Field(min_length=1)
    level: Literal["A1", "A2", "B1", "B2", "C1", "C2"]


class FluencyAnswer(_Answer):
    task: Literal["fluency"]
    feedback: str = Field(min_length=1)
    suggestion: str = Field(min_length=1, description="a more natural way to say it")
    score: int = Field(ge=0, le=100)


TutorAnswer = Annotated[GrammarAnswer | VocabularyAnswer | FluencyAnswer, Field(discriminator="task")]
_ANSWER_ADAPTER: TypeAdapter[TutorAnswer] = TypeAdapter(TutorAnswer)


def parse_answer(text: str) -> GrammarAnswer | VocabularyAnswer | FluencyAnswer:
    """Parse and validate one assistant answer; raises ``ValueError`` (pydantic's or json's) when invalid."""
    return _ANSWER_ADAPTER.validate_python(json.loads(text))


def dump_answer(answer: GrammarAnswer | VocabularyAnswer | FluencyAnswer) -> str:
    """The compact one-line JSON the tutor is trained to write (keys in schema order)."""
    return json.dumps(answer.model_dump(), ensure_ascii=False)
