"""Conversations -> token ids with the tokenizer's chat template, loss on the assistant's answers only.

The labelled tokens of an assistant turn are its content and the token that closes the turn
(``<|im_end|>`` in ChatML), so the model learns to answer and to stop, never to write the user's
part. The spans are found on the rendered text, turn by turn: the text up to turn ``i`` with the
generation prompt (``...<|im_start|>assistant\\n``) ends where the answer starts, and the text through
turn ``i`` (minus the whitespace the template puts between turns) ends after its closing token.
Character spans are mapped to tokens through the fast tokenizer's offsets, so the ids are exactly
those of tokenizing the whole conversation at once (no drift at segment boundaries).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lexiedge.errors import UsageError
from lexiedge_chat_jsonl.examples import Example

IGNORE_INDEX = -100  # what torch's cross-entropy (and transformers' causal-LM loss) skips
_TOKENIZE_CHUNK = 512  # conversations per call to the Rust tokenizer (bounded memory on big files)


class ChatTemplateError(UsageError):
    """A tokenizer whose chat template cannot be used to find the assistant's tokens."""


@dataclass(frozen=True)
class EncodedExample:
    """One tokenized conversation; ``labels`` is ``IGNORE_INDEX`` outside the answers."""

    input_ids: np.ndarray  # int32 (n,)
    labels: np.ndarray  # int32 (n,)
    truncated: bool = False

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def target_tokens(self) -> int:
        return int((self.labels != IGNORE_INDEX).sum())


@dataclass
class EncodeResult:
    examples: list[EncodedExample]
    truncated: int = 0  # cut to seq_len (truncate=True)
    dropped_too_long: int = 0  # longer than seq_len with truncate=False
    dropped_no_target: int = 0  # cut so short that no answer token was left


def _render(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def check_tokenizer(tokenizer: Any) -> None:
    """The tokenizer must have a chat template and character offsets (a fast tokenizer)."""
    if tokenizer is None:
        raise UsageError("the model plugin built no tokenizer; chat-jsonl needs one with a chat template")
    if not getattr(tokenizer, "chat_template", None):
        raise ChatTemplateError(
            f"tokenizer {type(tokenizer).__name__} has no chat template; chat-jsonl renders conversations "
            "with it (use an -Instruct tokenizer or set tokenizer.chat_template)"
        )
    if not getattr(tokenizer, "is_fast", False):
        raise ChatTemplateError(
            f"tokenizer {type(tokenizer).__name__} is not a fast (tokenizers-backed) tokenizer; "
            "chat-jsonl needs its character offsets to find the assistant's tokens"
        )


def render_with_answer_spans(
    tokenizer: Any, messages: list[dict[str, str]]
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans ``[start, end)`` of every answer + closing token."""
    full = _render(tokenizer, messages)
    spans: list[tuple[int, int]] = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:index], generation_prompt=True)
        through = _render(tokenizer, messages[: index + 1])
        if not (through.startswith(before) and full.startswith(through)):
            raise ChatTemplateError(
                "the tokenizer's chat template does not render a conversation as the concatenation of its "
                f"turns (turn {index} changes earlier text), so the assistant's tokens cannot be located; "
                "use a ChatML template such as Qwen2.5's"
            )
        # `through` ends with the closing token and the separator before the next turn ("<|im_end|>\n").
        end = len(through.rstrip())
        if end <= len(before):
            raise ChatTemplateError(f"the chat template rendered assistant turn {index} as empty text")
        spans.append((len(before), end))
    return full, spans


def _labels_from_offsets(
    input_ids: Sequence[int], offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]
) -> np.ndarray:
    """Label a token when it starts inside an answer span (spans and tokens are both in text order)."""
    labels = np.full(len(input_ids), IGNORE_INDEX, dtype=np.int32)
    span_index = 0
    for token_index, (start, end) in enumerate(offsets):
        while span_index < len(spans) and start >= spans[span_index][1]:
            span_index += 1
        if span_index == len(spans):
            break
        if end > start and spans[span_index][0] <= start:
            labels[token_index] = input_ids[token_index]
    return labels


def encode_examples(
    tokenizer: Any,
    examples: Sequence[Example],
    *,
    seq_len: int | None,
    truncate: bool = True,
    system_prompt: str | None = None,
) -> EncodeResult:
    """Tokenize conversations; with ``seq_len``, longer ones are cut (``truncate``) or dropped."""
    check_tokenizer(tokenizer)
    result = EncodeResult(examples=[])
    for chunk_start in range(0, len(examples), _TOKENIZE_CHUNK):
        chunk = examples[chunk_start : chunk_start + _TOKENIZE_CHUNK]
        rendered = [
            render_with_answer_spans(tokenizer, ex.with_system_prompt(system_prompt).as_dicts())
            for ex in chunk
        ]
        batch = tokenizer(
            [text for text, _ in rendered], add_special_tokens=False, return_offsets_mapping=True
        )
        for (_, spans), ids, offsets in zip(rendered, batch["input_ids"], batch["offset_mapping"]):
            labels = _labels_from_offsets(ids, offsets, spans)
            input_ids = np.asarray(ids, dtype=np.int32)
            truncated = seq_len is not None and len(input_ids) > seq_len
            if truncated:
                if not truncate:
                    result.dropped_too_long += 1
                    continue
                input_ids, labels = input_ids[:seq_len], labels[:seq_len]
            if not (labels != IGNORE_INDEX).any():
                result.dropped_no_target += 1
                continue
            result.truncated += int(truncated)
            result.examples.append(EncodedExample(input_ids, labels, truncated))
    return result


def token_lengths(
    tokenizer: Any, examples: Sequence[Example], *, system_prompt: str | None = None
) -> list[int]:
    """Full token length of every conversation (nothing cut): what `lexiedge data stats` measures."""
    encoded = encode_examples(tokenizer, examples, seq_len=None, system_prompt=system_prompt)
    return [len(example) for example in encoded.examples]
