"""The bundled tutor sample set: every line parses, every answer is valid tutor JSON, the file is reproducible."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from lexiedge_chat_jsonl import SAMPLE_PATH, load_examples
from make_tutor_sample import build_sample, main  # tools/ (pyproject: pytest's pythonpath)
from lexiedge_chat_jsonl.tutor import (
    TUTOR_SYSTEM_PROMPT,
    FluencyAnswer,
    GrammarAnswer,
    VocabularyAnswer,
    parse_answer,
)


@pytest.fixture(scope="module")
def sample_lines() -> list[dict]:
    return [json.loads(line) for line in SAMPLE_PATH.read_text(encoding="utf-8").splitlines()]


def test_the_sample_set_is_bundled_small_and_every_line_is_an_example(sample_lines) -> None:
    assert SAMPLE_PATH.stat().st_size < 500 * 1024
    examples, bad = load_examples(SAMPLE_PATH)
    assert bad == [] and 300 <= len(examples) <= 500 and len(examples) == len(sample_lines)
    for example in examples:
        roles = [m.role for m in example.messages]
        assert roles == ["system", "user", "assistant"], example.line
        assert example.messages[0].content == TUTOR_SYSTEM_PROMPT
    users = [e.messages[1].content for e in examples]
    assert len(set(users)) == len(users), "no learner question twice"


def test_every_answer_is_valid_json_with_the_schema_of_its_task(sample_lines) -> None:
    tasks: Counter = Counter()
    for number, record in enumerate(sample_lines, start=1):
        user, answer_text = record["messages"][1]["content"], record["messages"][2]["content"]
        answer = parse_answer(answer_text)  # raises on invalid JSON or a schema violation
        tasks[answer.task] += 1
        if isinstance(answer, GrammarAnswer):
            # The learner's words are in the question and the corrections in the corrected sentence.
            for error in answer.errors:
                assert error.original in user and error.correction in answer.corrected, number
            assert (answer.score == 100) == (not answer.errors), number
            assert (answer.corrected in user) == (not answer.errors), number
        elif isinstance(answer, VocabularyAnswer):
            assert answer.word in user, number
        else:
            assert isinstance(answer, FluencyAnswer) and answer.score < 100
    assert set(tasks) == {"grammar", "vocabulary", "fluency"}
    assert min(tasks.values()) >= 90, tasks


def test_invalid_answers_are_rejected() -> None:
    with pytest.raises(ValueError):
        parse_answer('{"task": "grammar", "corrected": "x", "errors": [], "score": 101}')
    with pytest.raises(ValueError):
        parse_answer('{"task": "vocabulary", "word": "x", "definition": "y", "example": "z", "level": "B1"}')
    with pytest.raises(ValueError):
        parse_answer('{"task": "fluency", "feedback": "f", "suggestion": "s", "score": 50, "extra": 1}')
    with pytest.raises(ValueError):
        parse_answer("not json")


def test_the_bundled_file_is_what_make_sample_writes(tmp_path) -> None:
    out = tmp_path / "sample.jsonl"
    main(["--out", str(out)])
    assert out.read_bytes() == SAMPLE_PATH.read_bytes()
    assert build_sample(seed=1) != build_sample()  # the seed matters; the default one is deterministic
