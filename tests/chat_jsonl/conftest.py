"""A real (small) Qwen-style tokenizer for the chat-jsonl tests, trained here with `tokenizers`.

Byte-level BPE trained on the bundled tutor set, Qwen's special tokens <|endoftext|>, <|im_start|>,
<|im_end|> added after the learned vocabulary, and the Qwen2.5 ChatML chat template (without the
tool-calling branches, which these tests never use), wrapped as a PreTrainedTokenizerFast.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
QWEN_DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

# Qwen2.5-Instruct's template, tools removed: a default system turn when there is none, then ChatML turns.
CHATML_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\n" + QWEN_DEFAULT_SYSTEM + "<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if (message.role == 'user') or (message.role == 'system' and not loop.first)"
    " or (message.role == 'assistant') %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def train_chatml_tokenizer(texts: list[str], vocab_size: int = 1200):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.add_special_tokens([ENDOFTEXT, IM_START, IM_END])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        chat_template=CHATML_TEMPLATE,
        clean_up_tokenization_spaces=False,
    )


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@pytest.fixture(scope="session")
def chatml_tokenizer():
    """Trained once per session on the sample set's text (a second or two)."""
    from lexiedge_chat_jsonl import SAMPLE_PATH

    texts = [
        s for line in SAMPLE_PATH.read_text(encoding="utf-8").splitlines() for s in _strings(json.loads(line))
    ]
    return train_chatml_tokenizer(texts)


@pytest.fixture(scope="session")
def tokenizer_dir(chatml_tokenizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tokenizer saved as a directory (what `--tokenizer DIR` reads)."""
    directory = tmp_path_factory.mktemp("tokenizer")
    chatml_tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture
def write_jsonl(tmp_path: Path):
    """write_jsonl(lines, name="data.jsonl") -> path; string lines are written as they are (broken JSON)."""

    def write(lines: list[object], name: str = "data.jsonl") -> Path:
        path = tmp_path / name
        path.write_text(
            "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8"
        )
        return path

    return write
