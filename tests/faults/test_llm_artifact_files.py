"""An LLM artifact runs only the bytes its manifest hashed, and a tampered file is one line, never a hang.

Issue 31, items 5 and 6. Every case starts from the suite's real qwen-lora onnx-int4 artifact
(tests/conftest.py: trained, merged and exported by the commands a user types), changes files the
way a crafted or damaged copy would, re-hashes them into manifest.json where the attack would, and
loads it with the runtime and with `lexiedge infer` in a real process.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lexiedge.runtime import ArtifactError, load

PROMPT = [{"role": "user", "content": "Correct: She go to school."}]
NEW_TOKENS = 8
# 10^10 steps: hours in jinja's plain sandbox (it caps one range at 100,000 items, not two nested ones)
NESTED_LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


def _manifest(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text())


def _write(directory: Path, name: str, content: bytes | str, *, listed: bool = True) -> None:
    """Write ``name`` and, when ``listed``, record its true sha256 in manifest.json (a re-hashed tamper)."""
    data = content.encode() if isinstance(content, str) else content
    (directory / name).write_bytes(data)
    if listed:
        manifest = _manifest(directory)
        manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        (directory / "manifest.json").write_text(json.dumps(manifest))


def _random_weight_graph(graph: Path) -> bytes:
    """The same graph with every float weight (scales, norms) replaced by noise: it runs and says other things."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(graph))  # with its external data, so the copy is self-contained
    rng = np.random.default_rng(0)
    for tensor in model.graph.initializer:
        array = numpy_helper.to_array(tensor)
        if array.dtype.kind == "f" and array.size > 1:
            noise = rng.standard_normal(array.shape).astype(array.dtype)
            tensor.CopyFrom(numpy_helper.from_array(noise, tensor.name))
    return model.SerializeToString()


def _tokens(directory: Path) -> list[int]:
    return load(directory, "cpu", threads=1).generate(PROMPT, max_new_tokens=NEW_TOKENS).token_ids


def _infer(directory: Path, *, timeout: float = 180) -> subprocess.CompletedProcess:
    """`lexiedge infer DIR --prompt ...` as a real process."""
    env = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "lexiedge.cli", "infer", str(directory), "--prompt",
                           PROMPT[0]["content"], "--max-new-tokens", str(NEW_TOKENS)],
                          capture_output=True, text=True, env=env, timeout=timeout)


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    return lines[0]


