"""Tokenizing with the chat template, answer-only labels, packing, padding, splits: on the real sample set."""

from __future__ import annotations

import io
from itertools import pairwise
from collections import Counter

import numpy as np
import pytest
import torch
from rich.console import Console
from torch.utils.data import DataLoader

from lexiedge.api import BuiltModel, PluginSettings
from lexiedge.errors import LexiedgeError
from lexiedge_chat_jsonl import SAMPLE_PATH, ChatJsonlDataset, ChatJsonlSettings, load_examples
from lexiedge_chat_jsonl.encoding import IGNORE_INDEX, encode_examples
from lexiedge_chat_jsonl.packing import first_fit_decreasing

IM_END = "<|im_end|>"


class ModelSettings(PluginSettings):
    """The one model setting the dataset reads (qwen-lora's has it too)."""

    seq_len: int = 512


def load(tokenizer, settings: ChatJsonlSettings | None = None, source=None, seq_len: int = 512):
    out = io.StringIO()
    splits = ChatJsonlDataset().load(
        settings or ChatJsonlSettings(),
        source,
        built=BuiltModel(module=torch.nn.Identity(), tokenizer=tokenizer),
        model_settings=ModelSettings(seq_len=seq_len),
        cache_dir=SAMPLE_PATH.parent,
        console=Console(file=out, width=400),
    )
    return splits, out.getvalue()


def labelled_runs(labels: np.ndarray, ids: np.ndarray) -> list[list[int]]:
    """The labelled tokens as contiguous runs (one per answer)."""
    runs, current = [], []
    for token, label in zip(ids, labels):
        if label != IGNORE_INDEX:
            assert label == token, "a label is the token itself (the model shifts)"
            current.append(int(token))
        elif current:
            runs.append(current)
            current = []
    return runs + ([current] if current else [])


@pytest.fixture(scope="module")
def qwen_tiny_tokenizer():
    """The qwen-lora plugin's tiny tokenizer (Qwen2 pre-tokenizer, full Qwen2.5 template), when installed."""
    tiny = pytest.importorskip(
        "lexiedge_qwen_lora.tiny", reason="the qwen-lora plugin's tiny builder is not installed"
    )
    return tiny.train_tokenizer(tiny.tutor_corpus())


@pytest.mark.parametrize("which", ["chatml_tokenizer", "qwen_tiny_tokenizer"])
def test_labels_are_exactly_the_answers_and_their_im_end(which, request, tmp_path, write_jsonl) -> None:
    tokenizer = request.getfixturevalue(which)
    sample, _ = load_examples(SAMPLE_PATH)
    multi_turn = {
        "messages": [
            {"role": "user", "content": "Is 'I am agree' correct?"},
            {"role": "assistant", "content": '{"task": "grammar", "corrected": "I agree."}'},
            {"role": "user", "content": "And 'She go'?"},
            {"role": "assistant", "content": "  She goes.\nThird person takes -s.  "},
        ]
    }
    extra, _ = load_examples(write_jsonl([multi_turn]))
    examples = sample[:40] + extra
    encoded = encode_examples(tokenizer, examples, seq_len=None)
    assert len(encoded.examples) == len(examples) and encoded.truncated == 0
    for example, tokens in zip(examples, encoded.examples):
        answers = [m.content for m in example.messages if m.role == "assistant"]
        runs = labelled_runs(tokens.labels, tokens.input_ids)
        assert [tokenizer.decode(run) for run in runs] == [answer + IM_END for answer in answers]
        # Everything else (system, user, role headers) is context only; ids match the whole rendering.
        rendered = tokenizer.apply_chat_template(example.as_dicts(), tokenize=False)
        assert tokens.input_ids.tolist() == tokenizer(rendered, add_special_tokens=False)["input_ids"]
    # Without a system turn the template's default system prompt is rendered (not labelled).
    assert tokenizer.decode(encoded.examples[-1].input_ids).startswith("<|im_start|>system\nYou are Qwen")


def test_first_fit_decreasing_is_first_fit_over_sorted_items() -> None:
    lengths = [5, 9, 3, 7, 2, 2, 8, 1]
    bins = first_fit_decreasing(lengths, 10)
    # Reference: the plain O(n * bins) first-fit over lengths sorted longest first.
    reference: list[list[int]] = []
    for item in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        for bin_ in reference:
            if sum(lengths[i] for i in bin_) + lengths[item] <= 10:
                bin_.append(item)
                break
        else:
            reference.append([item])
    assert bins == reference
    rng = np.random.default_rng(0)
    for _ in range(20):
        lengths = rng.integers(1, 64, size=int(rng.integers(1, 60))).tolist()
        bins = first_fit_decreasing(lengths, 64)
        assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
        assert all(sum(lengths[i] for i in b) <= 64 for b in bins)
    with pytest.raises(ValueError):
        first_fit_decreasing([65], 64)


