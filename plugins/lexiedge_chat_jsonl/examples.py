"""Reading chat data into conversations; bad lines (or rows) are collected with their numbers.

Three record formats are accepted, one conversation per JSONL line or per table row::

    {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}       (OpenAI chat)
    {"conversations": [{"from": "system"|"human"|"gpt", "value": "..."}, ...]}          (ShareGPT)
    {"instruction": "...", "input": "... (optional)", "output": "..."}                  (Alpaca)

A bad line never stops a run: it is skipped and reported (``describe_bad_lines``), because one stray
line in a 50k-line file should not cost a training run. A file with no usable line at all is an error.

Files are read line by line (``\n``-separated, as JSONL is) in pieces of at most ``max_line_bytes``:
a line longer than that (a stray 5 MB blob) is a bad line, reported by its number and skipped without
ever being held in memory whole. A line that is not UTF-8 is a bad line too.

Tables are read too (:func:`source_format` tells which a path is): a directory written by
``datasets``' ``save_to_disk`` (a DatasetDict's "train" split), a ``.parquet`` file or a directory of them
(as ``huggingface-cli download`` leaves one), and a ``.json`` file holding one JSON array. Their rows go
through the same :func:`parse_record` as JSONL lines and bad ones are reported by row number instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lexiedge_runtime.errors import first_line

from lexiedge import atomic
from lexiedge.errors import UsageError

ROLES = ("system", "user", "assistant")
BAD_LINES_SHOWN = 5
DEFAULT_MAX_LINE_BYTES = 1 << 20  # 1 MiB: a chat example that fits a 512-token row is a few KB
_SKIP_PIECE = 1 << 16  # how much of an oversize line is read at a time while skipping it
_ROW_BATCH = 1024  # rows turned into Python objects at a time: a big table is never held as objects whole
_PEEK_BYTES = 1 << 12  # how much of a .json file is read to tell a JSON array from JSON lines

if TYPE_CHECKING:
    import pyarrow

SourceFormat = Literal["jsonl", "json-array", "parquet", "saved-dataset"]
EXPECTED_RECORDS = '{"messages": [...]}, {"conversations": [...]} (ShareGPT) or {"instruction", "output"}'
EXPECTED_SOURCES = (
    "a chat .jsonl file, a .json array, a .parquet file, a directory of .jsonl or .parquet files, "
    "or a directory written by datasets' save_to_disk"
)


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class Example:
    """One conversation and where it came from (``line``: its line number, or its row number in a table)."""

    messages: tuple[Message, ...]
    source: str
    line: int

    def as_dicts(self) -> list[dict[str, str]]:
        """The ``[{"role", "content"}]`` list chat templates take."""
        return [{"role": m.role, "content": m.content} for m in self.messages]

    def with_system_prompt(self, system_prompt: str | None) -> Example:
        """This conversation with ``system_prompt`` in front when it has no system turn of its own."""
        if system_prompt is None or self.messages[0].role == "system":
            return self
        return Example((Message("system", system_prompt), *self.messages), self.source, self.line)


@dataclass(frozen=True)
class BadLine:
    """A skipped line (``unit="line"``, JSONL) or row (``unit="row"``, a table or JSON array) and why."""

    source: str
    line: int
    reason: str
    unit: Literal["line", "row"] = "line"


class BadExampleError(ValueError):
    """Why one line is not a usable conversation (becomes a :class:`BadLine`)."""


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadExampleError(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise BadExampleError(f"{what} is empty")
    return value


def _turns(raw_turns: Any, field: str, shape: str, text_key: str,
           role_of: Callable[[int, dict[str, Any]], str]) -> list[Message]:
    """The messages of a list of turn objects (``field`` names it in errors, ``shape`` says what a turn holds);
    ``role_of`` reads a turn's role or raises :class:`BadExampleError`."""
    if not isinstance(raw_turns, list) or not raw_turns:
        raise BadExampleError(f'"{field}" must be a non-empty list of {shape} objects')
    messages = []
    for index, raw in enumerate(raw_turns):
        if not isinstance(raw, dict):
            raise BadExampleError(f"{field}[{index}] must be an object, got {type(raw).__name__}")
        messages.append(Message(role_of(index, raw), _text(raw.get(text_key), f"{field}[{index}].{text_key}")))
    return messages


