"""`chat-jsonl`: chat records for causal-LM (LoRA) fine-tuning, and the bundled English-tutor set.

It reads JSONL (the name it was registered under, kept: every profile and run directory records it), a
JSON array, Parquet and a saved ``datasets`` folder (:func:`~lexiedge_chat_jsonl.examples.load_examples`).

    from lexiedge_chat_jsonl import SAMPLE_PATH, load_examples
    examples, bad_lines = load_examples(SAMPLE_PATH)

Light to import: torch and transformers are only imported when a dataset is loaded.
"""

from __future__ import annotations

from lexiedge_chat_jsonl.dataset import SAMPLE_PATH, ChatJsonlDataset
from lexiedge_chat_jsonl.examples import BadLine, Example, Message, load_examples
from lexiedge_chat_jsonl.settings import ChatJsonlSettings

__all__ = [
    "SAMPLE_PATH",
    "BadLine",
    "ChatJsonlDataset",
    "ChatJsonlSettings",
    "Example",
    "Message",
    "load_examples",
]
