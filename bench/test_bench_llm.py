"""pytest-benchmark: decode speed of a Qwen2.5-0.5B-shaped model, HF transformers eager fp32 vs int4 GenAI.

    python -m pytest bench/test_bench_llm.py --benchmark-only             # 0.5B shape (~2 GB fp32, a few minutes)
    LEXIEDGE_BENCH_TINY=1 python -m pytest bench/test_bench_llm.py --benchmark-only   # smoke run, tiny model

Not collected by the normal test run. The model (random weights: speed does not depend on them) and
its int4 artifact come from :mod:`bench_llm_decode` (the builder `lexiedge export --target onnx-int4`
runs), cached under ``$LEXIEDGE_BENCH_DIR``. Each benchmark times ``NEW_TOKENS`` greedy decode steps
after a 64-token prompt; the prompt's prefill runs in pytest-benchmark's untimed ``setup``, so the
number is decode only. ``extra_info`` has decode tokens/s and, for int4, the ratio to eager (target >= 10x).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from bench_llm_decode import bench_prompt, load_genai, load_hf, prepare
from emotion_av_artifacts import bench_dir

THREADS = 2
PROMPT_TOKENS, NEW_TOKENS = 64, 32
TARGET_SPEEDUP = 10.0
TINY = bool(os.environ.get("LEXIEDGE_BENCH_TINY"))
_decode_rates: dict[str, float] = {}


@cache
def _models() -> tuple[Path, Path]:
    work = bench_dir() / "qwen2.5-0.5b-shape"
    work.mkdir(parents=True, exist_ok=True)
    return prepare(work, TINY, block_size=32 if TINY else 128)  # tiny: hidden 64 < a 128-weight block


def _hf_decoder(prompt: list[int]):
    import torch

    model = load_hf(_models()[0], THREADS)

    def setup():
        with torch.inference_mode():
            out = model(torch.tensor([prompt]), use_cache=True)
        return (out.past_key_values, out.logits[:, -1:].argmax(-1)), {}

    def decode(cache, token) -> None:
        with torch.inference_mode():
            for _ in range(NEW_TOKENS):
                out = model(token, past_key_values=cache, use_cache=True)
                cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)

    return setup, decode


def _genai_decoder(prompt: list[int]):
    import onnxruntime_genai as og

    model = load_genai(_models()[1], THREADS)

    def setup():
        total = len(prompt) + NEW_TOKENS + 1
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=total, min_length=total, do_sample=False)  # EOS suppressed
        generator = og.Generator(model, params)
        generator.append_tokens(np.asarray([prompt], dtype=np.int32))
        generator.generate_next_token()  # the first token comes from the prefill's logits
        return (generator,), {}

    def decode(generator) -> None:
        for _ in range(NEW_TOKENS):
            generator.generate_next_token()

    return setup, decode


@pytest.mark.parametrize("backend", ["hf-eager-fp32", "genai-int4"])  # eager first: int4's ratio needs it
def test_llm_decode(benchmark, backend: str) -> None:
    prompt = bench_prompt(PROMPT_TOKENS)
    setup, decode = (_hf_decoder if backend == "hf-eager-fp32" else _genai_decoder)(prompt)
    benchmark.group = (
        f"{'tiny' if TINY else 'Qwen2.5-0.5B-shaped'} decode, {NEW_TOKENS} tokens, {THREADS} threads"
    )
    benchmark.pedantic(decode, setup=setup, rounds=3, iterations=1, warmup_rounds=1)
    rate = NEW_TOKENS / benchmark.stats.stats.median
    _decode_rates[backend] = rate
    benchmark.extra_info.update(backend=backend, decode_tokens_per_s=round(rate, 2), threads=THREADS)
    eager = _decode_rates.get("hf-eager-fp32")
    if backend != "hf-eager-fp32" and eager:
        speedup = rate / eager
        benchmark.extra_info.update(
            speedup_vs_eager=round(speedup, 2),
            target_speedup=TARGET_SPEEDUP,
            target_met=speedup >= TARGET_SPEEDUP,
        )
        print(
            f"\n{backend}: {rate:.1f} tok/s = {speedup:.1f}x eager ({eager:.1f} tok/s); target >= {TARGET_SPEEDUP}x: "
            f"{'met' if speedup >= TARGET_SPEEDUP else 'NOT met'}"
        )
