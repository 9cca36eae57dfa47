"""The `chat-jsonl` dataset plugin: chat JSONL -> tokenized, split, packed rows for causal-LM training."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from lexiedge.api import BuiltModel, DatasetPlugin, DataSplits, PluginSettings
from lexiedge.errors import UsageError
from lexiedge.samples import TUTOR_SAMPLE
from lexiedge_chat_jsonl.examples import EXPECTED_SOURCES, describe_bad_lines, load_examples, require_examples
from lexiedge_chat_jsonl.settings import ChatJsonlSettings
from lexiedge_runtime.tasks import causal_lm as lm_task

if TYPE_CHECKING:
    from rich.console import Console

SAMPLE_PATH = TUTOR_SAMPLE  # the bundled tutor set (lexiedge.samples: qwen-lora's tiny tokenizer reads it too)
SPLITS = ("train", "val", "test")
T = TypeVar("T")


def held_out_count(total: int, fraction: float) -> int:
    """Examples held out for a split: ``fraction`` of them, and at least one from 10 examples up."""
    if fraction <= 0:
        return 0
    count = round(total * fraction)
    return max(count, 1) if total >= 10 else count


def split_examples(items: Sequence[T], settings: ChatJsonlSettings) -> dict[str, list[T]]:
    """Shuffle by seed, keep ``max_examples``, then cut val and test off the front."""
    shuffled = list(items)
    random.Random(settings.seed).shuffle(shuffled)
    if settings.max_examples is not None:
        shuffled = shuffled[: settings.max_examples]
    n_val = held_out_count(len(shuffled), settings.val_fraction)
    n_test = held_out_count(len(shuffled), settings.test_fraction)
    if n_val + n_test >= len(shuffled):
        raise UsageError(
            f"{len(shuffled)} examples leave none for training after {n_val} validation and {n_test} test "
            "examples; add data or lower val_fraction/test_fraction"
        )
    return {
        "val": shuffled[:n_val],
        "test": shuffled[n_val : n_val + n_test],
        "train": shuffled[n_val + n_test :],
    }


def model_seq_len(model_settings: PluginSettings) -> int:
    seq_len = getattr(model_settings, "seq_len", None)
    if not isinstance(seq_len, int) or seq_len < 1:
        raise UsageError(
            f"chat-jsonl takes its row length from the model settings' seq_len; "
            f"{type(model_settings).__name__} has {seq_len!r}"
        )
    return seq_len


class ChatJsonlDataset(DatasetPlugin):
    """Chat data ({"messages": [...]}, ShareGPT or {"instruction", "input", "output"} records) as JSONL,
    a JSON array, Parquet or a saved ``datasets`` directory; default: the tutor set."""

    name: ClassVar[str] = "chat-jsonl"
    description: ClassVar[str] = (
        "chat records (JSONL, JSON, Parquet, a saved datasets folder) for causal-LM fine-tuning: chat "
        "template, loss on answers only, packed rows"
    )
    tasks: ClassVar[frozenset[str]] = frozenset({lm_task.NAME})
    Settings = ChatJsonlSettings

    def check_source(self, settings: PluginSettings, source: Path | None) -> None:
        """The file (or folder) exists and holds usable examples: read before the base model loads."""
        path = SAMPLE_PATH if source is None else Path(source)
        if not path.exists():
            raise UsageError(f"--data {path}: no such file or folder (expected {EXPECTED_SOURCES})")
        max_line_bytes = getattr(settings, "max_line_bytes", None) or ChatJsonlSettings().max_line_bytes
        examples, bad = load_examples(path, max_line_bytes)
        require_examples(path, examples, bad)

    def load(
        self,
        settings: PluginSettings,
        source: Path | None,
        *,
        built: BuiltModel,
        model_settings: PluginSettings,
        cache_dir: Path,
        console: Console,
    ) -> DataSplits:
        """Read, split, tokenize and (with ``packing``) pack; ``source=None`` is the bundled tutor set.

        Tokenizing is fast enough (Rust, batched) that nothing is cached in ``cache_dir``.
        """
        from lexiedge_chat_jsonl.encoding import check_tokenizer, encode_examples
        from lexiedge_chat_jsonl.packing import PadCollator, TokenRows, pack_rows, pad_id_of, single_rows

        if not isinstance(settings, ChatJsonlSettings):
            raise TypeError(f"chat-jsonl got {type(settings).__name__} settings, expected ChatJsonlSettings")
        tokenizer = built.tokenizer
        check_tokenizer(tokenizer)
        seq_len = model_seq_len(model_settings)
        path = SAMPLE_PATH if source is None else Path(source)

        examples, bad = load_examples(path, settings.max_line_bytes)
        for line in describe_bad_lines(bad):
            console.print(line, style="yellow", markup=False, highlight=False)
        require_examples(path, examples, bad)

        datasets: dict[str, TokenRows | None] = {}
        counts: dict[str, dict[str, int]] = {}
        for split, split_items in split_examples(examples, settings).items():
            encoded = encode_examples(
                tokenizer,
                split_items,
                seq_len=seq_len,
                truncate=settings.truncate,
                system_prompt=settings.system_prompt,
            )
            rows = pack_rows(encoded.examples, seq_len) if settings.packing else single_rows(encoded.examples)
            dataset = TokenRows(rows)
            datasets[split] = dataset if len(dataset) else None
            counts[split] = {
                "examples": dataset.num_examples,
                "rows": len(dataset),
                "tokens": dataset.num_tokens,
                "target_tokens": dataset.num_target_tokens,
                "truncated": encoded.truncated,
                "dropped_too_long": encoded.dropped_too_long,
                "dropped_no_target": encoded.dropped_no_target,
            }
        if datasets["train"] is None:
            raise UsageError(
                f"{path}: no training example left after tokenizing (every one was longer than seq_len "
                f"{seq_len} and truncate is off, or lost all its answer tokens when cut)"
            )
        summary = build_summary(path, counts, bad_lines=len(bad), seq_len=seq_len, packing=settings.packing)
        console.print(summary_line(summary), markup=False, highlight=False)
        return DataSplits(
            train=datasets["train"],
            val=datasets["val"],
            test=datasets["test"],
            collate=PadCollator(pad_id=pad_id_of(tokenizer), attention_mask=not settings.packing),
            summary=summary,
        )


def build_summary(
    path: Path, counts: dict[str, dict[str, int]], *, bad_lines: int, seq_len: int, packing: bool
) -> dict[str, Any]:
    """Per-split counts plus the totals a run report shows; efficiency = real tokens / (rows * seq_len)."""
    train = counts["train"]
    return {
        "source": str(path),
        "seq_len": seq_len,
        "packing": packing,
        "bad_lines": bad_lines,
        "examples": {split: counts[split]["examples"] for split in SPLITS},
        "rows": {split: counts[split]["rows"] for split in SPLITS},
        "tokens": {split: counts[split]["tokens"] for split in SPLITS},
        "target_tokens": {split: counts[split]["target_tokens"] for split in SPLITS},
        "truncated": sum(counts[split]["truncated"] for split in SPLITS),
        "dropped": sum(
            counts[split]["dropped_too_long"] + counts[split]["dropped_no_target"] for split in SPLITS
        ),
        "packing_efficiency": train["tokens"] / (train["rows"] * seq_len) if train["rows"] else 0.0,
    }


def summary_line(summary: dict[str, Any]) -> str:
    examples, rows = summary["examples"], summary["rows"]
    kind = "packed rows" if summary["packing"] else "rows (unpacked)"
    text = (
        f"chat-jsonl {summary['source']}: {examples['train']}/{examples['val']}/{examples['test']} "
        f"train/val/test examples -> {rows['train']}/{rows['val']}/{rows['test']} {kind} "
        f"of <= {summary['seq_len']} tokens, {summary['tokens']['train']} train tokens "
        f"({summary['target_tokens']['train']} in answers), efficiency {summary['packing_efficiency']:.1%}"
    )
    extras = [f"{summary[key]} {key}" for key in ("truncated", "dropped", "bad_lines") if summary[key]]
    return text + (f"; {', '.join(extras)}" if extras else "")
