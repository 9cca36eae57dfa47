"""From a chat-jsonl batch to the keyword arguments of a Hugging Face causal LM.

Packed rows hold several examples one after another, each with ``position_ids`` restarting at 0.
transformers (5.x, `masking_utils.find_packed_sequence_indices`) keeps attention inside each
example when ``attention_mask`` is None: it reads example boundaries from ``position_ids``. So a
packed batch goes in without ``attention_mask``. A packed batch that is also padded gets each run of
padding its own restarting positions instead: padding then forms its own block that no real token
attends to, and its outputs carry no label (-100), so the 2D mask can go.

transformers looks for packed examples only when no KV cache is passed: a model in eval mode with
``config.use_cache`` creates one itself, so the inputs always say ``use_cache=False``.

:func:`answer_token_loss` computes the same loss as ``model(**inputs).loss`` but runs the output layer
only on the positions that have a label. With Qwen2.5's 151,936-token vocabulary that layer and its
softmax were a third of a LoRA step at the 0.5B shape (torch.profiler), and only about a third of the
tutor set's tokens are answer tokens.
"""

from __future__ import annotations

from typing import Any

import torch

IGNORE_INDEX = -100
# Causal LMs whose logits are exactly ``lm_head(decoder(...).last_hidden_state)``: no logit scaling or
# soft-capping in between, so the output layer may run on the labelled positions alone.
PLAIN_HEAD_MODEL_TYPES = frozenset({"qwen2", "qwen3", "llama", "mistral"})


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


def plain_head_lm(module: Any) -> Any | None:
    """The causal LM (decoder + ``lm_head``) inside a peft model, when its logits are the plain head's
    output; None for anything else (DDP wrappers included: their forward must run to sync gradients)."""
    get_base = getattr(module, "get_base_model", None)
    causal_lm = get_base() if callable(get_base) else module
    config = getattr(causal_lm, "config", None)
    if getattr(config, "model_type", None) not in PLAIN_HEAD_MODEL_TYPES:
        return None
    if not (hasattr(causal_lm, "model") and hasattr(causal_lm, "lm_head")):
        return None
    return causal_lm


def answer_token_loss(module: Any, inputs: dict[str, Any]) -> torch.Tensor:
    """Mean cross-entropy over the labelled tokens, as ``module(**inputs).loss``, with the output layer
    run on the positions that predict a label only (position i predicts label i + 1).

    Models outside :data:`PLAIN_HEAD_MODEL_TYPES` (or wrapped by DDP) take the plain forward. A batch
    without a labelled token returns a zero that still depends on the trained weights.
    """
    causal_lm = plain_head_lm(module)
    labels = inputs["labels"]
    if causal_lm is None:
        output = module(**inputs)
        if not bool((labels[:, 1:] != IGNORE_INDEX).any()):
            return output.logits.sum() * 0.0
        return output.loss
    decoder_inputs = {key: value for key, value in inputs.items() if key != "labels"}
    hidden = causal_lm.model(**decoder_inputs).last_hidden_state
    targets = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)
    predicting = targets != IGNORE_INDEX
    if not bool(predicting.any()):
        return hidden.sum() * 0.0
    # Positions as indices from the labels (real tensors) before they touch the hidden states: a boolean
    # mask on them would be a data-dependent shape, which the memory plan's fake-tensor pass cannot run.
    positions = predicting.flatten().nonzero().squeeze(1)
    logits = causal_lm.lm_head(hidden.flatten(0, 1).index_select(0, positions))
    return torch.nn.functional.cross_entropy(logits.float(), targets.flatten().index_select(0, positions))
