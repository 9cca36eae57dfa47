"""Issue 32's lead: does torch.compile speed up a LoRA step of the Qwen2.5-0.5B shape on this CPU?

    python bench/probe_compile_lora.py

Random weights of the Qwen2.5-0.5B shape, fp32, 2 threads, LoRA r 16 / alpha 32 on all 7 projections, AdamW,
2 rows x 512 tokens, the loss on half the tokens through the LM head (as lexiedge's answer-token head does).
Times optimizer steps eager, then with the decoder under ``torch.compile`` (the compile itself reported
apart). A probe for the engine's ``compile`` option, not a product benchmark: run it on a quiet machine.

Measured 2026-12-07 on the 2-core Intel Xeon VM, nothing else running (load 1.4-1.7: its own threads), the
inductor cache warm from a first run (whose compile took 86 s): 09:45 UTC, median step eager 9.89 s (6 steps,
8.68-10.83), compiled 6.76 s (5 steps, 6.59-7.04): 1.46x; 09:48 UTC, eager 9.11 s (8.25-10.90), compiled
6.74 s (6.53-7.21): 1.35x; the compile with a warm cache 25 s.
"""

import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import Qwen2Config, Qwen2ForCausalLM

torch.manual_seed(0)
torch.set_num_threads(2)
config = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                     num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                     tie_word_embeddings=True, rope_theta=1e6, rms_norm_eps=1e-6, attn_implementation="sdpa")
model = Qwen2ForCausalLM(config)
targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=targets))
model.train()
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
ids = torch.randint(0, 151936, (2, 512))
answer = torch.zeros(2, 512, dtype=torch.bool)
answer[:, 256:] = True  # half the tokens are answer tokens

def loss_fn(m):
    hidden = m.base_model.model.model(input_ids=ids).last_hidden_state  # the decoder, no full-vocab logits
    picked = hidden[:, :-1][answer[:, 1:]]
    logits = m.base_model.model.lm_head(picked)
    return torch.nn.functional.cross_entropy(logits, ids[:, 1:][answer[:, 1:]])

def step(fn):
    opt.zero_grad(set_to_none=True)
    loss = fn(model)
    loss.backward()
    opt.step()
    return float(loss.detach())

def timed(fn, n, label):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        step(fn)
        times.append(time.perf_counter() - start)
    print(f"{label}: steps {[round(x, 2) for x in times]} s", flush=True)
    return sorted(times)[len(times) // 2]

step(loss_fn)  # warm-up
eager = timed(loss_fn, 6, "eager")
decoder = model.base_model.model.model
start = time.perf_counter()
model.base_model.model.model = torch.compile(decoder)
step(loss_fn)
step(loss_fn)
print(f"compile + 2 steps: {time.perf_counter() - start:.1f} s", flush=True)
compiled = timed(loss_fn, 5, "compiled decoder")
print(f"median step: eager {eager:.2f} s, compiled {compiled:.2f} s -> eager / compiled = {eager / compiled:.3f}x")
