"""`lexiedge export --target executorch-int4`: the tiny tutor Qwen2 (cpu profile, LoRA merged) through
ExecuTorch's LLM recipe (q8da4w, XNNPACK, KV cache in the program), verified by the exporter against
PyTorch; then loaded by the runtime, checked here against the merged model with transformers, and used
by `lexiedge infer --prompt` as an onnx-int4 artifact is."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_runner import lexiedge_ok

pytest.importorskip("executorch", reason="executorch is not installed: pip install 'lexiedge[executorch]'")

pytestmark = pytest.mark.slow
PROMPT = [{"role": "user", "content": "Correct: She go to school every day."}]
_OPTIONS = "models.qwen-lora.export.options.executorch-int4"


@pytest.fixture(scope="module")
def int4_artifact(lm_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("executorch-llm") / "qwen-lora-executorch-int4"
    lexiedge_ok("export", "--run", lm_run, "--target", "executorch-int4", "--out", out,
                "--set", f"{_OPTIONS}.max_context=256", "--set", f"{_OPTIONS}.prompts=2",
                "--set", f"{_OPTIONS}.new_tokens=8")
    return out


@pytest.fixture(scope="module")
def merged(lm_run: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(lm_run / "merged", dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(lm_run / "merged")


def test_the_manifest_records_a_verified_q8da4w_program_with_its_tokenizer(int4_artifact: Path) -> None:
    from lexiedge.runtime.artifact import sha256_file

    manifest = json.loads((int4_artifact / "manifest.json").read_text())
    assert manifest["target"] == "executorch-int4" and manifest["task"] == "causal-lm"
    assert manifest["runtime"]["engine"] == "executorch" and manifest["runtime"]["context_length"] == 256
    assert (int4_artifact / "model.pte").read_bytes()[4:8] == b"ET12"  # ExecuTorch's flatbuffer identifier
    assert manifest["files"]["model.pte"]["sha256"] == sha256_file(int4_artifact / "model.pte")
    assert {"tokenizer.json", "chat_template.jinja"} <= set(manifest["files"])
    assert manifest["tokenizer"]["chat_template"] == "chat_template.jinja"
    assert manifest["quantization"]["scheme"].startswith("q8da4w")
    verification = manifest["verification"]
    assert verification["passed"] is True and verification["teacher_forced_steps"] >= 2
    assert verification["generation"]["runtime"] == "executorch" and verification["generation"]["of"] == 2
    assert 0 <= verification["token_agreement"] <= 1
    assert verification["max_abs_diff"]["logits_first_pass"] > 0, "int4 weights: not bit-identical to fp32"


def test_the_runtime_follows_the_merged_model_and_reuses_its_cache(int4_artifact: Path, merged) -> None:
    import torch

    from lexiedge.runtime import TextGenerator, load

    model, tokenizer = merged
    generator = load(int4_artifact)
    assert isinstance(generator, TextGenerator) and type(generator).__name__ == "ExecutorchGenerator"
    rendered = tokenizer.apply_chat_template(PROMPT, tokenize=False, add_generation_prompt=True)
    expected_ids = tokenizer(rendered, add_special_tokens=False).input_ids
    prompt = generator.tokenizer.prompt_ids(PROMPT)
    assert prompt == expected_ids, "the runtime's chat template renders what transformers does"

    with torch.no_grad():
        reference = model(torch.tensor([prompt])).logits[0, -1].numpy()
    logits = generator.teacher_forced(prompt, [])[0]
    cosine = float(reference @ logits / (np.linalg.norm(reference) * np.linalg.norm(logits)))
    assert cosine > 0.95, f"int4 logits left the fp32 model's (cosine {cosine:.3f})"

    first = generator.generate(PROMPT, max_new_tokens=6)
    again = generator.generate(PROMPT, max_new_tokens=6)
    assert again.reused_tokens == len(prompt) - 1 and again.token_ids == first.token_ids
    greedy = [token for token in generator.generate_ids(prompt, 6)]
    assert greedy == first.token_ids
    assert first.token_ids[0] == int(np.argmax(logits)), "the first token is the program's argmax"
    streamed = generator.generate(PROMPT, max_new_tokens=6, stream=True)
    assert "".join(streamed) == first.text and streamed.completion_tokens == len(first.token_ids)
    sampled = [generator.generate(PROMPT, max_new_tokens=6, temperature=0.8, seed=3).token_ids
               for _ in range(2)]
    assert sampled[0] == sampled[1], "a seed makes a draw reproducible"


def test_lexiedge_infer_chats_with_the_program(int4_artifact: Path, cli) -> None:
    from lexiedge.runtime import load

    result = cli("infer", str(int4_artifact), "--prompt", PROMPT[0]["content"], "--max-new-tokens", "6")
    assert result.exit_code == 0, result.stderr
    text = load(int4_artifact).generate(PROMPT, max_new_tokens=6).text
    assert text.strip() and text.strip() in result.stdout
    wrong = cli("infer", str(int4_artifact), "--prompt", "hi", "--device", "cuda")
    assert wrong.exit_code != 0 and "ExecuTorch artifacts run on the CPU" in wrong.stderr
    assert wrong.stderr.strip().count("\n") == 0, wrong.stderr


def test_lexiedge_serve_answers_the_openai_client_from_the_program(int4_artifact: Path,
                                                                   tmp_path: Path) -> None:
    from openai import OpenAI

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))
    from serve_helpers import Server, start_server, stop, wait_until_up

    from lexiedge.runtime import load

    expected = load(int4_artifact).generate(PROMPT, max_new_tokens=8)
    log = tmp_path / "server.log"
    process, port = start_server([f"tutor={int4_artifact}", "--threads", "1", "--log-level", "warning"], log)
    running = Server("127.0.0.1", port, "", process, log)
    try:
        wait_until_up(running)
        with OpenAI(base_url=running.base_url, api_key="unused", max_retries=0, timeout=300) as client:
            reply = client.chat.completions.create(model="tutor", messages=PROMPT, max_tokens=8,
                                                   temperature=0)
            chunks = list(client.chat.completions.create(model="tutor", messages=PROMPT, max_tokens=8,
                                                         temperature=0, stream=True))
    finally:
        stop(process)
    assert reply.choices[0].message.content == expected.text
    assert reply.usage.completion_tokens == len(expected.token_ids)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected.text