def test_packing_keeps_examples_whole_and_restarts_positions(chatml_tokenizer) -> None:
    seq_len = 512
    splits, printed = load(chatml_tokenizer, ChatJsonlSettings(val_fraction=0.0), seq_len=seq_len)
    examples, _ = load_examples(SAMPLE_PATH)
    encoded = encode_examples(chatml_tokenizer, examples, seq_len=seq_len).examples
    expected = Counter(tuple(e.input_ids.tolist()) for e in encoded)

    found: Counter = Counter()
    for index in range(len(splits.train)):
        item = splits.train[index]
        ids, labels, positions = item["input_ids"], item["labels"], item["position_ids"]
        assert ids.dtype == labels.dtype == positions.dtype == torch.int64
        assert len(ids) <= seq_len
        starts = (positions == 0).nonzero().flatten().tolist() + [len(ids)]
        for start, end in pairwise(starts):
            assert positions[start:end].tolist() == list(range(end - start))
            segment = tuple(ids[start:end].tolist())
            assert segment[:3] == tuple(
                chatml_tokenizer.convert_tokens_to_ids(["<|im_start|>", "system", "Ċ"])
            )
            found[segment] += 1
    assert found == expected  # every example exactly once, whole, and nothing else
    assert splits.val is None and splits.test is None
    assert len(splits.train) < len(encoded) / 2  # several tutor examples per 512-token row
    assert "packed rows" in printed and f"{len(splits.train)}/0/0 packed rows" in printed


def test_packing_beats_padding_on_the_sample_set(chatml_tokenizer) -> None:
    packed, _ = load(chatml_tokenizer, ChatJsonlSettings(packing=True))
    padded, _ = load(chatml_tokenizer, ChatJsonlSettings(packing=False))
    assert packed.summary["tokens"] == padded.summary["tokens"]
    assert packed.summary["target_tokens"] == padded.summary["target_tokens"]
    assert packed.summary["packing_efficiency"] > 2 * padded.summary["packing_efficiency"]

    def batches_share(splits) -> tuple[float, int]:
        positions = targets = 0
        for batch in DataLoader(splits.train, batch_size=8, shuffle=False, collate_fn=splits.collate):
            positions += batch["input_ids"].numel()
            targets += int((batch["labels"] != IGNORE_INDEX).sum())
        return splits.summary["tokens"]["train"] / positions, targets

    packed_share, packed_targets = batches_share(packed)
    padded_share, padded_targets = batches_share(padded)
    assert packed_targets == padded_targets == packed.summary["target_tokens"]["train"]
    assert packed_share > padded_share  # fewer positions computed for the same tokens, batch by batch
    assert "attention_mask" not in next(
        iter(DataLoader(packed.train, batch_size=4, collate_fn=packed.collate))
    )


def test_unpacked_batches_pad_to_the_longest_with_an_attention_mask(chatml_tokenizer) -> None:
    splits, printed = load(chatml_tokenizer, ChatJsonlSettings(packing=False))
    items = [splits.train[i] for i in range(5)]
    batch = splits.collate(items)
    lengths = [len(item["input_ids"]) for item in items]
    assert set(batch) == {"input_ids", "labels", "position_ids", "attention_mask"}
    assert all(t.dtype == torch.int64 and t.shape == (5, max(lengths)) for t in batch.values())
    pad_id = chatml_tokenizer.pad_token_id
    for row, n in enumerate(lengths):
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (max(lengths) - n)
        assert torch.equal(batch["input_ids"][row, :n], items[row]["input_ids"])
        assert (batch["input_ids"][row, n:] == pad_id).all() and (
            batch["labels"][row, n:] == IGNORE_INDEX
        ).all()
        assert batch["position_ids"][row, :n].tolist() == list(range(n))
        assert batch["position_ids"][row, n:].tolist() == list(
            range(max(lengths) - n)
        )  # a segment of its own
    assert "rows (unpacked)" in printed


