"""Chat data as tables: a `datasets` save_to_disk directory, Parquet files, a JSON array.

Every table is a real file written by the `datasets` library (or `json`), read through `load_examples`
(what `data stats` and `train` call) and through the CLI, and must give exactly what the same records
give as JSONL lines: the same examples, the same bad ones with the same reasons (by row, not line).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lexiedge.errors import LexiedgeError
from lexiedge_chat_jsonl import load_examples
from lexiedge_chat_jsonl.examples import describe_bad_lines, require_examples

datasets = pytest.importorskip("datasets")


@pytest.fixture(autouse=True, scope="module")
def _quiet_writers():
    """No "Saving the dataset" bars from writing the test files in what the CLI tests read from stderr."""
    enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    yield
    if enabled:
        datasets.enable_progress_bars()


def turn(role: str, content: object) -> dict[str, object]:
    return {"role": role, "content": content}


def said(speaker: str, value: str) -> dict[str, str]:
    return {"from": speaker, "value": value}


# Each format's rows share one schema (as a table's rows must); the bad ones are bad in what they say.
MESSAGES = [
    {
        "messages": [
            turn("system", "You are a tutor."),
            turn("user", "Correct: she go."),
            turn("assistant", "She goes."),
        ]
    },
    {"messages": [turn("teacher", "Correct: he go."), turn("assistant", "He goes.")]},  # 2: unknown role
    {"messages": [turn("user", "Define tidy.")]},  # 3: no assistant turn
    {"messages": [turn("user", "Spell 'cat'."), turn("assistant", "c-a-t")]},
    {"messages": [turn("user", "   "), turn("assistant", "Hm?")]},  # 5: empty content
]
SHAREGPT = [
    {"id": "a", "conversations": [said("human", "Correct: she go."), said("gpt", "She goes.")]},
    {"id": "b", "conversations": [said("teacher", "x"), said("gpt", "y")]},  # 2: unknown speaker
    {"id": "c", "conversations": [said("system", "Be brief."), said("human", "Hi"), said("gpt", "Hello.")]},
]
ALPACA = [
    {"instruction": "Correct the sentence.", "input": "He have a cat.", "output": "He has a cat."},
    {"instruction": "Define 'tidy'.", "input": "", "output": ""},  # 2: empty output
    {"instruction": "Say hi.", "input": "", "output": "Hi!"},
]
FORMATS = {"messages": MESSAGES, "sharegpt": SHAREGPT, "alpaca": ALPACA}


def saved_dataset(rows: list[dict], directory: Path) -> Path:
    datasets.Dataset.from_list(rows).save_to_disk(str(directory))
    return directory


def saved_dataset_dict(rows: list[dict], directory: Path) -> Path:
    """A DatasetDict with a test split too: only "train" may be read."""
    other = [ALPACA[0]] if "instruction" not in rows[0] else [SHAREGPT[0]]
    splits = {"train": datasets.Dataset.from_list(rows), "test": datasets.Dataset.from_list(other)}
    datasets.DatasetDict(splits).save_to_disk(str(directory))
    return directory


def parquet_file(rows: list[dict], directory: Path) -> Path:
    directory.mkdir()
    datasets.Dataset.from_list(rows).to_parquet(str(directory / "chat.parquet"))
    return directory / "chat.parquet"


def hub_download(rows: list[dict], directory: Path) -> Path:
    """What `huggingface-cli download` leaves: data/{train,test}-*.parquet, a README, a hidden .cache."""
    (directory / "data").mkdir(parents=True)
    datasets.Dataset.from_list(rows).to_parquet(str(directory / "data" / "train-00000-of-00001.parquet"))
    datasets.Dataset.from_list(MESSAGES[:1]).to_parquet(
        str(directory / "data" / "test-00000-of-00001.parquet")
    )
    (directory / "README.md").write_text("---\nlicense: mit\n---\n", encoding="utf-8")
    (directory / ".cache" / "huggingface").mkdir(parents=True)
    return directory


def json_array(rows: list[dict], directory: Path) -> Path:
    directory.mkdir()
    path = directory / "chat.json"
    path.write_text(json.dumps(rows, indent=2), encoding="utf-8")  # pretty-printed: lines are not rows
    return path


WRITERS = {
    "saved": saved_dataset,
    "saved-dict": saved_dataset_dict,
    "parquet": parquet_file,
    "hub-download": hub_download,
    "json-array": json_array,
}
# the file or folder reports name, relative to what the writer returned
SOURCE_IN = {"saved-dict": "train", "hub-download": "data/train-00000-of-00001.parquet"}


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_tables_give_the_examples_and_bad_rows_their_jsonl_lines_give(
    fmt, writer, tmp_path, write_jsonl
) -> None:
    rows = FORMATS[fmt]
    from_jsonl, bad_jsonl = load_examples(write_jsonl(rows))
    path = WRITERS[writer](rows, tmp_path / writer)
    examples, bad = load_examples(path)

    source = str(path / SOURCE_IN[writer]) if writer in SOURCE_IN else str(path)
    assert [(e.messages, e.line) for e in examples] == [(e.messages, e.line) for e in from_jsonl]
    assert {e.source for e in examples} == {source}
    assert bad_jsonl  # every format above has bad records
    assert [(b.line, b.reason) for b in bad] == [(b.line, b.reason) for b in bad_jsonl]
    assert {(b.source, b.unit) for b in bad} == {(source, "row")}

    report = describe_bad_lines(bad)
    assert report[0] == f"skipped {len(bad)} bad row{'s' if len(bad) > 1 else ''} in {source}"
    assert report[1] == f"  {source} row {bad[0].line}: {bad[0].reason}"


def test_a_table_mixing_formats_reads_each_row_as_its_json_line(tmp_path, write_jsonl) -> None:
    """A table gives every row every column, null where unused; a null column is a key the line lacks."""
    columns = {"messages": None, "conversations": None, "instruction": None, "input": None, "output": None}
    records = [MESSAGES[0], SHAREGPT[0], ALPACA[0], MESSAGES[1], ALPACA[1]]
    rows = [{**columns, **{key: value for key, value in record.items() if key != "id"}} for record in records]
    path = parquet_file(rows, tmp_path / "mixed")
    examples, bad = load_examples(path)
    from_jsonl, bad_jsonl = load_examples(write_jsonl(records))
    assert [(e.messages, e.line) for e in examples] == [(e.messages, e.line) for e in from_jsonl]
    assert [(b.line, b.reason) for b in bad] == [(b.line, b.reason) for b in bad_jsonl] != []


def test_non_string_content_is_a_bad_row_and_an_all_bad_table_is_an_error(tmp_path) -> None:
    # in Parquet a column has one type: here every content is an integer, so every row is bad
    numbers = [{"messages": [turn("user", 1), turn("assistant", 2)]}, {"messages": [turn("user", 3)]}]
    path = parquet_file(numbers, tmp_path / "numbers")
    examples, bad = load_examples(path)
    assert examples == [] and [b.line for b in bad] == [1, 2]
    with pytest.raises(LexiedgeError) as refused:
        require_examples(path, examples, bad)
    message = str(refused.value)
    assert message.startswith(f"{path}: none of its 2 rows is a usable example (row 1: ")
    assert "messages[0].content must be a string, got int" in message and "\n" not in message

    # a JSON array keeps each row's own types: one bad row among good ones
    mixed = json_array(
        [MESSAGES[0], {"messages": [turn("user", "Hi"), turn("assistant", 7)]}], tmp_path / "mixed"
    )
    examples, bad = load_examples(mixed)
    assert [e.line for e in examples] == [1]
    assert [(b.line, b.reason) for b in bad] == [(2, "messages[1].content must be a string, got int")]


def test_an_empty_table_is_an_error(tmp_path) -> None:
    path = json_array([], tmp_path / "empty")
    with pytest.raises(LexiedgeError, match=r"no examples \(it has no rows\); expected rows with"):
        require_examples(path, *load_examples(path))


def test_a_dataset_dict_without_train_names_its_splits_and_a_split_folder_reads(tmp_path) -> None:
    path = tmp_path / "dd"
    splits = {"validation": datasets.Dataset.from_list(ALPACA), "test": datasets.Dataset.from_list(ALPACA)}
    datasets.DatasetDict(splits).save_to_disk(str(path))
    with pytest.raises(LexiedgeError) as refused:
        load_examples(path)
    assert str(refused.value) == (
        f'{path}: a saved DatasetDict without a "train" split (its splits: validation, test); expected a '
        f'"train" split, or give one split\'s directory, e.g. {path / "validation"}'
    )
    examples, bad = load_examples(path / "validation")
    assert [e.line for e in examples] == [1, 3] and [b.line for b in bad] == [2]


def test_parquet_folders_read_their_train_split_only(tmp_path) -> None:
    folders = tmp_path / "split-folders"  # train/ and validation/, another hub layout
    for split, rows in (("train", ALPACA), ("validation", MESSAGES)):
        (folders / split).mkdir(parents=True)
        datasets.Dataset.from_list(rows).to_parquet(str(folders / split / "0000.parquet"))
    examples, _ = load_examples(folders)
    assert {e.source for e in examples} == {str(folders / "train" / "0000.parquet")} and len(examples) == 2

    unnamed = tmp_path / "unnamed"  # no split names: every file is training data, in name order
    (unnamed / "more").mkdir(parents=True)
    datasets.Dataset.from_list(ALPACA).to_parquet(str(unnamed / "b.parquet"))
    datasets.Dataset.from_list(SHAREGPT).to_parquet(str(unnamed / "more" / "a.parquet"))
    examples, bad = load_examples(unnamed)
    assert [(Path(e.source).name, e.line) for e in examples] == [
        ("b.parquet", 1),
        ("b.parquet", 3),
        ("a.parquet", 1),
        ("a.parquet", 3),
    ]
    assert [(Path(b.source).name, b.line) for b in bad] == [("b.parquet", 2), ("a.parquet", 2)]

    no_train = tmp_path / "no-train"
    no_train.mkdir()
    datasets.Dataset.from_list(ALPACA).to_parquet(str(no_train / "test.parquet"))
    with pytest.raises(LexiedgeError, match=r'its Parquet files hold no "train" split \(they hold test\)'):
        load_examples(no_train)


def test_folders_and_files_that_are_none_of_the_formats_are_one_line_errors(tmp_path, write_jsonl) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "readme.txt").write_text("not data\n", encoding="utf-8")
    (notes / "chat.json").write_text("[]", encoding="utf-8")  # .json files are read one at a time
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    datasets.Dataset.from_list(ALPACA).to_parquet(str(mixed / "a.parquet"))
    (mixed / "b.jsonl").write_text(json.dumps(ALPACA[0]) + "\n", encoding="utf-8")
    broken = tmp_path / "broken.parquet"
    broken.write_text("PAR1 but not really", encoding="utf-8")
    bad_array = tmp_path / "bad.json"
    bad_array.write_text('[\n  {"instruction": "x",\n', encoding="utf-8")
    expected = {
        notes: "a data directory must contain .jsonl files, .parquet files or a dataset written by datasets' "
        "save_to_disk; found none of them",
        mixed: "holds both .jsonl and .parquet files; expected one kind",
        broken: "not a readable Parquet file (",
        bad_array: "invalid JSON array (Expecting property name enclosed in double quotes at line 3, "
        "column 1)",
        tmp_path / "absent.parquet": "no such file or directory (expected a chat .jsonl file, a .json array, "
        "a .parquet file, a directory of .jsonl or .parquet files, or a directory written by datasets' "
        "save_to_disk)",
    }
    for path, reason in expected.items():
        with pytest.raises(LexiedgeError) as refused:
            load_examples(path)
        message = str(refused.value)
        assert message.startswith(f"{path}: ") and reason in message and "\n" not in message, message


def test_json_lines_in_a_json_file_still_read_as_lines(tmp_path) -> None:
    path = tmp_path / "chat.json"
    path.write_text("\n".join(json.dumps(row) for row in ALPACA) + "\n", encoding="utf-8")
    examples, bad = load_examples(path)
    assert [e.line for e in examples] == [1, 3] and [(b.line, b.unit) for b in bad] == [(2, "line")]


# --- through the command line ------------------------------------------------------------------------


def _without_sources(stdout: str, *names: str) -> list[str]:
    """The stats output with the source's name taken out and the bad-record listing dropped."""
    lines = [line for line in stdout.splitlines() if not line.startswith(("skipped ", "  "))]
    for name in names:
        lines = [line.replace(name, "SOURCE") for line in lines]
    return lines


