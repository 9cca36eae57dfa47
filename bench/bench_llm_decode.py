"""Decode speed of a Qwen2.5-0.5B-shaped model: HF transformers eager fp32 vs the int4 GenAI artifact.

    python bench/bench_llm_decode.py                 # 0.5B shape, 64-token prompt, 64 new tokens, 2 threads
    python bench/bench_llm_decode.py --tiny          # the same pipeline on a tiny model (a smoke run)

Builds a model with random weights (hidden 896, 24 layers, 14 heads, 2 KV heads, intermediate 4864,
vocab 151936, tied embeddings), saves it with ``save_pretrained`` (~2 GB fp32 in a temp dir), builds
the int4 artifact with ONNX Runtime GenAI's model builder (exactly what ``lexiedge export --target
onnx-int4`` runs) and measures, in one run, greedy decode tokens/s after a 64-token prompt for both.
Decode speed is the time per token *after* the prompt (prefill is timed apart), both with the same
thread count. Prints the ratio; the target is >= 10x.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

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


def hf_decode_tokens_per_s(model_dir: Path, prompt: list[int], new_tokens: int, threads: int) -> dict[str, float]:
    """Greedy decode with transformers (eager attention, fp32), KV cache on, one token per step."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
    ids = torch.tensor([prompt])
    with torch.inference_mode():
        model(ids[:, :8], use_cache=True)  # warm-up (allocations, kernels)
        start = time.perf_counter()
        out = model(ids, use_cache=True)
        prefill_s = time.perf_counter() - start
        cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        steps = []
        for _ in range(new_tokens):
            start = time.perf_counter()
            out = model(token, past_key_values=cache, use_cache=True)
            cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
            steps.append(time.perf_counter() - start)
    return {"decode_tok_s": len(steps) / sum(steps), "median_step_ms": 1e3 * statistics.median(steps),
            "prefill_s": prefill_s}


def genai_decode_tokens_per_s(artifact: Path, prompt: list[int], new_tokens: int, threads: int) -> dict[str, float]:
    """Greedy decode through onnxruntime-genai (GroupQueryAttention + shared KV buffer): the exporter's own probe."""
    from lexiedge_onnx.genai import decode_speed, load_genai_model

    speed = decode_speed(load_genai_model(artifact, threads=threads), prompt, new_tokens)
    return {"decode_tok_s": speed["decode_tokens_per_s"], "median_step_ms": speed["median_step_ms"],
            "prefill_s": speed["prefill_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny model instead of the 0.5B shape (smoke run)")
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--block-size", type=int, default=32, help="int4 quantization block size")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the model and artifact here")
    args = parser.parse_args()

    from lexiedge_onnx.genai import build_genai_model, genai_model_size

    dims = TINY if args.tiny else QWEN2_5_0_5B
    with tempfile.TemporaryDirectory(prefix="lexiedge-bench-") as tmp:
        work = args.workdir or Path(tmp)
        hf_dir = work / "hf"
        if not (hf_dir / "config.json").exists():
            build_random_qwen2(hf_dir, dims)
        artifact = work / "int4"
        if not (artifact / "genai_config.json").exists():
            start = time.perf_counter()
            build_genai_model(hf_dir, artifact, precision="int4", block_size=args.block_size, cache_dir=work / "cache")
            print(f"int4 artifact built in {time.perf_counter() - start:.0f} s: {genai_model_size(artifact) / 1e6:.0f} MB")
        prompt = [(17 * i + 5) % 256 for i in range(args.prompt_tokens)]
        hf = hf_decode_tokens_per_s(hf_dir, prompt, args.new_tokens, args.threads)
        genai = genai_decode_tokens_per_s(artifact, prompt, args.new_tokens, args.threads)
    shape = "tiny" if args.tiny else "Qwen2.5-0.5B-shaped"
    print(f"{shape} model, random weights; {args.prompt_tokens}-token prompt, {args.new_tokens} greedy tokens, "
          f"{args.threads} threads")
    print(f"  HF transformers eager fp32 : {hf['decode_tok_s']:7.1f} tok/s  (median step {hf['median_step_ms']:.1f} ms, "
          f"prefill {hf['prefill_s']:.2f} s)")
    print(f"  ONNX Runtime GenAI int4    : {genai['decode_tok_s']:7.1f} tok/s  (median step "
          f"{genai['median_step_ms']:.1f} ms, prefill {genai['prefill_s']:.2f} s)")
    ratio = genai["decode_tok_s"] / hf["decode_tok_s"]
    print(f"  ratio int4 / eager         : {ratio:7.1f}x  (target >= 10x)")


if __name__ == "__main__":
    main()
