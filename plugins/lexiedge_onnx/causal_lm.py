"""causal-lm runs through ONNX Runtime GenAI: the GenAI-built decoder's config and graph.

The merged model, its tokenizer, the PyTorch reference and the verification prompts are the core's
(:mod:`lexiedge.export.causal_lm`, shared with the other formats' LLM exporters); their names stay
importable from here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lexiedge.export.causal_lm import (  # noqa: F401 (the names this module had before the move)
    TOKENIZER_FILES,
    VERIFY_PROMPTS,
    LmSource,
    architecture,
    copy_tokenizer_files,
    load_lm_source,
    merged_model_dir,
    padded,
    prompt_ids,
    tokenizer_files,
)
from lexiedge_onnx.genai import GENAI_CONFIG, MODEL_FILE


def genai_summary(artifact: Path) -> dict[str, Any]:
    config = json.loads((artifact / GENAI_CONFIG).read_text(encoding="utf-8"))
    decoder = config["model"]["decoder"]
    return {
        "config": GENAI_CONFIG,
        "model_file": decoder.get("filename", MODEL_FILE),
        "eos_token_id": config["model"].get("eos_token_id"),
        "context_length": config["model"].get("context_length"),
        "past_key_names": decoder["inputs"].get("past_key_names"),
        "present_key_names": decoder["outputs"].get("present_key_names"),
    }


def set_genai_model_file(artifact: Path, filename: str) -> None:
    """Point genai_config.json at another graph file (the .ort of ort-mobile)."""
    path = artifact / GENAI_CONFIG
    config = json.loads(path.read_text(encoding="utf-8"))
    config["model"]["decoder"]["filename"] = filename
    path.write_text(json.dumps(config, indent=4) + "\n", encoding="utf-8")


def op_counts(path: Path) -> dict[str, int]:
    """Node counts of the ops that make the GenAI graph fast (or quantized)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    interesting = {"GroupQueryAttention", "MatMulNBits", "GatherBlockQuantized", "SkipSimplifiedLayerNormalization",
                   "SimplifiedLayerNormalization", "MatMulInteger", "DynamicQuantizeLinear", "MatMul"}
    counts: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type in interesting:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts
