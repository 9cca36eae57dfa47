"""Packed rows: attention stays inside each example, so packed logits equal each example run alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lexiedge_causal_lm.inputs import model_inputs

CONVERSATIONS = [
    [{"role": "user", "content": "Correct: She go to school yesterday."},
     {"role": "assistant", "content": "She went to school yesterday."}],
    [{"role": "user", "content": "What does 'reluctant' mean?"},
     {"role": "assistant", "content": "Not willing to do something: 'He was reluctant to speak.'"}],
    [{"role": "system", "content": "You are a patient English tutor."},
     {"role": "user", "content": "Is 'informations' right?"},
     {"role": "assistant", "content": "No: 'information' is uncountable."}],
]


def _encode(tokenizer) -> list[torch.Tensor]:
    texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in CONVERSATIONS]
    return [tokenizer(t, add_special_tokens=False, return_tensors="pt").input_ids[0] for t in texts]


def _model(tiny_dir: Path, attention: str):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir, attn_implementation=attention)
    # The saved init is near-uniform (std 0.02); stronger weights make any leak between examples visible.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.2)
    return model.eval()  # eval mode with use_cache=True in the config: the inputs must switch the cache off


def _forward(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    inputs = model_inputs(batch)
    inputs.pop("labels")
    with torch.no_grad():
        return model(**inputs).logits


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_row_logits_equal_each_example_alone(tiny_dir: Path, attention: str) -> None:
    from transformers import AutoTokenizer

    model = _model(tiny_dir, attention)
    examples = _encode(AutoTokenizer.from_pretrained(tiny_dir))
    lengths = [len(e) for e in examples]
    pad = 5
    row = torch.cat([*examples, torch.zeros(pad, dtype=torch.long)])[None]
    positions = torch.cat([torch.arange(n) for n in lengths] + [torch.arange(pad)])[None]
    real = torch.cat([torch.ones(sum(lengths)), torch.zeros(pad)]).long()[None]
    variants = {
        "packed": {"input_ids": row[:, :-pad], "position_ids": positions[:, :-pad]},
        "packed + padding segment": {"input_ids": row, "position_ids": positions},
        "packed + padding + 2D mask": {"input_ids": row, "position_ids": positions, "attention_mask": real},
    }
    alone = [_forward(model, {"input_ids": e[None]})[0] for e in examples]
    for name, batch in variants.items():
        packed = _forward(model, batch)[0]
        starts = torch.tensor([0, *lengths]).cumsum(0)
        for index, expected in enumerate(alone):
            got = packed[starts[index] : starts[index + 1]]
            torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4, msg=f"{name}: example {index}")

    # Without position-based separation the later examples would see the earlier ones: the check can fail.
    leaked = _forward(model, {"input_ids": row[:, :-pad], "attention_mask": torch.ones_like(row[:, :-pad])})[0]
    assert (leaked[lengths[0] : lengths[0] + lengths[1]] - alone[1]).abs().max() > 1e-2


def test_packed_loss_is_the_token_weighted_mean_of_each_example(tiny_dir: Path) -> None:
    """No example is trained to predict the next one's first token (the boundary label is dropped)."""
    from transformers import AutoTokenizer

    model = _model(tiny_dir, "sdpa")
    examples = _encode(AutoTokenizer.from_pretrained(tiny_dir))
    with torch.no_grad():
        losses = [model(input_ids=e[None], labels=e[None]).loss for e in examples]
    targets = torch.tensor([len(e) - 1 for e in examples], dtype=torch.float32)
    expected = (torch.stack(losses) * targets).sum() / targets.sum()
    row = torch.cat(examples)[None]
    batch = {"input_ids": row, "labels": row.clone(), "position_ids": torch.cat([torch.arange(len(e)) for e in examples])[None]}
    with torch.no_grad():
        packed = model(**model_inputs(batch)).loss
    torch.testing.assert_close(packed, expected, rtol=1e-5, atol=1e-5)


def test_chat_jsonl_collate_feeds_the_model_correctly(tiny_dir: Path) -> None:
    """The dataset's batches (packed, and padded with attention_mask) give each example's own logits."""
    packing = pytest.importorskip("lexiedge_chat_jsonl.packing")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    model = _model(tiny_dir, "sdpa")
    examples = _encode(tokenizer)
    alone = [_forward(model, {"input_ids": e[None]})[0] for e in examples]
    items = [{"input_ids": e, "labels": e.clone(), "position_ids": torch.arange(len(e))} for e in examples]
    pad_id = packing.pad_id_of(tokenizer)

    # Packed: examples 0+1 in one row, example 2 alone (padded to the longer row).
    row01 = {k: torch.cat([items[0][k], items[1][k]]) for k in items[0]}
    packed = packing.PadCollator(pad_id=pad_id, attention_mask=False)([row01, items[2]])
    logits = _forward(model, packed)
    n0, n1, n2 = (len(e) for e in examples)
    torch.testing.assert_close(logits[0, :n0], alone[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(logits[0, n0 : n0 + n1], alone[1], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(logits[1, :n2], alone[2], rtol=1e-4, atol=1e-4)

    # Unpacked: one example per row, padded, with attention_mask.
    padded = packing.PadCollator(pad_id=pad_id, attention_mask=True)(items)
    assert "attention_mask" in padded
    logits = _forward(model, padded)
    for index, expected in enumerate(alone):
        torch.testing.assert_close(logits[index, : len(examples[index])], expected, rtol=1e-4, atol=1e-4)

    # Fixed-length rows (pad_to, as `padding="max_length"`): the same logits, padding labelled -100.
    longest = max(len(e) for e in examples)
    fixed = packing.PadCollator(pad_id=pad_id, attention_mask=True, pad_to=longest + 7)(items)
    assert fixed["input_ids"].shape == (len(items), longest + 7)
    assert bool((fixed["labels"][:, longest:] == -100).all()) and int(fixed["attention_mask"][:, longest:].sum()) == 0
    logits = _forward(model, fixed)
    for index, expected in enumerate(alone):
        torch.testing.assert_close(logits[index, : len(examples[index])], expected, rtol=1e-4, atol=1e-4)


def _lora(tiny_dir: Path):
    from peft import LoraConfig, get_peft_model

    model = _model(tiny_dir, "sdpa").train()
    targets = ["q_proj", "v_proj", "down_proj"]
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=targets, task_type="CAUSAL_LM"))
    with torch.no_grad():  # peft starts lora_B at zero: give the adapter a gradient path through both factors
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.1)
    return model


def _loss_and_grads(model, loss_fn, batch):
    model.zero_grad(set_to_none=True)
    loss = loss_fn(model, model_inputs(batch))
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def test_answer_token_loss_equals_the_full_logits_loss_with_the_same_gradients(tiny_dir: Path) -> None:
    """The output layer on labelled positions only: the loss and every adapter gradient are the model's own
    (packed rows with a padding segment, padded rows with a mask, answer-only labels)."""
    packing = pytest.importorskip("lexiedge_chat_jsonl.packing")
    from transformers import AutoTokenizer

    from lexiedge_causal_lm.inputs import answer_token_loss, plain_head_lm

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    model = _lora(tiny_dir)
    assert plain_head_lm(model) is model.get_base_model()
    examples = _encode(tokenizer)
    items = []
    for e in examples:  # labels on the second half only, as answers follow prompts
        labels = e.clone()
        labels[: len(e) // 2] = -100
        items.append({"input_ids": e, "labels": labels, "position_ids": torch.arange(len(e))})
    pad_id = packing.pad_id_of(tokenizer)
    row01 = {k: torch.cat([items[0][k], items[1][k]]) for k in items[0]}
    batches = {
        "packed": packing.PadCollator(pad_id=pad_id, attention_mask=False)([row01, items[2]]),
        "padded": packing.PadCollator(pad_id=pad_id, attention_mask=True)(items),
    }
    for name, batch in batches.items():
        full_loss, full_grads = _loss_and_grads(model, lambda m, inputs: m(**inputs).loss, batch)
        loss, grads = _loss_and_grads(model, answer_token_loss, batch)
        torch.testing.assert_close(loss, full_loss, rtol=1e-5, atol=1e-6, msg=name)
        assert set(grads) == set(full_grads) and all(bool(g.abs().sum() > 0) for g in grads.values())
        for key, expected in full_grads.items():
            torch.testing.assert_close(grads[key], expected, rtol=1e-4, atol=1e-6, msg=f"{name}: {key}")

    # A batch whose labels are all ignored trains nothing: a zero loss (not NaN) with zero gradients.
    empty = dict(batches["padded"], labels=torch.full_like(batches["padded"]["labels"], -100))
    loss, grads = _loss_and_grads(model, answer_token_loss, empty)
    assert float(loss) == 0.0 and all(bool((g == 0).all()) for g in grads.values())
