"""The pretrained tiny base (`tiny:qwen2-tutor`): built here, learned something, never saw the answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lexiedge.errors import UsageError
from lexiedge.samples import TUTOR_SAMPLE
from lexiedge_qwen_lora.base import TUTOR, BaseSource, base_record, resolve_base
from lexiedge_qwen_lora.settings import QwenLoraSettings
from lexiedge_qwen_lora.tiny import (
    build_tiny_qwen2,
    builtin_tutor_conversations,
    pretrain_causal_lm,
    sample_set_questions,
    tutor_base_dir,
)


def test_pretraining_text_holds_questions_but_no_answer_of_the_sample_set() -> None:
    questions = sample_set_questions()
    assert len(questions) > 300, "the bundled sample set has a few hundred examples"
    assert all(m["role"] != "assistant" for conversation in questions for m in conversation)
    answers = [line for line in TUTOR_SAMPLE.read_text().splitlines() if line.strip()]
    first_answer = next(m["content"] for m in json.loads(answers[0])["messages"] if m["role"] == "assistant")
    text = json.dumps(questions + builtin_tutor_conversations())
    assert json.dumps(first_answer)[1:-1] not in text


def test_pretraining_lowers_the_loss_deterministically(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    random_dir = build_tiny_qwen2(tmp_path / "tiny", hidden_size=32, num_hidden_layers=1, tokenizer_vocab=512)
    stream = list(range(300, 316)) * 40  # a repeated pattern a model can learn in a few steps
    runs = []
    for _ in range(2):
        model = AutoModelForCausalLM.from_pretrained(random_dir, dtype=torch.float32)
        runs.append(pretrain_causal_lm(model, stream, steps=40, seq_len=32, batch_size=4, seed=3))
    assert runs[0] == runs[1], "same seed, same losses"
    assert runs[0][-1] < 0.5 * runs[0][0]


def test_the_tutor_base_is_cached_recorded_as_a_snapshot_and_named_in_errors() -> None:
    directory = tutor_base_dir()
    assert tutor_base_dir() == directory, "built once, then read from the cache"
    record = json.loads((directory / "pretraining.json").read_text())
    assert record["last_loss"] < 0.5 * record["first_loss"]
    source = resolve_base(QwenLoraSettings(base=TUTOR))
    assert source == BaseSource("built", TUTOR, path=directory)
    assert source.location == str(directory)
    model = torch.nn.Linear(1, 1)
    assert base_record(source, QwenLoraSettings(base=TUTOR), model)["snapshot"] == "base"
    with pytest.raises(UsageError, match="tiny:qwen2-tutor"):
        resolve_base(QwenLoraSettings(base="tiny:gpt-9"))


def test_planning_and_token_counts_never_pretrain_the_tutor_base(tmp_path: Path) -> None:
    """`lexiedge plan` and `data stats` read the architecture and tokenizer only: on an empty cache they
    build the random twin (same config, same tokenizer) and never pretrain `tiny:qwen2-tutor`."""
    import os
    import subprocess
    import sys

    from transformers import AutoConfig, AutoTokenizer

    env = {**os.environ, "LEXIEDGE_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    for command in (["plan", "--profile", "cpu", "--model", "qwen-lora"], ["data", "stats", "--profile", "cpu"]):
        done = subprocess.run([sys.executable, "-m", "lexiedge", *command], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
    built = sorted(path.name.split("-")[1] for path in (tmp_path / "cache" / "models").iterdir())
    assert built == ["tiny"], built  # no qwen2-tutor-* folder: nothing was pretrained

    twin = resolve_base(QwenLoraSettings(base=TUTOR), weights=False).path
    pretrained = tutor_base_dir()  # the suite's shared cache
    configs = [AutoConfig.from_pretrained(path).to_dict() for path in (twin, pretrained)]
    for config in configs:
        config.pop("_name_or_path")  # where it was read from
    assert configs[0] == configs[1]
    assert AutoTokenizer.from_pretrained(twin).get_vocab() == AutoTokenizer.from_pretrained(pretrained).get_vocab()