def test_splits_are_deterministic_by_seed_and_sized_by_fraction(chatml_tokenizer) -> None:
    settings = ChatJsonlSettings(val_fraction=0.1, test_fraction=0.05, seed=3, packing=False)
    first, _ = load(chatml_tokenizer, settings)
    again, _ = load(chatml_tokenizer, settings)
    other, _ = load(chatml_tokenizer, settings.model_copy(update={"seed": 4}))
    n = len(load_examples(SAMPLE_PATH)[0])
    counts = first.summary["examples"]
    assert (counts["val"], counts["test"], counts["train"]) == (
        round(n * 0.1),
        round(n * 0.05),
        n - counts["val"] - counts["test"],
    )

    def ids(dataset) -> list[list[int]]:
        return [dataset[i]["input_ids"].tolist() for i in range(len(dataset))]

    assert ids(first.val) == ids(again.val) and ids(first.train) == ids(again.train)
    assert ids(first.val) != ids(other.val)
    train_set = {tuple(x) for x in ids(first.train)}
    assert not train_set & {tuple(x) for x in ids(first.val)}  # no example in two splits


def test_small_sets_keep_one_validation_example_and_max_examples_applies(
    chatml_tokenizer, write_jsonl
) -> None:
    examples = [{"instruction": f"Say {i}.", "output": f"{i}"} for i in range(10)]
    path = write_jsonl(examples)
    splits, _ = load(chatml_tokenizer, ChatJsonlSettings(val_fraction=0.01), source=path)
    assert splits.summary["examples"] == {"train": 9, "val": 1, "test": 0}
    few, _ = load(chatml_tokenizer, ChatJsonlSettings(val_fraction=0.01, max_examples=9), source=path)
    assert few.summary["examples"] == {"train": 9, "val": 0, "test": 0} and few.val is None


def test_long_examples_are_truncated_and_counted_or_dropped(chatml_tokenizer, write_jsonl) -> None:
    long_answer = " ".join(["The weather is lovely today."] * 60)
    lines = [
        {"instruction": "Describe the weather.", "output": long_answer},
        {
            "instruction": " ".join(["Please read this long text."] * 80),
            "output": "OK.",
        },  # answer past seq_len
        {"instruction": "Say hi.", "output": "Hi!"},
    ]
    path = write_jsonl(lines)
    settings = ChatJsonlSettings(val_fraction=0.0)
    cut, printed = load(chatml_tokenizer, settings, source=path, seq_len=128)
    assert (
        cut.summary["truncated"] == 1
        and cut.summary["dropped"] == 1
        and cut.summary["examples"]["train"] == 2
    )
    assert "1 truncated" in printed and "1 dropped" in printed
    assert max(len(cut.train[i]["input_ids"]) for i in range(len(cut.train))) <= 128
    strict, _ = load(
        chatml_tokenizer, settings.model_copy(update={"truncate": False}), source=path, seq_len=128
    )
    assert (
        strict.summary["truncated"] == 0
        and strict.summary["dropped"] == 2
        and strict.summary["examples"]["train"] == 1
    )


def test_bad_lines_are_printed_and_an_all_bad_source_is_an_error(chatml_tokenizer, write_jsonl) -> None:
    good = {"instruction": "Say hi.", "output": "Hi!"}
    teacher = {"messages": [{"role": "teacher", "content": "x"}, {"role": "assistant", "content": "y"}]}
    path = write_jsonl([good, "{broken", good, teacher], name="mixed.jsonl")
    splits, printed = load(chatml_tokenizer, ChatJsonlSettings(val_fraction=0.0), source=path)
    assert splits.summary["bad_lines"] == 2 and splits.summary["examples"]["train"] == 2
    assert "skipped 2 bad lines" in printed and "mixed.jsonl:2: invalid JSON" in printed
    assert "mixed.jsonl:4: messages[0] has unknown role 'teacher'" in printed  # printed as text, not markup
    all_bad = write_jsonl(["{broken", {"messages": []}], name="bad.jsonl")
    with pytest.raises(LexiedgeError, match="bad.jsonl: none of its 2 non-blank lines"):
        load(chatml_tokenizer, source=all_bad)


def test_a_tokenizer_without_chat_template_is_refused(chatml_tokenizer) -> None:
    import copy

    plain = copy.deepcopy(chatml_tokenizer)
    plain.chat_template = None
    with pytest.raises(LexiedgeError, match="no chat template"):
        load(plain)


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="below 1"):
        ChatJsonlSettings(val_fraction=0.6, test_fraction=0.4)
    with pytest.raises(ValueError):
        ChatJsonlSettings(shuffle=True)  # unknown keys are errors
