"""Reading chat-format JSONL into conversations; bad lines are collected with their line numbers.

Three line formats are accepted::

    {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}       (OpenAI chat)
    {"conversations": [{"from": "system"|"human"|"gpt", "value": "..."}, ...]}          (ShareGPT)
    {"instruction": "...", "input": "... (optional)", "output": "..."}                  (Alpaca)

A bad line never stops a run: it is skipped and reported (``describe_bad_lines``), because one stray
line in a 50k-line file should not cost a training run. A file with no usable line at all is an error.

Files are read line by line (``\n``-separated, as JSONL is) in pieces of at most ``max_line_bytes``:
a line longer than that (a stray 5 MB blob) is a bad line, reported by its number and skipped without
ever being held in memory whole. A line that is not UTF-8 is a bad line too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lexiedge import atomic
from lexiedge.errors import UsageError

ROLES = ("system", "user", "assistant")
BAD_LINES_SHOWN = 5
DEFAULT_MAX_LINE_BYTES = 1 << 20  # 1 MiB: a chat example that fits a 512-token row is a few KB
_SKIP_PIECE = 1 << 16  # how much of an oversize line is read at a time while skipping it


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class Example:
    """One conversation and where it came from."""

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
    source: str
    line: int
    reason: str


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


def parse_lines(lines: Iterable[str], source: str) -> tuple[list[Example], list[BadLine]]:
    """Examples and bad lines of JSONL text; blank lines are ignored, line numbers count from 1."""
    return _parse_numbered(((number, line, None) for number, line in enumerate(lines, start=1)), source)


def _parse_numbered(
    lines: Iterable[tuple[int, str | None, str | None]], source: str
) -> tuple[list[Example], list[BadLine]]:
    """Examples and bad lines from ``(number, text, problem)``: a problem (from reading) makes a bad line."""
    examples: list[Example] = []
    bad: list[BadLine] = []
    for number, line, problem in lines:
        if problem is not None or line is None:
            bad.append(BadLine(source, number, problem or "unreadable"))
            continue
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append(BadLine(source, number, f"invalid JSON ({exc.msg} at column {exc.colno})"))
            continue
        except RecursionError:
            bad.append(BadLine(source, number, "invalid JSON (nested too deeply)"))
            continue
        try:
            examples.append(Example(parse_record(record), source, number))
        except BadExampleError as exc:
            bad.append(BadLine(source, number, str(exc)))
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


def load_examples(
    path: str | Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> tuple[list[Example], list[BadLine]]:
    """Every usable conversation in a JSONL file (or a directory of them) and every bad line.

    Pure reading: no tokenizer, no error for bad lines (the caller decides; see :func:`require_examples`).
    Lines longer than ``max_line_bytes`` are bad lines, never read whole.
    """
    examples: list[Example] = []
    bad: list[BadLine] = []
    for file in jsonl_files(Path(path)):
        try:
            file_examples, file_bad = _parse_numbered(read_lines(file, max_line_bytes), str(file))
        except OSError as exc:
            raise UsageError(f"{file}: cannot read ({exc.strerror or type(exc).__name__})") from None
        examples += file_examples
        bad += file_bad
    return examples, bad


def describe_bad_lines(bad: Sequence[BadLine], shown: int = BAD_LINES_SHOWN) -> list[str]:
    """One summary line, then the first ``shown`` bad lines as ``file:line: reason``."""
    if not bad:
        return []
    files = sorted({b.source for b in bad})
    where = files[0] if len(files) == 1 else f"{len(files)} files"
    lines = [f"skipped {len(bad)} bad line{'s' if len(bad) != 1 else ''} in {where}"]
    lines += [f"  {b.source}:{b.line}: {b.reason}" for b in bad[:shown]]
    if len(bad) > shown:
        lines.append(f"  ... and {len(bad) - shown} more")
    return lines


def require_examples(path: Path, examples: Sequence[Example], bad: Sequence[BadLine]) -> None:
    """A source with nothing usable is an error, not an empty run."""
    if examples:
        return
    if bad:
        first = bad[0]
        raise UsageError(
            f"{path}: none of its {len(bad)} non-blank lines is a usable example "
            f"(line {first.line}: {first.reason}); expected chat JSONL lines with "
            '{"messages": [...]}, {"conversations": [...]} (ShareGPT) or {"instruction", "output"}'
        )
    raise UsageError(f"{path}: no examples (the file is empty); expected chat JSONL lines")


def write_jsonl_atomic(records: Iterable[dict[str, Any]], out: Path) -> None:
    """Write JSON lines to a temporary file beside ``out``, then rename it: never half a file."""
    with atomic.atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as file:
        file.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