def _chat_role(index: int, raw: dict[str, Any]) -> str:
    role = raw.get("role")
    if role is None:
        raise BadExampleError(f"messages[{index}] has no role")
    if role not in ROLES:
        raise BadExampleError(f"messages[{index}] has unknown role {role!r}; expected one of {', '.join(ROLES)}")
    return role


# ShareGPT speakers (FastChat's and axolotl's spellings) -> chat roles
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "chatgpt": "assistant", "bing": "assistant", "bard": "assistant"}


def _sharegpt_role(index: int, raw: dict[str, Any]) -> str:
    speaker = raw.get("from")
    if speaker is None:
        raise BadExampleError(f'conversations[{index}] has no "from"')
    role = SHAREGPT_ROLES.get(speaker) if isinstance(speaker, str) else None
    if role is None:
        raise BadExampleError(f"conversations[{index}] is from {speaker!r}; expected one of system, human, gpt")
    return role


def _messages_from_instruction(record: dict[str, Any]) -> list[Message]:
    instruction = _text(record.get("instruction"), '"instruction"')
    extra = record.get("input")
    if extra is not None and not isinstance(extra, str):
        raise BadExampleError(f'"input" must be a string, got {type(extra).__name__}')
    user = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
    return [Message("user", user), Message("assistant", _text(record.get("output"), '"output"'))]


def parse_record(record: Any) -> tuple[Message, ...]:
    """The conversation in one decoded JSON line; raises :class:`BadExampleError` saying what is wrong."""
    if not isinstance(record, dict):
        raise BadExampleError(f"expected a JSON object, got {type(record).__name__}")
    if "messages" in record:
        messages = _turns(record["messages"], "messages", '{"role", "content"}', "content", _chat_role)
    elif "conversations" in record:
        messages = _turns(record["conversations"], "conversations", '{"from", "value"}', "value", _sharegpt_role)
    elif "instruction" in record or "output" in record:
        messages = _messages_from_instruction(record)
    else:
        raise BadExampleError('expected a "messages" list, a ShareGPT "conversations" list, or "instruction" and '
                              '"output" keys')
    roles = [m.role for m in messages]
    if "assistant" not in roles:
        raise BadExampleError("no assistant turn (nothing to learn from)")
    first_assistant = roles.index("assistant")
    if "user" not in roles[:first_assistant]:
        raise BadExampleError("the first assistant turn must follow a user turn")
    # Turns after the last answer carry no loss; keeping them would only spend tokens.
    last_assistant = len(roles) - 1 - roles[::-1].index("assistant")
    return tuple(messages[: last_assistant + 1])


def _parse_numbered(
    lines: Iterable[tuple[int, str | None, str | None]], source: str
) -> tuple[list[Example], list[BadLine]]:
    """Examples and bad lines from ``(number, text, problem)``: a problem (from reading) makes a bad line."""
    return _collect(_decoded_lines(lines), source, "line")


def _decoded_lines(
    lines: Iterable[tuple[int, str | None, str | None]],
) -> Iterator[tuple[int, Any, str | None]]:
    """``(number, record, problem)`` of JSONL lines: blank lines vanish, undecodable ones carry a problem."""
    for number, line, problem in lines:
        if problem is not None or line is None:
            yield number, None, problem or "unreadable"
            continue
        if not line.strip():
            continue
        try:
            record, problem = json.loads(line), None
        except json.JSONDecodeError as exc:
            record, problem = None, f"invalid JSON ({exc.msg} at column {exc.colno})"
        except RecursionError:
            record, problem = None, "invalid JSON (nested too deeply)"
        yield number, record, problem


def _collect(
    records: Iterable[tuple[int, Any, str | None]], source: str, unit: Literal["line", "row"]
) -> tuple[list[Example], list[BadLine]]:
    """The one validator of every format: each decoded record through :func:`parse_record`, or a bad one."""
    examples: list[Example] = []
    bad: list[BadLine] = []
    for number, record, problem in records:
        if problem is not None:
            bad.append(BadLine(source, number, problem, unit))
            continue
        try:
            examples.append(Example(parse_record(record), source, number))
        except BadExampleError as exc:
            bad.append(BadLine(source, number, str(exc), unit))
    return examples, bad


