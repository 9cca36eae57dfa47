"""Decode speed of a Qwen2.5-0.5B-shaped model: HF transformers eager fp32 vs the int4 GenAI artifact.

    python bench/bench_llm_decode.py                 # 0.5B shape, 64-token prompt, 64 new tokens, 2 threads
    python bench/bench_llm_decode.py --tiny          # the same pipeline on a tiny model (a smoke run)

Builds a model with random weights (hidden 896, 24 layers, 14 heads, 2 KV heads, intermediate 4864,
vocab 151936, tied embeddings), saves it with ``save_pretrained`` (~2 GB fp32 in a temp dir), builds
the int4 artifact with ONNX Runtime GenAI's model builder (exactly what ``lexiedge export --target
onnx-int4`` runs) and measures, in one run, greedy decode tokens/s after a 64-token prompt for both.
Decode speed is the time per token *after* the first one (prefill and time to first token are timed
apart), both with the same thread count, loaded and warmed up first, then alternating round by round
with `lexiedge bench`'s timing code. Prints the ratio; the target is >= 10x.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from lexiedge.latency.backends import GenerationTiming, genai_generation, hf_generation

QWEN2_5_0_5B = dict(
    hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
    intermediate_size=4864, vocab_size=151936,
)
TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=128, vocab_size=2048)


def build_random_qwen2(out_dir: Path, dims: dict[str, int]) -> Path:
    """A random Qwen2 with a byte-level tokenizer, saved like a hub snapshot (no network)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, Qwen2Config

    config = Qwen2Config(
        **dims, max_position_embeddings=32768, rms_norm_eps=1e-6, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0}, use_sliding_window=False,
        bos_token_id=0, eos_token_id=1, pad_token_id=0,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(out_dir)
    # The builder copies the tokenizer files and reads the special tokens; speed does not depend on them.
    vocab = {chr(0x100 + i): i for i in range(256)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=chr(0x101), pad_token=chr(0x100)).save_pretrained(
        out_dir
    )
    return out_dir


def decode_summary(timings: list[GenerationTiming]) -> dict[str, float]:
    """Decode tokens/s over every timed step of every round; prefill and first token: the median round."""
    steps = [step for timing in timings for step in timing.steps_s]
    return {"decode_tok_s": len(steps) / sum(steps), "median_step_ms": 1e3 * statistics.median(steps),
            "prefill_s": statistics.median(t.prefill_s for t in timings),
            "ttft_s": statistics.median(t.ttft_s for t in timings)}


def load_hf(model_dir: Path, threads: int):
    """transformers eager attention, fp32: the baseline the target is stated against."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()


def load_genai(artifact: Path, threads: int):
    """The int4 artifact through onnxruntime-genai (GroupQueryAttention + shared KV buffer)."""
    from lexiedge_onnx.genai import load_genai_model

    return load_genai_model(artifact, threads=threads)


def compare(hf_dir: Path, artifact: Path, prompt: list[int], new_tokens: int, threads: int,
            rounds: int) -> dict[str, dict[str, float]]:
    """Both loaded and warmed up, then ``rounds`` greedy generations each, alternating (the order flips
    every round), with the same timing code as `lexiedge bench` (:mod:`lexiedge.latency.backends`)."""
    runners = {
        "hf": (hf_generation, load_hf(hf_dir, threads)),
        "genai": (genai_generation, load_genai(artifact, threads)),
    }
    for generate, model in runners.values():
        generate(model, prompt[:8], 4)  # warm-up: allocations, thread pools, kernels
    timings: dict[str, list[GenerationTiming]] = {name: [] for name in runners}
    for round_index in range(rounds):
        order = list(runners) if round_index % 2 == 0 else list(reversed(runners))
        for name in order:
            time.sleep(0.05)  # the other backend's worker threads stop spinning first
            generate, model = runners[name]
            timings[name].append(generate(model, prompt, new_tokens))
    return {name: decode_summary(runs) for name, runs in timings.items()}


def prepare(work: Path, tiny: bool, block_size: int = 128) -> tuple[Path, Path]:
    """The random HF model and its int4 artifact under ``work`` (built once, reused when present)."""
    from lexiedge_onnx.genai import build_genai_model, genai_model_size

    hf_dir = work / ("hf-tiny" if tiny else "hf")
    if not (hf_dir / "config.json").exists():
        build_random_qwen2(hf_dir, TINY if tiny else QWEN2_5_0_5B)
    artifact = work / (f"int4-tiny-b{block_size}" if tiny else f"int4-b{block_size}")
    if not (artifact / "genai_config.json").exists():
        start = time.perf_counter()
        build_genai_model(hf_dir, artifact, precision="int4", block_size=block_size, cache_dir=work / "cache")
        print(f"int4 artifact built in {time.perf_counter() - start:.0f} s: {genai_model_size(artifact) / 1e6:.0f} MB")
    return hf_dir, artifact


def bench_prompt(count: int) -> list[int]:
    return [(17 * i + 5) % 256 for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny model instead of the 0.5B shape (smoke run)")
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--block-size", type=int, default=128, help="int4 quantization block size (the edge profiles' onnx-int4 setting)")
    parser.add_argument("--rounds", type=int, default=3, help="timed generations per backend, alternating")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the model and artifact here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lexiedge-bench-") as tmp:
        hf_dir, artifact = prepare(args.workdir or Path(tmp), args.tiny, args.block_size)
        prompt = bench_prompt(args.prompt_tokens)
        results = compare(hf_dir, artifact, prompt, args.new_tokens, args.threads, args.rounds)
        hf, genai = results["hf"], results["genai"]
    shape = "tiny" if args.tiny else "Qwen2.5-0.5B-shaped"
    print(f"{shape} model, random weights; {args.prompt_tokens}-token prompt, {args.new_tokens} greedy tokens, "
          f"{args.threads} threads, {args.rounds} interleaved rounds")
    for name, numbers in (("HF transformers eager fp32", hf), ("ONNX Runtime GenAI int4   ", genai)):
        print(f"  {name} : {numbers['decode_tok_s']:7.1f} tok/s  (median step {numbers['median_step_ms']:.1f} ms, "
              f"prefill {numbers['prefill_s']:.2f} s, first token {numbers['ttft_s']:.2f} s)")
    ratio = genai["decode_tok_s"] / hf["decode_tok_s"]
    print(f"  ratio int4 / eager         : {ratio:7.1f}x  (target >= 10x)")


if __name__ == "__main__":
    main()
