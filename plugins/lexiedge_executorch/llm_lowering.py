"""A merged Hugging Face Qwen2 model -> an ExecuTorch program (``model.pte``) through ExecuTorch's own LLM
recipe (``executorch.examples.models.llama.export_llama_lib.export_llama``): q8da4w (int4 weights in groups,
int8 dynamic activations) lowered to XNNPACK, the KV cache inside the program, ExecuTorch's custom SDPA op.

What the recipe needs that we give it ourselves:

* its checkpoint is a state dict under Meta's Llama names; ExecuTorch's Qwen2.5 converter
  (``examples/models/qwen2_5/convert_weights.py``) imports torchtune for one name-substitution helper,
  which is not among our dependencies, so the same table is applied here (:data:`HF_TO_META`);
* its ``params.json`` is written from the model's ``config.json`` (:func:`llama_params`), as the recipe's
  Qwen2.5 0.5B config is (Hugging Face RoPE, biases on q/k/v);
* the checkpoint is written to a private temporary folder with ``torch.save`` and read back by the
  recipe with ``torch.load`` (weights only, torch's default), then deleted.

The program's ``forward(tokens (1, n), input_pos (1,))`` returns the logits of the last position and writes
the keys and values of positions ``input_pos .. input_pos + n - 1`` into its cache; the metadata methods
(``get_max_context_len``, ``get_vocab_size``, ``get_eos_ids``, ...) say its limits.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

# Meta (Llama) name <- Hugging Face Qwen2 name; "{}" is the layer number (ExecuTorch's _QWEN_2_5_FROM_META)
META_FROM_HF = {
    "model.embed_tokens.weight": "tok_embeddings.weight",
    "model.norm.weight": "norm.weight",
    "lm_head.weight": "output.weight",
    "model.layers.{}.self_attn.q_proj.weight": "layers.{}.attention.wq.weight",
    "model.layers.{}.self_attn.q_proj.bias": "layers.{}.attention.wq.bias",
    "model.layers.{}.self_attn.k_proj.weight": "layers.{}.attention.wk.weight",
    "model.layers.{}.self_attn.k_proj.bias": "layers.{}.attention.wk.bias",
    "model.layers.{}.self_attn.v_proj.weight": "layers.{}.attention.wv.weight",
    "model.layers.{}.self_attn.v_proj.bias": "layers.{}.attention.wv.bias",
    "model.layers.{}.self_attn.o_proj.weight": "layers.{}.attention.wo.weight",
    "model.layers.{}.input_layernorm.weight": "layers.{}.attention_norm.weight",
    "model.layers.{}.post_attention_layernorm.weight": "layers.{}.ffn_norm.weight",
    "model.layers.{}.mlp.gate_proj.weight": "layers.{}.feed_forward.w1.weight",
    "model.layers.{}.mlp.down_proj.weight": "layers.{}.feed_forward.w2.weight",
    "model.layers.{}.mlp.up_proj.weight": "layers.{}.feed_forward.w3.weight",
}
_LAYER = re.compile(r"\.(\d+)\.")


class UnsupportedModelError(ValueError):
    """The merged model is not one ExecuTorch's Llama recipe builds (its architecture or a weight)."""


