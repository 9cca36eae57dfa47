"""Rows of tokens for training: whole examples packed first-fit decreasing, and the batch collate.

A row holds one or more whole examples back to back; ``position_ids`` restart at 0 where each
example starts, which is how the model side tells the examples apart (block-diagonal causal
attention, no ``attention_mask``). Packing is computed once, when the dataset is loaded, so the
number of rows is fixed and a DataLoader (shuffled or not) iterates over exactly those rows.

Batch format (every tensor int64, shape (B, L), L = the longest row of the batch):
  input_ids     tokens; padding = ``pad_id``
  labels        the token where the loss applies, ``IGNORE_INDEX`` (-100) elsewhere and on padding
  position_ids  0.. per example; the padding is a segment of its own (0, 1, 2, ...)
  attention_mask  only when unpacked: 1 on real tokens, 0 on padding
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from lexiedge_chat_jsonl.encoding import IGNORE_INDEX, EncodedExample


def first_fit_decreasing(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Bins (lists of item indices) of total length <= ``capacity``: each item, longest first, goes
    into the first bin with room. O(n log n) through a max-segment-tree over the bins' free space.

    Ties keep the input order, so the result is deterministic in the (already shuffled) input.
    """
    if any(length > capacity for length in lengths):
        raise ValueError(f"an item is longer than the capacity {capacity}")
    if any(length <= 0 for length in lengths):
        raise ValueError("items must have a positive length")
    count = len(lengths)
    size = 1
    while size < max(count, 1):
        size *= 2
    # free[size + b] = free space of bin b (every bin starts empty); inner nodes hold their subtree's max
    free = [capacity] * (2 * size)
    bins: list[list[int]] = []
    for item in sorted(range(count), key=lambda i: -lengths[i]):
        need = lengths[item]
        node = 1
        while node < size:  # descend to the leftmost bin with enough room
            node = 2 * node if free[2 * node] >= need else 2 * node + 1
        bin_index = node - size
        if bin_index == len(bins):
            bins.append([])
        bins[bin_index].append(item)
        free[node] -= need
        node //= 2
        while node:
            free[node] = max(free[2 * node], free[2 * node + 1])
            node //= 2
    return bins


@dataclass(frozen=True)
class Row:
    """One training row: examples concatenated, with their lengths to rebuild position ids."""

    input_ids: np.ndarray  # int32 (n,)
    labels: np.ndarray  # int32 (n,)
    segment_lengths: tuple[int, ...]

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def position_ids(self) -> np.ndarray:
        return np.concatenate([np.arange(length, dtype=np.int64) for length in self.segment_lengths])


def _row_of(examples: Sequence[EncodedExample]) -> Row:
    return Row(
        input_ids=np.concatenate([e.input_ids for e in examples]),
        labels=np.concatenate([e.labels for e in examples]),
        segment_lengths=tuple(len(e) for e in examples),
    )


def pack_rows(examples: Sequence[EncodedExample], seq_len: int) -> list[Row]:
    """Whole examples packed into rows of at most ``seq_len`` tokens (first-fit decreasing)."""
    bins = first_fit_decreasing([len(e) for e in examples], seq_len)
    return [_row_of([examples[i] for i in items]) for items in bins]


def single_rows(examples: Sequence[EncodedExample]) -> list[Row]:
    """One example per row (packing off)."""
    return [_row_of([e]) for e in examples]


class TokenRows(Dataset):
    """A split as rows; item ``i`` is one row's ``input_ids``, ``labels`` and ``position_ids`` (int64)."""

    def __init__(self, rows: Sequence[Row]) -> None:
        self.rows = list(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        row = self.rows[index]
        return {
            "input_ids": torch.from_numpy(row.input_ids.astype(np.int64)),
            "labels": torch.from_numpy(row.labels.astype(np.int64)),
            "position_ids": torch.from_numpy(row.position_ids()),
        }

    @property
    def num_examples(self) -> int:
        return sum(len(row.segment_lengths) for row in self.rows)

    @property
    def num_tokens(self) -> int:
        return sum(len(row) for row in self.rows)

    @property
    def num_target_tokens(self) -> int:
        return sum(int((row.labels != IGNORE_INDEX).sum()) for row in self.rows)


@dataclass(frozen=True)
class PadCollator:
    """Pads rows to the longest in the batch (or to ``pad_to``); a plain class so DataLoader workers can pickle it."""

    pad_id: int
    attention_mask: bool  # True when unpacked: the model then masks padding with it
    pad_to: int | None = None  # a fixed row length (static shapes, as `padding="max_length"`); None: the longest row

    def __call__(self, items: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        if not items:
            raise ValueError("cannot collate an empty batch")
        longest = max(int(item["input_ids"].shape[0]) for item in items)
        if self.pad_to is not None:
            longest = max(longest, self.pad_to)
        batch_size = len(items)
        input_ids = torch.full((batch_size, longest), self.pad_id, dtype=torch.long)
        labels = torch.full((batch_size, longest), IGNORE_INDEX, dtype=torch.long)
        position_ids = torch.zeros((batch_size, longest), dtype=torch.long)
        mask = torch.zeros((batch_size, longest), dtype=torch.long)
        for b, item in enumerate(items):
            n = int(item["input_ids"].shape[0])
            input_ids[b, :n] = item["input_ids"]
            labels[b, :n] = item["labels"]
            position_ids[b, :n] = item["position_ids"]
            # Padding counts 0, 1, 2, ...: a segment of its own, so no real token's attention block grows.
            position_ids[b, n:] = torch.arange(longest - n)
            mask[b, :n] = 1
        batch = {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}
        if self.attention_mask:
            batch["attention_mask"] = mask
        return batch


def pad_id_of(tokenizer: object) -> int:
    """The tokenizer's pad token, else its end-of-sequence token (Qwen2.5: <|endoftext|>)."""
    for attribute in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, attribute, None)
        if isinstance(value, int):
            return value
    raise ValueError(f"tokenizer {type(tokenizer).__name__} has neither a pad nor an end-of-sequence token")
