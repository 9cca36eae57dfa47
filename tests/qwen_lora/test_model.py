"""The qwen-lora model plugin: tiny base built here, LoRA placement, sizes, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lexiedge.errors import LexiedgeError, UsageError
from lexiedge_qwen_lora.model import QwenLoraPlugin
from lexiedge_qwen_lora.settings import QWEN_LORA_TARGETS, QwenLoraSettings


def test_tiny_directory_loads_like_a_hub_snapshot(tiny_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} <= {
        p.name for p in tiny_dir.iterdir()
    }
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    config = json.loads((tiny_dir / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]) == (64, 2, 4)
    assert config["num_key_value_heads"] == 2 and config["intermediate_size"] == 128
    assert config["vocab_size"] == len(tokenizer) == model.get_input_embeddings().num_embeddings
    # Qwen's special tokens follow the learned vocabulary, in Qwen's order.
    ids = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    assert ids == [len(tokenizer) - 3, len(tokenizer) - 2, len(tokenizer) - 1]
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert model.generation_config.eos_token_id == [ids[2], ids[0]]


def test_tokenizer_renders_qwen25_chatml_and_round_trips(tiny_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    messages = [{"role": "user", "content": "She go to school yesterday."}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nShe go to school yesterday.<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert tokenizer.decode(ids) == text
    # Byte-level: any text (accents, emoji) survives, and learned merges make words shorter than bytes.
    odd = "Café déjà vu 😀 — naïve!"
    assert tokenizer.decode(tokenizer(odd).input_ids) == odd
    assert len(tokenizer("the teacher reads English grammar").input_ids) < len("the teacher reads English grammar")


def test_lora_wraps_every_projection_and_only_adapters_train(tiny_dir: Path, cpu) -> None:
    plugin = QwenLoraPlugin()
    built = plugin.build(QwenLoraSettings(base=str(tiny_dir)), cpu)
    module = built.module
    trainable = {name for name, p in module.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in name or ".lora_B." in name for name in trainable)
    wrapped = {name.rsplit(".", 1)[-1] for name, m in module.named_modules() if hasattr(m, "lora_A")}
    assert wrapped == set(QWEN_LORA_TARGETS)
    layers = module.base_model.model.config.num_hidden_layers
    assert len(trainable) == 2 * len(QWEN_LORA_TARGETS) * layers
    groups = plugin.parameter_groups(module)
    base_count = sum(p.numel() for n, p in module.named_parameters() if not p.requires_grad)
    assert groups == {"base (frozen)": base_count, "lora (trainable)": sum(
        p.numel() for p in module.parameters() if p.requires_grad)}
    assert built.extras["base"] == str(tiny_dir.resolve())

    # A step moves the adapters only.
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    batch = plugin.example_batch(built, QwenLoraSettings(base=str(tiny_dir), seq_len=32), None, 2)
    optimizer = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=1.0)
    module.train()
    for _ in range(2):  # lora_B starts at zero, so lora_A moves from the second step on
        module(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    changed = {n for n, p in module.named_parameters() if not torch.equal(p, before[n])}
    assert changed == trainable


def test_lora_settings_choose_rank_and_modules(tiny_dir: Path, cpu) -> None:
    settings = QwenLoraSettings(base=str(tiny_dir), lora={"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]})
    module = QwenLoraPlugin().build(settings, cpu).module
    wrapped = {name.rsplit(".", 1)[-1] for name, m in module.named_modules() if hasattr(m, "lora_A")}
    assert wrapped == {"q_proj", "v_proj"}
    q = module.base_model.model.model.layers[0].self_attn.q_proj
    assert q.lora_A["default"].weight.shape == (4, 64) and q.scaling["default"] == 2.0
    with pytest.raises(UsageError, match="qkv_proj"):
        QwenLoraPlugin().build(QwenLoraSettings(base=str(tiny_dir), lora={"target_modules": ["qkv_proj"]}), cpu)


def test_gradient_checkpointing_gives_the_same_gradients(tiny_dir: Path, cpu) -> None:
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        settings = QwenLoraSettings(base=str(tiny_dir), gradient_checkpointing=checkpointing, lora={"dropout": 0.0})
        plugin = QwenLoraPlugin()
        built = plugin.build(settings, cpu)
        for name, p in built.module.named_parameters():  # non-zero B so every adapter gets a gradient
            if "lora_B" in name:
                torch.nn.init.normal_(p, std=0.02, generator=torch.Generator().manual_seed(1))
        built.module.train()
        built.module(**plugin.example_batch(built, settings.model_copy(update={"seq_len": 32}), None, 2)).loss.backward()
        grads.append({n: p.grad for n, p in built.module.named_parameters() if p.requires_grad})
        assert any(getattr(m, "gradient_checkpointing", False) for m in built.module.modules()) == checkpointing
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-4, atol=1e-6)


def test_random_qwen25_05b_has_the_real_parameter_count_on_meta() -> None:
    """The real Qwen2.5-0.5B has 494,032,768 parameters (embeddings tied to the LM head)."""
    from transformers import AutoModelForCausalLM

    from lexiedge_qwen_lora.base import BaseSource, random_config
    from lexiedge_qwen_lora.tiny import tiny_base_dir
    from transformers import AutoTokenizer

    source = BaseSource("random", "random:qwen2.5-0.5b", path=tiny_base_dir())
    config = random_config(source, AutoTokenizer.from_pretrained(source.path))
    assert (config.hidden_size, config.num_hidden_layers, config.vocab_size) == (896, 24, 151936)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert sum(p.numel() for p in model.parameters()) == 494_032_768


def test_unknown_bases_and_4bit_on_cpu_fail_in_one_line(tmp_path: Path, cpu) -> None:
    plugin = QwenLoraPlugin()
    with pytest.raises(UsageError, match="random:qwen2-tiny"):
        plugin.build(QwenLoraSettings(base="random:qwen9-huge"), cpu)
    with pytest.raises(UsageError, match="neither an existing directory"):
        plugin.build(QwenLoraSettings(base=str(tmp_path / "missing-model")), cpu)
    with pytest.raises(UsageError, match="no config.json"):
        plugin.build(QwenLoraSettings(base=str(tmp_path)), cpu)
    if not torch.cuda.is_available():
        with pytest.raises(LexiedgeError, match="CUDA") as error:
            plugin.build(QwenLoraSettings(base="random:qwen2-tiny", load_in_4bit=True), cpu)
        assert "\n" not in str(error.value)


def test_hub_base_plans_offline_from_the_known_architecture() -> None:
    """`lexiedge plan` with the default hub base needs neither network nor weights (sized on meta here)."""
    from transformers import AutoModelForCausalLM

    from lexiedge_qwen_lora.base import load_tokenizer, random_config, resolve_base
    from lexiedge_qwen_lora.model import apply_lora

    settings = QwenLoraSettings()
    assert settings.base == "Qwen/Qwen2.5-0.5B-Instruct" and settings.seq_len == 512
    source = resolve_base(settings)
    assert source.kind == "hub"
    tokenizer = load_tokenizer(source, pretrained=False)  # HF cache only, else the tiny stand-in
    config = random_config(source, tokenizer)
    with torch.device("meta"):
        module = apply_lora(AutoModelForCausalLM.from_config(config), settings)
    groups = QwenLoraPlugin().parameter_groups(module)
    assert groups["base (frozen)"] == 494_032_768
    # r=16 on all seven projections of 24 layers: r * (in + out) summed = 8,798,208 (peft's published count)
    assert groups["lora (trainable)"] == 8_798_208
