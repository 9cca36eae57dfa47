"""From a chat-jsonl batch to the keyword arguments of a Hugging Face causal LM.

Packed rows hold several examples one after another, each with ``position_ids`` restarting at 0.
transformers (5.x, `masking_utils.find_packed_sequence_indices`) keeps attention inside each
example when ``attention_mask`` is None: it reads example boundaries from ``position_ids``. So a
packed batch goes in without ``attention_mask``. A packed batch that is also padded gets each run of
padding its own restarting positions instead: padding then forms its own block that no real token
attends to, and its outputs carry no label (-100), so the 2D mask can go.

transformers looks for packed examples only when no KV cache is passed: a model in eval mode with
``config.use_cache`` creates one itself, so the inputs always say ``use_cache=False``.
"""

from __future__ import annotations

from typing import Any

import torch

IGNORE_INDEX = -100


def padding_positions(is_pad: torch.Tensor) -> torch.Tensor:
    """0, 1, 2, ... inside every run of padding (the index since the run started)."""
    index = torch.arange(is_pad.shape[-1], device=is_pad.device).expand_as(is_pad)
    previous_is_pad = torch.nn.functional.pad(is_pad[..., :-1], (1, 0), value=False)
    run_start = torch.where(is_pad & ~previous_is_pad, index, torch.zeros_like(index))
    return index - torch.cummax(run_start, dim=-1).values


def is_packed(position_ids: torch.Tensor, real: torch.Tensor | None = None) -> bool:
    """Whether some row holds more than one example (a real token at position 0 after the row's start)."""
    restarts = position_ids[:, 1:] == 0
    if real is not None:
        restarts &= real[:, 1:]
    return bool(restarts.any())


def model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """``input_ids``, ``labels``, ``position_ids``, ``attention_mask`` (and no cache) for ``model(**inputs)``.

    Labels at an example's first token are dropped: the previous example's last token must not be
    trained to predict the next example's start (the model shifts labels by one inside).
    """
    input_ids = batch["input_ids"]
    labels = batch.get("labels")
    position_ids = batch.get("position_ids")
    attention_mask = batch.get("attention_mask")
    if position_ids is None:
        return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask, "use_cache": False}
    if labels is not None:
        labels = labels.masked_fill(position_ids == 0, IGNORE_INDEX)
    if attention_mask is not None:
        real = attention_mask.bool()
        if bool(real.all()):
            attention_mask = None
        elif is_packed(position_ids, real):
            position_ids = torch.where(real, position_ids, padding_positions(~real))
            attention_mask = None
    return {
        "input_ids": input_ids,
        "labels": labels,
        "position_ids": position_ids,
        "attention_mask": attention_mask,
        "use_cache": False,
    }
