"""Reading chat JSONL: the three line formats (chat, ShareGPT, Alpaca), bad lines reported by number and skipped, all-bad is an error."""

from __future__ import annotations

import pytest

from lexiedge.errors import LexiedgeError
from lexiedge_chat_jsonl import load_examples
from lexiedge_chat_jsonl.examples import describe_bad_lines, require_examples

CHAT = {
    "messages": [
        {"role": "system", "content": "You are a tutor."},
        {"role": "user", "content": "Correct: she go home."},
        {"role": "assistant", "content": "She goes home."},
    ]
}
INSTRUCTION = {"instruction": "Correct the sentence.", "input": "He have a cat.", "output": "He has a cat."}


def test_both_formats_become_conversations(write_jsonl) -> None:
    no_input = {"instruction": "Define 'tidy'.", "output": "Neat, with everything in its place."}
    path = write_jsonl([CHAT, "", INSTRUCTION, no_input])
    examples, bad = load_examples(path)
    assert bad == []
    assert [e.line for e in examples] == [1, 3, 4]  # the blank line 2 is neither an example nor bad
    assert examples[0].as_dicts() == CHAT["messages"]
    assert examples[1].as_dicts() == [
        {"role": "user", "content": "Correct the sentence.\n\nHe have a cat."},
        {"role": "assistant", "content": "He has a cat."},
    ]
    assert [m.role for m in examples[2].messages] == ["user", "assistant"]
    assert examples[2].messages[0].content == "Define 'tidy'."


def test_sharegpt_conversations_become_the_same_chat(write_jsonl) -> None:
    sharegpt = {"id": "x1", "conversations": [{"from": "system", "value": "You are a tutor."},
                                              {"from": "human", "value": "Correct: she go home."},
                                              {"from": "gpt", "value": "She goes home."}]}
    bad_speaker = {"conversations": [{"from": "teacher", "value": "x"}, {"from": "gpt", "value": "y"}]}
    no_value = {"conversations": [{"from": "human"}, {"from": "gpt", "value": "y"}]}
    examples, bad = load_examples(write_jsonl([sharegpt, bad_speaker, no_value, {"conversations": "hi"}]))
    assert [e.line for e in examples] == [1]
    assert examples[0].as_dicts() == CHAT["messages"]  # the same conversation as the OpenAI-style line
    reasons = {b.line: b.reason for b in bad}
    assert "from 'teacher'; expected one of system, human, gpt" in reasons[2]
    assert "conversations[0].value must be a string" in reasons[3]
    assert '"conversations" must be a non-empty list' in reasons[4]


def test_system_prompt_is_prepended_only_when_missing(write_jsonl) -> None:
    examples, _ = load_examples(write_jsonl([CHAT, INSTRUCTION]))
    with_own, without = (e.with_system_prompt("Be brief.") for e in examples)
    assert with_own.messages == examples[0].messages
    assert [m.role for m in without.messages] == ["system", "user", "assistant"]
    assert without.messages[0].content == "Be brief."


def test_bad_lines_are_skipped_and_reported_with_line_numbers(write_jsonl) -> None:
    lines = [
        CHAT,  # 1 ok
        '{"messages": [ {"role": "user"',  # 2 invalid JSON
        {"messages": [{"role": "teacher", "content": "x"}, {"role": "assistant", "content": "y"}]},  # 3
        {"messages": [{"content": "x"}, {"role": "assistant", "content": "y"}]},  # 4 no role
        {"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "y"}]},  # 5 empty
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]},  # 6 no answer
        {"instruction": "Do it.", "output": ""},  # 7 empty output
        [1, 2],  # 8 not an object
        INSTRUCTION,  # 9 ok
        {"messages": [{"role": "assistant", "content": "hello"}, {"role": "user", "content": "hi"}]},  # 10
    ]
    examples, bad = load_examples(write_jsonl(lines))
    assert [e.line for e in examples] == [1, 9]
    reasons = {b.line: b.reason for b in bad}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8, 10]
    assert "invalid JSON" in reasons[2]
    assert "unknown role 'teacher'" in reasons[3]
    assert "no role" in reasons[4]
    assert "empty" in reasons[5] and "empty" in reasons[7]
    assert "no assistant turn" in reasons[6]
    assert "JSON object" in reasons[8]
    assert "follow a user turn" in reasons[10]

    report = describe_bad_lines(bad, shown=3)
    assert report[0].startswith("skipped 8 bad lines in ") and report[0].endswith("data.jsonl")
    assert report[1].endswith(":2: " + reasons[2]) and report[3].endswith(":4: " + reasons[4])
    assert report[-1] == "  ... and 5 more"


def test_turns_after_the_last_answer_are_dropped(write_jsonl) -> None:
    trailing = {"messages": [*CHAT["messages"], {"role": "user", "content": "Thanks!"}]}
    (example,), _ = load_examples(write_jsonl([trailing]))
    assert [m.role for m in example.messages] == ["system", "user", "assistant"]


def test_a_file_without_one_usable_line_is_an_error(write_jsonl) -> None:
    path = write_jsonl(["not json", {"messages": [{"role": "user", "content": "hi"}]}])
    examples, bad = load_examples(path)
    assert examples == [] and len(bad) == 2
    with pytest.raises(
        LexiedgeError, match=r"none of its 2 non-blank lines is a usable example \(line 1: invalid JSON"
    ):
        require_examples(path, examples, bad)
    empty = write_jsonl(["", ""], name="empty.jsonl")
    with pytest.raises(LexiedgeError, match="no examples"):
        require_examples(empty, *load_examples(empty))


def test_a_directory_reads_its_jsonl_files_in_order(write_jsonl, tmp_path) -> None:
    write_jsonl([INSTRUCTION], name="b.jsonl")
    write_jsonl([CHAT, "{oops"], name="a.jsonl")
    (tmp_path / "notes.txt").write_text("not data\n", encoding="utf-8")
    examples, bad = load_examples(tmp_path)
    assert [(e.source.rsplit("/", 1)[-1], e.line) for e in examples] == [("a.jsonl", 1), ("b.jsonl", 1)]
    assert [(b.source.rsplit("/", 1)[-1], b.line) for b in bad] == [("a.jsonl", 2)]


def test_missing_paths_are_one_line_errors(tmp_path) -> None:
    with pytest.raises(LexiedgeError, match="no such file or directory"):
        load_examples(tmp_path / "absent.jsonl")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(LexiedgeError, match="contain .jsonl files"):
        load_examples(tmp_path / "empty_dir")