def read_lines(file: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[tuple[int, str | None, str | None]]:
    """``(number, text, problem)`` for each ``\n``-separated line of ``file``, never more than
    ``max_line_bytes`` (+1) of it in memory: an oversize line is skipped in pieces and reported."""
    with open(file, "rb") as handle:
        number = 0
        while piece := handle.readline(max_line_bytes + 1):
            number += 1
            if len(piece) > max_line_bytes and not piece.endswith(b"\n"):
                size = len(piece)
                while piece and not piece.endswith(b"\n"):  # the rest of the line, a piece at a time
                    piece = handle.readline(_SKIP_PIECE)
                    size += len(piece)
                yield number, None, (f"line of {size:,} bytes is over the {max_line_bytes:,}-byte limit "
                                     "(data.max_line_bytes); not read")
                continue
            try:  # utf-8-sig on the first line: a BOM an editor added is not part of the JSON
                text = piece.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                yield number, None, f"not UTF-8 text (byte {exc.start + 1} of the line); expected UTF-8 JSON"
                continue
            yield number, text.rstrip("\r\n"), None


def jsonl_files(path: Path) -> list[Path]:
    """``path`` itself, or the ``*.jsonl`` files of a directory in name order."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".jsonl" and p.is_file())
        if not files:
            raise UsageError(f"{path}: a data directory must contain .jsonl files; found none")
        return files
    if not path.is_file():
        raise UsageError(f"{path}: no such file or directory (expected a .jsonl file or a directory of them)")
    return [path]


def _is_saved_dataset(directory: Path) -> bool:
    """What ``datasets.load_from_disk`` itself looks for: a Dataset's info and state, or a DatasetDict's
    index (checked here so that a folder of JSONL or Parquet never pays for importing ``datasets``)."""
    if (directory / "dataset_dict.json").is_file():
        return True
    return (directory / "dataset_info.json").is_file() and (directory / "state.json").is_file()


def _parquet_files(directory: Path) -> list[Path]:
    """The ``.parquet`` files anywhere under ``directory``, outside hidden folders (a download's
    ``.cache``)."""
    return sorted(
        file
        for file in directory.rglob("*.parquet")
        if file.is_file() and not any(part.startswith(".") for part in file.relative_to(directory).parts)
    )


def _holds_json_array(file: Path) -> bool:
    """Whether the first non-blank character of ``file`` (after a BOM) is ``[``: a JSON array, not lines.

    A JSONL line cannot be a usable example if it is an array, so ``[`` first tells the two apart.
    """
    try:
        with open(file, "rb") as handle:
            head = handle.read(_PEEK_BYTES).removeprefix(b"\xef\xbb\xbf")
            while head and not head.strip():  # leading blank space longer than one peek
                head = handle.read(_PEEK_BYTES)
    except OSError as exc:
        raise UsageError(f"{file}: cannot read ({exc.strerror or type(exc).__name__})") from None
    return head.lstrip().startswith(b"[")


def source_format(path: Path) -> SourceFormat:
    """Which reader ``path`` needs, from its name and a peek; a one-line :class:`UsageError` when none fits.

    A folder of ``.jsonl`` files reads as it always has; ``.jsonl`` and ``.parquet`` side by side are
    refused rather than one kind being silently left out.
    """
    if path.is_dir():
        if _is_saved_dataset(path):
            return "saved-dataset"
        suffixes = {entry.suffix for entry in path.iterdir() if entry.is_file()}
        if {".jsonl", ".parquet"} <= suffixes:
            raise UsageError(
                f"{path}: holds both .jsonl and .parquet files; expected one kind (move one away, or give "
                "one file)"
            )
        if ".jsonl" in suffixes:
            return "jsonl"
        if _parquet_files(path):
            return "parquet"
        raise UsageError(
            f"{path}: a data directory must contain .jsonl files, .parquet files or a dataset written by "
            "datasets' save_to_disk; found none of them"
        )
    if not path.is_file():
        raise UsageError(f"{path}: no such file or directory (expected {EXPECTED_SOURCES})")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return "parquet"
    if suffix == ".json" and _holds_json_array(path):
        return "json-array"
    return "jsonl"


def _present(row: dict[str, Any]) -> dict[str, Any]:
    """A table row without its null columns.

    A table has every column in every row: a column a row does not use (``instruction`` in a ``messages``
    row) is null there, where its JSON line would not have the key at all. Dropping nulls lets
    :func:`parse_record` see what the JSON line would have held.
    """
    return {key: value for key, value in row.items() if value is not None}


def _table_records(
    batches: Iterable[pyarrow.RecordBatch | pyarrow.Table],
) -> Iterator[tuple[int, Any, str | None]]:
    """``(row number, record, None)`` for each row of Arrow batches, numbered from 1 across them."""
    number = 0
    for batch in batches:
        for row in batch.to_pylist():  # one batch of Python objects at a time, never the whole table
            number += 1
            yield number, _present(row), None


def _first_line(exc: BaseException) -> str:
    return first_line(exc)


def _parquet_records(file: Path) -> Iterator[tuple[int, Any, str | None]]:
    """The rows of one Parquet file, streamed in batches (nothing is copied to a cache, unlike
    ``datasets.load_dataset("parquet")``)."""
    import pyarrow
    import pyarrow.parquet

    try:
        yield from _table_records(pyarrow.parquet.ParquetFile(file).iter_batches(batch_size=_ROW_BATCH))
    except (pyarrow.ArrowException, OSError) as exc:
        raise UsageError(f"{file}: not a readable Parquet file ({_first_line(exc)})") from None


def _parquet_split(directory: Path) -> list[Path]:
    """The Parquet files of a directory's "train" split.

    Splits are named the way ``datasets`` names them (``data/train-00000-of-00001.parquet``,
    ``train/0000.parquet``; files without a split name are all "train"), by its own resolver, so a folder
    a hub download left reads as ``load_dataset`` would read it, without ever training on its test split.
    """
    from datasets.data_files import DataFilesDict, get_data_patterns

    try:
        resolved = DataFilesDict.from_patterns(get_data_patterns(str(directory)), base_path=str(directory))
    except (OSError, ValueError) as exc:  # EmptyDatasetError is a FileNotFoundError
        raise UsageError(f"{directory}: cannot list its data files ({_first_line(exc)})") from None
    splits = {
        str(split): sorted(Path(file) for file in files if file.endswith(".parquet"))
        for split, files in resolved.items()
    }
    splits = {split: files for split, files in splits.items() if files}
    if "train" not in splits:
        raise UsageError(
            f'{directory}: its Parquet files hold no "train" split '
            f'(they hold {", ".join(splits) or "none"}); '
            "expected train files (data/train-*.parquet, train/*.parquet or unnamed), or give one file"
        )
    return splits["train"]


def _saved_dataset_rows(directory: Path) -> tuple[str, Iterator[tuple[int, Any, str | None]]]:
    """The source name and rows of a ``save_to_disk`` directory (a DatasetDict's "train" split).

    The rows are read from the memory-mapped Arrow files in batches: nothing is loaded whole or cached.
    """
    import datasets
    import pyarrow

    readable = (OSError, ValueError, KeyError, TypeError, pyarrow.ArrowException)
    try:
        loaded = datasets.load_from_disk(str(directory))
    except readable as exc:  # a broken save fails in json, fsspec or arrow: one line says which
        raise UsageError(
            f"{directory}: cannot load the saved dataset ({_first_line(exc)}); "
            "expected a directory written by datasets' save_to_disk"
        ) from None
    source = directory
    if isinstance(loaded, datasets.DatasetDict):
        if "train" not in loaded:
            first = directory / next(iter(loaded), "SPLIT")
            example = f", or give one split's directory, e.g. {first}" if loaded else ""
            raise UsageError(
                f'{directory}: a saved DatasetDict without a "train" split (its splits: '
                f'{", ".join(loaded) or "none"}); expected a "train" split{example}'
            )
        # save_to_disk writes each split to its own folder: the source named in reports is that folder
        loaded, source = loaded["train"], directory / "train"

    def rows() -> Iterator[tuple[int, Any, str | None]]:
        try:
            yield from _table_records(loaded.with_format("arrow").iter(batch_size=_ROW_BATCH))
        except readable as exc:
            raise UsageError(f"{source}: cannot read the saved dataset ({_first_line(exc)})") from None

    return str(source), rows()


def _json_array_records(file: Path) -> Iterator[tuple[int, Any, str | None]]:
    """The elements of a ``.json`` file holding one JSON array.

    Read with ``json``, not through ``datasets``/Arrow: Arrow would fit every row to one schema (filling,
    dropping or refusing what does not fit), so a bad row could vanish or fail the whole file instead of
    being reported as it would be in JSONL. The array is parsed whole, as any JSON loader must;
    data too big for that belongs in JSONL or Parquet.
    """
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{file}: not UTF-8 text (byte {exc.start + 1}); expected a UTF-8 JSON array"
        ) from None
    except OSError as exc:
        raise UsageError(f"{file}: cannot read ({exc.strerror or type(exc).__name__})") from None
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{file}: invalid JSON array ({exc.msg} at line {exc.lineno}, column {exc.colno}); expected one "
            f"JSON array of {EXPECTED_RECORDS}"
        ) from None
    except RecursionError:
        raise UsageError(f"{file}: invalid JSON array (nested too deeply)") from None
    for number, row in enumerate(rows, start=1):
        yield number, row, None


def _row_sources(
    path: Path, fmt: SourceFormat
) -> Iterator[tuple[str, Iterator[tuple[int, Any, str | None]]]]:
    """``(source name, rows)`` of each table ``path`` holds, in order."""
    if fmt == "saved-dataset":
        yield _saved_dataset_rows(path)
    elif fmt == "json-array":
        yield str(path), _json_array_records(path)
    elif path.is_dir():
        for file in _parquet_split(path):
            yield str(file), _parquet_records(file)
    else:
        yield str(path), _parquet_records(path)


def _load_jsonl(path: Path, max_line_bytes: int) -> tuple[list[Example], list[BadLine]]:
    examples: list[Example] = []
    bad: list[BadLine] = []
    for file in jsonl_files(path):
        try:
            file_examples, file_bad = _parse_numbered(read_lines(file, max_line_bytes), str(file))
        except OSError as exc:
            raise UsageError(f"{file}: cannot read ({exc.strerror or type(exc).__name__})") from None
        examples += file_examples
        bad += file_bad
    return examples, bad


def load_examples(
    path: str | Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> tuple[list[Example], list[BadLine]]:
    """Every usable conversation in ``path`` and every bad line or row; :func:`source_format` says how
    ``path`` is read (chat JSONL, a JSON array, Parquet, a saved ``datasets`` directory).

    Pure reading: no tokenizer, no error for bad lines or rows (the caller decides; see
    :func:`require_examples`). JSONL lines longer than ``max_line_bytes`` are bad lines, never read whole;
    tables are read in batches of rows.
    """
    path = Path(path)
    fmt = source_format(path)
    if fmt == "jsonl":
        return _load_jsonl(path, max_line_bytes)
    examples: list[Example] = []
    bad: list[BadLine] = []
    for source, rows in _row_sources(path, fmt):
        source_examples, source_bad = _collect(rows, source, "row")
        examples += source_examples
        bad += source_bad
    return examples, bad


def _where(bad: BadLine) -> str:
    """``file:line`` as compilers write it; ``source row N`` for a table, which has no lines."""
    return f"{bad.source}:{bad.line}" if bad.unit == "line" else f"{bad.source} row {bad.line}"


def describe_bad_lines(bad: Sequence[BadLine], shown: int = BAD_LINES_SHOWN) -> list[str]:
    """One summary line, then the first ``shown`` bad lines as ``file:line: reason`` (rows as
    ``source row N: reason``)."""
    if not bad:
        return []
    files = sorted({b.source for b in bad})
    where = files[0] if len(files) == 1 else f"{len(files)} files"
    noun = bad[0].unit  # one load reads one kind of source: lines or rows
    lines = [f"skipped {len(bad)} bad {noun}{'s' if len(bad) != 1 else ''} in {where}"]
    lines += [f"  {_where(b)}: {b.reason}" for b in bad[:shown]]
    if len(bad) > shown:
        lines.append(f"  ... and {len(bad) - shown} more")
    return lines


def require_examples(path: Path, examples: Sequence[Example], bad: Sequence[BadLine]) -> None:
    """A source with nothing usable is an error, not an empty run."""
    if examples:
        return
    if bad and bad[0].unit == "row":
        first = bad[0]
        raise UsageError(
            f"{path}: none of its {len(bad)} row{'s' if len(bad) != 1 else ''} is a usable example "
            f"(row {first.line}: {first.reason}); expected rows with {EXPECTED_RECORDS}"
        )
    if bad:
        first = bad[0]
        raise UsageError(
            f"{path}: none of its {len(bad)} non-blank lines is a usable example "
            f"(line {first.line}: {first.reason}); expected chat JSONL lines with {EXPECTED_RECORDS}"
        )
    if source_format(Path(path)) != "jsonl":
        raise UsageError(f"{path}: no examples (it has no rows); expected rows with {EXPECTED_RECORDS}")
    raise UsageError(f"{path}: no examples (the file is empty); expected chat JSONL lines")


def write_jsonl_atomic(records: Iterable[dict[str, Any]], out: Path) -> None:
    """Write JSON lines to a temporary file beside ``out``, then rename it: never half a file."""
    with atomic.atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as file:
        file.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