@pytest.fixture
def lm_copy(small_lm_artifact: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "artifact"
    shutil.copytree(small_lm_artifact, copy)
    return copy


# --- item 5: GenAI reads exactly the files that were verified ----------------------------------------


def test_an_unlisted_genai_config_beside_the_listed_one_is_never_read(small_lm_artifact, lm_copy, tmp_path):
    """The reported attack: runtime.config names another listed file (verified), while GenAI read the
    folder's unlisted genai_config.json, which named an unlisted random-weight graph: it ran, exit 0."""
    honest = (lm_copy / "genai_config.json").read_text()
    evil = _random_weight_graph(lm_copy / "model.onnx")
    control = tmp_path / "control"  # the same evil graph, listed and named: it does answer differently
    shutil.copytree(lm_copy, control)
    _write(control, "evil.onnx", evil)
    config = json.loads(honest)
    config["model"]["decoder"]["filename"] = "evil.onnx"
    _write(control, "genai_config.json", json.dumps(config))
    expected = _tokens(small_lm_artifact)
    assert _tokens(control) != expected, "the random-weight graph must answer differently for this test to mean anything"

    _write(lm_copy, "verified_config.json", honest)
    manifest = _manifest(lm_copy)
    manifest["runtime"]["config"] = "verified_config.json"
    del manifest["files"]["genai_config.json"]
    (lm_copy / "manifest.json").write_text(json.dumps(manifest))
    _write(lm_copy, "evil.onnx", evil, listed=False)
    _write(lm_copy, "genai_config.json", json.dumps(config), listed=False)

    assert _tokens(lm_copy) == expected  # the verified config, so the verified graph
    process, original = _infer(lm_copy), _infer(small_lm_artifact)
    assert process.returncode == 0 and process.stdout == original.stdout, process.stderr[-2000:]


@pytest.mark.parametrize(("change", "words"), [
    (lambda c: c["model"]["decoder"].update(filename="evil.onnx"),
     "model.decoder.filename names 'evil.onnx', which manifest.json does not list"),
    (lambda c: c["model"].update(embedding={"filename": "evil.onnx"}),
     "model.embedding.filename names 'evil.onnx', which manifest.json does not list"),
    (lambda c: c["model"]["decoder"].update(filename="../artifact/model.onnx"),
     "model.decoder.filename names '../artifact/model.onnx', which manifest.json does not list"),
    (lambda c: c["model"]["decoder"]["session_options"].update(custom_ops_library="evil.so"),
     "model.decoder.session_options.custom_ops_library: the runtime never loads a native library"),
])
def test_a_listed_config_that_names_an_unlisted_file_or_a_library_is_refused(lm_copy, change, words):
    (lm_copy / "evil.onnx").write_bytes(_random_weight_graph(lm_copy / "model.onnx"))
    (lm_copy / "evil.so").write_bytes(b"\x7fELF not really")
    config = json.loads((lm_copy / "genai_config.json").read_text())
    change(config)
    _write(lm_copy, "genai_config.json", json.dumps(config))

    with pytest.raises(ArtifactError) as refused:
        load(lm_copy, "cpu")
    assert words in str(refused.value) and "\n" not in str(refused.value)
    assert words in _one_error_line(_infer(lm_copy))


# --- item 6: a tampered, re-hashed file is refused at load in one line --------------------------------


@pytest.mark.parametrize(("name", "content", "words"), [
    ("genai_config.json", b"{not json", "genai_config.json: unreadable (Expecting property name"),
    ("genai_config.json", b"[1, 2]", "genai_config.json: a JSON list; expected ONNX Runtime GenAI's genai_config.json"),
    ("genai_config.json", b'{"model": {"decoder": "model.onnx"}}', "model.decoder: expected a mapping, got a str"),
    ("genai_config.json", b'{"model": {"decoder": {"filename": "model.onnx"}, "context_length": "4k"}}',
     "model.context_length: expected a whole number >= 1, got '4k'"),
    ("genai_config.json", b"\xff\xfe{}", "genai_config.json: unreadable ('utf-8' codec can't decode byte 0xff"),
    ("tokenizer.json", b"this is not a tokenizer", "tokenizer.json: not a tokenizer (expected ident at line 1"),
    ("tokenizer.json", b'{"version": "1.0"}', "tokenizer.json: not a tokenizer (Model missing."),
    ("tokenizer_config.json", b"[]", "tokenizer_config.json: a JSON list; expected an object"),
    ("chat_template.jinja", b"{% for m in messages %}{{ m.content }}",
     "chat_template.jinja: not a valid jinja template (line 1: Unexpected end of template"),
])
def test_a_tampered_file_with_its_hash_rewritten_is_one_line_at_load(lm_copy, name, content, words):
    _write(lm_copy, name, content)
    with pytest.raises(ArtifactError) as refused:
        load(lm_copy, "cpu")
    assert words in str(refused.value) and "\n" not in str(refused.value)
    assert words in _one_error_line(_infer(lm_copy))


# --- item 6: a chat template is rendered with a bound on its work and output ---------------------------


@pytest.mark.parametrize(("template", "words"), [
    (NESTED_LOOPS, "ran past its bound (over 1,000,000 loop steps and calls)"),
    # 2^40 calls and no loop, or a recursive loop: the step or the time bound, whichever comes first
    ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
     "ran past its bound"),
    ("{% for x in [1, 2] recursive %}{% if loop.depth < 40 %}{{ loop([1, 2]) }}{% endif %}{% endfor %}",
     "ran past its bound"),
    ("{% for i in range(100000) %}{{ 'y' * 50000 }}{% endfor %}", "characters of output"),
    ("{{ 'x' * 10000000000 }}", "a value of 10,000,000,000 items"),
    ("{% set s = 'x' * 1000000 %}{% for i in range(64) %}{% set s = s + s %}{% endfor %}{{ s }}", "a value of"),
    ("{{ 9 ** 99999999 }}", "a power of"),
    ("{{ range(10000000000) | list }}", "the chat template failed (OverflowError: Range too big"),
    ("{{ messages.__class__.__mro__ }}", "the sandbox refused it"),
    ("{{ 1 / 0 }}", "the chat template failed (ZeroDivisionError"),
])
def test_a_chat_template_that_would_run_for_ever_or_fill_memory_is_stopped_in_one_line(lm_copy, template, words):
    _write(lm_copy, "chat_template.jinja", template)
    model = load(lm_copy, "cpu", threads=1)  # it compiles: it is refused when it runs past a bound
    with pytest.raises(ArtifactError) as refused:
        model.generate(PROMPT, max_new_tokens=2)
    message = str(refused.value)
    assert words in message and "\n" not in message and "chat_template.jinja" in message
    assert model.generate("Correct: she go.", max_new_tokens=2).prompt_tokens > 0  # the model goes on


def test_infer_with_a_template_of_ten_billion_steps_ends_in_one_line(lm_copy):
    """The same bound in a real process: `lexiedge infer` returns (exit 2) instead of hanging."""
    _write(lm_copy, "chat_template.jinja", NESTED_LOOPS)
    line = _one_error_line(_infer(lm_copy, timeout=240))
    assert "chat_template.jinja: the chat template ran past its bound" in line
