"""Prompts: blank text, roles outside system/user/assistant and text that is not UTF-8 are refused in one line.

The checks live where messages are rendered and text is encoded (:mod:`lexiedge.runtime.chat`), so every
way to a prompt passes them. The artifact here is real as far as these checks go: a tokenizer trained
with `tokenizers`, a chat template, a manifest with their hashes (its graph is a placeholder: nothing
here generates; tests/runtime run the real generator).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lexiedge.runtime import InputValueError, RuntimeInputError, open_artifact
from lexiedge.runtime.chat import ROLES, ChatTokenizer

TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def lm_artifact(tmp_path_factory) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    directory = tmp_path_factory.mktemp("lm") / "artifact"
    directory.mkdir()
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(["she go to school", "he goes home", "correct this please"],
                                  trainers.WordLevelTrainer(special_tokens=["[UNK]", "<|end|>"]))
    tokenizer.save(str(directory / "tokenizer.json"))
    (directory / "chat_template.jinja").write_text(TEMPLATE, encoding="utf-8")
    (directory / "genai_config.json").write_text(json.dumps({"model": {"decoder": {"filename": "model.onnx"}}}))
    (directory / "model.onnx").write_bytes(b"placeholder: never loaded by these tests")
    files = {p.name: {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "bytes": p.stat().st_size}
             for p in sorted(directory.iterdir())}
    manifest = {
        "format": "lexiedge-artifact", "format_version": 1, "task": "causal-lm", "target": "onnx",
        "runtime": {"engine": "onnxruntime-genai", "config": "genai_config.json", "graph": "model.onnx"},
        "tokenizer": {"files": ["tokenizer.json"], "chat_template": "chat_template.jinja", "eos_token_ids": [1]},
        "verification": {"passed": True}, "files": files,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


@pytest.fixture(scope="module")
def tokenizer(lm_artifact) -> ChatTokenizer:
    return ChatTokenizer(open_artifact(lm_artifact))


@pytest.mark.parametrize(("prompt", "words"), [
    ("", "the prompt is empty; expected some text"),
    ("  \n\t ", "the prompt is only whitespace; expected some text"),
    ([{"role": "user", "content": ""}], "message 0 (user) is empty"),
    ([{"role": "system", "content": "Be kind."}, {"role": "user", "content": " \n"}], "message 1 (user) is only whitespace"),
])
def test_an_empty_or_blank_prompt_is_refused(tokenizer, prompt, words):
    with pytest.raises(InputValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        tokenizer.prompt_ids(prompt)


def test_an_empty_assistant_reply_or_system_prompt_in_the_history_is_allowed(tokenizer):
    """A model can answer with nothing (EOS first); that turn stays valid history for the next prompt."""
    history = [{"role": "system", "content": ""}, {"role": "user", "content": "she go to school"},
               {"role": "assistant", "content": ""}, {"role": "user", "content": "he goes home"}]
    assert tokenizer.prompt_ids(history)


def test_roles_are_exactly_the_three_the_error_lists(tokenizer):
    for role in ROLES:  # each one the message names is accepted
        assert tokenizer.prompt_ids([{"role": role, "content": "she go to school"}])
    for role in ("tool", "User", "developer", ""):
        with pytest.raises(InputValueError) as caught:
            tokenizer.prompt_ids([{"role": role, "content": "she go to school"}])
        assert f"message 0 has role {role!r}; expected {{'role': 'system'|'user'|'assistant'" in str(caught.value)


@pytest.mark.parametrize("text", ["she go\udcff to school", "\ud83d half an emoji"])
def test_text_that_is_not_utf8_is_refused_not_a_tokenizer_type_error(tokenizer, text):
    with pytest.raises(InputValueError, match="not valid UTF-8 text"):
        tokenizer.prompt_ids(text)
    with pytest.raises(InputValueError, match=r"message 0 \(user\) is not valid UTF-8"):
        tokenizer.render([{"role": "user", "content": text}])
    with pytest.raises(RuntimeInputError):
        tokenizer.encode(text)


def test_infer_refuses_a_blank_prompt_before_loading_the_model(lm_artifact, cli):
    result = cli("infer", str(lm_artifact), "--prompt", "   ")
    assert result.exit_code == 2 and result.stderr.strip() == "error: --prompt is only whitespace; expected some text"


def test_infer_refuses_invalid_utf8_bytes_on_the_command_line(lm_artifact):
    """A real process given raw bytes: Python turns them into lone surrogates, which must not reach the tokenizer."""
    env = {**os.environ, "LC_ALL": "C.UTF-8", "COLUMNS": "200"}
    result = subprocess.run([sys.executable.encode(), b"-m", b"lexiedge.cli", b"infer", os.fsencode(lm_artifact),
                             b"--prompt", b"caf\xe9 au lait"], capture_output=True, env=env, timeout=120)
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2 and "Traceback" not in stderr
    assert stderr.strip().splitlines() == [
        "error: --prompt is not valid UTF-8 text (an undecodable character at position 3); pass UTF-8 (check the "
        "terminal's or the file's encoding)"]