def test_data_stats_measures_a_table_as_it_measures_the_same_jsonl(
    cli, tokenizer_dir, tmp_path, write_jsonl
) -> None:
    rows = MESSAGES
    jsonl = cli("data", "stats", "--tokenizer", str(tokenizer_dir), "--data", str(write_jsonl(rows)))
    assert jsonl.exit_code == 0, jsonl.stderr
    for writer in ("saved", "parquet", "json-array"):
        path = WRITERS[writer](rows, tmp_path / writer)
        result = cli("data", "stats", "--tokenizer", str(tokenizer_dir), "--data", str(path))
        assert result.exit_code == 0, result.stderr
        assert f"skipped 3 bad rows in {path}\n" in result.stdout
        unknown_role = "messages[0] has unknown role 'teacher'; expected one of system, user, assistant"
        assert f"  {path} row 2: {unknown_role}\n" in result.stdout
        assert "seq_len 512 truncates 0 of 2 examples" in result.stdout
        assert _without_sources(result.stdout, path.name) == _without_sources(jsonl.stdout, "data.jsonl")


def _one_line_refusal(result, *parts: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for part in parts:
        assert part in lines[0], lines[0]


def test_bad_tables_are_refused_in_one_line_by_data_stats_and_train(cli, tokenizer_dir, tmp_path) -> None:
    all_bad = saved_dataset([MESSAGES[1], MESSAGES[2]], tmp_path / "all-bad")
    stats = cli("data", "stats", "--tokenizer", str(tokenizer_dir), "--data", str(all_bad))
    _one_line_refusal(
        stats,
        f"{all_bad}: none of its 2 rows is a usable example (row 1: messages[0] has unknown role 'teacher'",
    )

    # train reads the data before the run directory exists and before the model loads
    run = tmp_path / "run"
    train = cli(
        "train", "--profile", "cpu", "--model", "qwen-lora", "--data", str(all_bad), "--out", str(run)
    )
    _one_line_refusal(train, "none of its 2 rows is a usable example")
    assert not run.exists()

    neither = tmp_path / "neither"
    neither.mkdir()
    (neither / "notes.txt").write_text("hello\n", encoding="utf-8")
    train = cli(
        "train", "--profile", "cpu", "--model", "qwen-lora", "--data", str(neither), "--out", str(run)
    )
    _one_line_refusal(
        train, f"{neither}: a data directory must contain .jsonl files, .parquet files or a dataset"
    )
    stats = cli(
        "data", "stats", "--tokenizer", str(tokenizer_dir), "--data", str(tmp_path / "absent.parquet")
    )
    _one_line_refusal(
        stats, "no such file or folder (expected a chat .jsonl file, a .json array, a .parquet file"
    )
    # a missing file is named first, even when the tokenizer is missing too
    stats = cli("data", "stats", "--data", str(tmp_path / "absent.parquet"))
    _one_line_refusal(stats, "absent.parquet: no such file or folder")


def test_jsonl_never_imports_datasets_and_tables_stay_offline_and_uncached(tmp_path) -> None:
    """In a fresh interpreter: plain JSONL pays for neither `datasets` nor `pyarrow`; tables are read with
    every socket refused and HF_HOME pointing at an empty folder, which stays empty."""
    saved_dataset(ALPACA, tmp_path / "saved")
    hub_download(ALPACA, tmp_path / "hub")
    (tmp_path / "chat.jsonl").write_text(json.dumps(ALPACA[0]) + "\n", encoding="utf-8")
    hf_home = tmp_path / "hf-home"
    hf_home.mkdir()
    script = f"""
import socket, sys
def refuse(*args, **kwargs):
    raise AssertionError(f"network access attempted: {{args}}")
socket.socket.connect = socket.socket.connect_ex = socket.create_connection = refuse
from lexiedge_chat_jsonl import load_examples
assert len(load_examples({str(tmp_path / "chat.jsonl")!r})[0]) == 1
assert "datasets" not in sys.modules and "pyarrow" not in sys.modules, "JSONL imported datasets or pyarrow"
assert len(load_examples({str(tmp_path / "saved")!r})[0]) == 2
assert len(load_examples({str(tmp_path / "hub")!r})[0]) == 2
"""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "HUGGINGFACE_"))}
    env["HF_HOME"] = str(hf_home)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert list(hf_home.iterdir()) == []
