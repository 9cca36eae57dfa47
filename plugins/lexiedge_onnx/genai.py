"""ONNX Runtime GenAI's model builder: a Hugging Face decoder directory -> an ONNX decoder with a KV cache.

The builder writes the graph ORT GenAI runs fastest on CPU: GroupQueryAttention with rotary
embeddings fused in, fused (Skip)SimplifiedLayerNormalization, fused QKV, and for int4/int8
MatMulNBits weights. With tied embeddings (Qwen2.5) it quantizes the LM head and shares its blocks
with the embedding Gather (GatherBlockQuantized), so the 151936 x 896 matrix is stored once in int4.
It also writes genai_config.json and copies the tokenizer files and chat template.

It runs in a subprocess: the builder puts its own directory on ``sys.path`` and imports top-level
modules named ``builders``/``quantization``; a child process keeps that out of ours, and its peak
memory (the whole fp32 model) is returned to the OS when it exits.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lexiedge.export import ExportError

Precision = Literal["fp32", "int8", "int4"]
GENAI_CONFIG = "genai_config.json"
MODEL_FILE = "model.onnx"


def build_genai_model(
    hf_dir: Path,
    out_dir: Path,
    *,
    precision: Precision,
    cache_dir: Path,
    block_size: int = 32,
    accuracy_level: int | None = None,
    quantize_lm_head: bool = True,
    prune_lm_head: bool = False,
    extra: dict[str, str] | None = None,
) -> Path:
    """Run the builder on ``hf_dir`` (config.json, weights, tokenizer) and write the model to ``out_dir``.

    ``accuracy_level`` is MatMulNBits' compute type on CPU (4 = int8 activations, the builder's
    default and the fastest; 1 = fp32). ``quantize_lm_head=False`` keeps the LM head in float.
    ``prune_lm_head`` computes the LM head for the last position only (logits ``[batch, 1, vocab]``):
    a prefill of S tokens then runs one row of the 151936 x 896 head, not S of them, and writes no
    S x vocab logits. GenAI (and so the runtime) reads only the last position's logits anyway.
    """
    options: dict[str, str] = {}
    if precision in ("int4", "int8"):
        options["block_size"] = str(block_size)
        if accuracy_level is not None:
            options["accuracy_level"] = str(accuracy_level)
        if not quantize_lm_head:
            options["shared_embeddings"] = "false"
            options["nodes_to_exclude"] = "/lm_head/MatMul"
    if prune_lm_head:
        options["prune_lm_head"] = "true"
    options.update(extra or {})
    command = [
        sys.executable, "-m", "onnxruntime_genai.models.builder",
        "-i", str(hf_dir), "-o", str(out_dir), "-p", precision, "-e", "cpu", "-c", str(cache_dir),
    ]
    if options:
        command += ["--extra_options", *(f"{key}={value}" for key, value in options.items())]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not (out_dir / MODEL_FILE).is_file():
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit code {result.returncode}"
        raise ExportError(f"ONNX Runtime GenAI's model builder failed on {hf_dir} ({precision}): {reason}")
    return out_dir


def genai_model_size(artifact: Path) -> int:
    """Bytes of the model graph and its weights (what a device has to hold), without tokenizer files."""
    return sum(p.stat().st_size for p in artifact.iterdir() if p.name.startswith(MODEL_FILE))


def load_genai_model(artifact: Path, *, threads: int | None = None) -> Any:
    """An ``onnxruntime_genai.Model`` for the artifact, optionally with a fixed intra-op thread count."""
    import onnxruntime_genai as og

    config = og.Config(str(artifact))
    if threads:
        options = {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
        config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
    return og.Model(config)


def greedy_generate(model: Any, prompt: list[int], new_tokens: int, *, min_new_tokens: int = 0) -> list[int]:
    """Greedy tokens after ``prompt`` through ORT GenAI (KV cache in a shared buffer), stopping at EOS."""
    import onnxruntime_genai as og

    params = og.GeneratorParams(model)
    options: dict[str, Any] = {"max_length": len(prompt) + new_tokens, "do_sample": False}
    if min_new_tokens:
        options["min_length"] = len(prompt) + min_new_tokens
    params.set_search_options(**options)
    generator = og.Generator(model, params)
    generator.append_tokens(np.array([prompt], dtype=np.int32))
    while not generator.is_done():
        generator.generate_next_token()
    return [int(t) for t in generator.get_sequence(0)[len(prompt):]]


def decode_speed(
    model: Any, prompt: list[int], new_tokens: int
) -> dict[str, float]:
    """Greedy decode tokens/s after ``prompt`` (prefill timed apart); EOS is suppressed so every step runs."""
    import onnxruntime_genai as og

    def run(prompt_ids: list[int], count: int) -> tuple[float, list[float]]:
        params = og.GeneratorParams(model)
        total = len(prompt_ids) + count
        params.set_search_options(max_length=total, min_length=total, do_sample=False)
        generator = og.Generator(model, params)
        start = time.perf_counter()
        generator.append_tokens(np.array([prompt_ids], dtype=np.int32))
        prefill = time.perf_counter() - start
        steps = []
        for _ in range(count):
            start = time.perf_counter()
            generator.generate_next_token()
            steps.append(time.perf_counter() - start)
        return prefill, steps

    run(prompt[: min(8, len(prompt))], min(4, new_tokens))  # warm-up: allocations, thread pool
    prefill_s, steps = run(prompt, new_tokens)
    return {
        "decode_tokens_per_s": len(steps) / sum(steps),
        "median_step_ms": 1e3 * statistics.median(steps),
        "prefill_s": prefill_s,
        "prompt_tokens": len(prompt),
        "new_tokens": len(steps),
    }