def meta_state_dict(hf_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``hf_state`` under the recipe's names; a tied LM head (no ``lm_head.weight``) shares the embeddings."""
    converted: dict[str, torch.Tensor] = {}
    for name, tensor in hf_state.items():
        layer = _LAYER.search(name)
        pattern = _LAYER.sub(".{}.", name, count=1) if layer else name
        target = META_FROM_HF.get(pattern)
        if target is None:
            raise UnsupportedModelError(f"weight {name!r} has no place in ExecuTorch's Llama model")
        converted[target.format(layer.group(1)) if layer else target] = tensor.float().contiguous()
    if "output.weight" not in converted:
        converted["output.weight"] = converted["tok_embeddings.weight"]
    return converted


def llama_params(config: dict[str, Any]) -> dict[str, Any]:
    """The recipe's ``params.json`` for a Qwen2 ``config.json``."""
    if config.get("model_type") != "qwen2":
        raise UnsupportedModelError(
            f"model_type {config.get('model_type')!r}: the executorch-int4 target builds Qwen2 models"
        )
    heads = int(config["num_attention_heads"])
    params = {
        "dim": int(config["hidden_size"]),
        "hidden_dim": int(config["intermediate_size"]),
        "n_layers": int(config["num_hidden_layers"]),
        "n_heads": heads,
        "n_kv_heads": int(config.get("num_key_value_heads") or heads),
        "head_dim": int(config.get("head_dim") or config["hidden_size"] // heads),
        "vocab_size": int(config["vocab_size"]),
        "norm_eps": float(config.get("rms_norm_eps", 1e-6)),
        "rope_theta": float(config.get("rope_theta") or _rope_theta(config)),
        "use_scaled_rope": False,
        "use_hf_rope": True,
        "attention_qkv_bias": True,
        "ffn_dim_multiplier": 1,
    }
    return params


def _rope_theta(config: dict[str, Any]) -> float:
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    return float(rope.get("rope_theta", 10000.0))


def export_q8da4w(
    model_dir: Path,
    out: Path,
    *,
    max_context: int,
    group_size: int,
    embedding_bits: int | None,
    bos_id: int | None,
    eos_ids: list[int],
) -> dict[str, Any]:
    """Lower the merged model in ``model_dir`` to ``out`` (a .pte file); returns the recipe's settings."""
    from executorch.examples.models.llama.export_llama_lib import export_llama
    from executorch.extension.llm.export.config.llm_config import LlmConfig, ModelType
    from safetensors.torch import load_file

    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    params = llama_params(config)
    weights = sorted(model_dir.glob("*.safetensors"))
    if not weights:
        raise UnsupportedModelError(f"{model_dir} holds no .safetensors weights")
    hf_state: dict[str, torch.Tensor] = {}
    for path in weights:
        hf_state.update(load_file(path))
    state = meta_state_dict(hf_state)
    metadata = {"get_eos_ids": eos_ids, **({"get_bos_id": bos_id} if bos_id is not None else {})}
    with tempfile.TemporaryDirectory(prefix="lexiedge-et-llm-") as scratch:
        checkpoint, params_path = Path(scratch) / "checkpoint.pth", Path(scratch) / "params.json"
        torch.save(state, checkpoint)
        params_path.write_text(json.dumps(params), encoding="utf-8")
        llm = LlmConfig()
        llm.base.model_class = ModelType("qwen2_5_0_5b")  # the recipe's Qwen2 family; weights are ours
        llm.base.checkpoint = str(checkpoint)
        llm.base.params = str(params_path)
        llm.base.metadata = json.dumps(metadata)
        llm.model.use_kv_cache = True
        llm.model.use_sdpa_with_kv_cache = True
        llm.model.enable_dynamic_shape = True
        llm.model.dtype_override = type(llm.model.dtype_override)("fp32")
        llm.quantization.qmode = "8da4w"
        llm.quantization.group_size = group_size
        if embedding_bits is not None:
            llm.quantization.embedding_quantize = f"{embedding_bits},0"
        llm.export.max_seq_length = max_context
        llm.export.max_context_length = max_context
        llm.export.output_dir = scratch
        llm.export.output_name = "model.pte"
        llm.backend.xnnpack.enabled = True
        llm.backend.xnnpack.extended_ops = True
        with contextlib.redirect_stdout(io.StringIO()):  # the recipe prints each layer it quantizes
            written = Path(export_llama(llm))
        written.replace(out)
    return {
        "params": params,
        "qmode": "8da4w",
        "group_size": group_size,
        "embedding_quantize": f"{embedding_bits},0 (per channel)" if embedding_bits else "fp32",
        "max_context": max_context,
        "metadata": metadata,
    }
