"""JFLEG -> tutor grammar examples, on the real files in ../shared/data/jfleg (skipped when absent)."""

from __future__ import annotations

import pytest

from lexiedge_chat_jsonl import load_examples
from lexiedge_chat_jsonl.jfleg import choose_reference, detokenize, grammar_answer
from lexiedge_chat_jsonl.tutor import GrammarAnswer, parse_answer


@pytest.fixture
def jfleg_dir(shared_data):
    directory = shared_data / "jfleg"
    if not (directory / "dev.src").is_file():
        pytest.skip(f"JFLEG is not in {directory} (see ../shared/data/README.md)")
    return directory


def test_detokenize_and_reference_choice() -> None:
    assert detokenize(["We", "do", "n't", "know", ",", "it", "'s", "(", "maybe", ")", "50", "%", "."]) == "We don't know, it's (maybe) 50%."
    refs = ["A b c .", "A  b c .", "X y z .", "A b d ."]
    assert choose_reference("A b c", refs) == "A b c ."  # written by two annotators
    # All different: the one closest to the others wins over a lone rewrite or an unfixed copy.
    assert (
        choose_reference("he go home .", ["he go home .", "He goes home .", "He goes home now .", "Go ."])
        == "He goes home ."
    )


def test_grammar_answer_lists_each_difference() -> None:
    answer = grammar_answer("She go to school every days .", "She goes to school every day .")
    assert answer.corrected == "She goes to school every day."
    assert [(e.original, e.correction) for e in answer.errors] == [("go", "goes"), ("days", "day")]
    assert 0 < answer.score < 100
    missing = grammar_answer("I went school .", "I went to school .")
    assert [(e.original, e.correction) for e in missing.errors] == [("went", "went to")]
    assert "missing" in missing.errors[0].explanation
    unchanged = grammar_answer("It is fine .", "It is fine .")
    assert unchanged.errors == [] and unchanged.score == 100


@pytest.mark.shared_data
def test_jfleg_dev_converts_to_valid_tutor_examples(cli, jfleg_dir, tmp_path) -> None:
    out = tmp_path / "jfleg-dev.jsonl"
    result = cli("data", "jfleg", "--src", str(jfleg_dir), "--split", "dev", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    sources = (jfleg_dir / "dev.src").read_text(encoding="utf-8").splitlines()
    examples, bad = load_examples(out)
    assert bad == [] and len(examples) == len(sources) == 754
    assert f"wrote {len(examples)} grammar examples" in result.stdout

    references = [(jfleg_dir / f"dev.ref{k}").read_text(encoding="utf-8").splitlines() for k in range(4)]
    changed = 0
    for index, example in enumerate(examples):
        assert [m.role for m in example.messages] == ["system", "user", "assistant"]
        assert detokenize(sources[index].split()) in example.messages[1].content  # line-aligned
        answer = parse_answer(example.messages[2].content)
        assert isinstance(answer, GrammarAnswer)
        # The corrected sentence is one of the four human corrections of that line.
        assert answer.corrected in {detokenize(refs[index].split()) for refs in references}
        changed += bool(answer.errors)
    assert changed > len(examples) * 0.7  # most learner sentences need a correction

    again = cli("data", "jfleg", "--src", str(jfleg_dir), "--split", "dev", "--out", str(out))
    assert again.exit_code == 2 and "exists" in again.stderr


def test_jfleg_bad_arguments_are_one_line_errors(cli, tmp_path) -> None:
    (tmp_path / "dev.src").write_text("a b .\nc d .\n", encoding="utf-8")
    for k in range(4):
        (tmp_path / f"dev.ref{k}").write_text("a b .\n" if k == 3 else "a b .\nc d .\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    misaligned = cli("data", "jfleg", "--src", str(tmp_path), "--split", "dev", "--out", str(out))
    assert misaligned.exit_code == 2 and "dev.ref3: 1 lines, but dev.src has 2" in misaligned.stderr
    assert not out.exists()  # nothing half-written
    split = cli("data", "jfleg", "--src", str(tmp_path), "--split", "train", "--out", str(out))
    assert split.exit_code == 2 and "unknown JFLEG split 'train'" in split.stderr
    missing = cli("data", "jfleg", "--src", str(tmp_path / "nope"), "--split", "dev", "--out", str(out))
    assert missing.exit_code == 2 and "not a directory" in missing.stderr
