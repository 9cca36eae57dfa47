"""causal-lm runs (qwen-lora): the merged model, its GenAI-built ONNX decoder, and what to check it on.

The source is ``RUN/merged`` (``lexiedge merge RUN``; run here through the model plugin when
absent): a self-contained Hugging Face directory, the PyTorch reference loaded in fp32.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lexiedge.export import ExportError
from lexiedge.rundir import MERGED_DIR, is_merged_model, merged_dir
from lexiedge_onnx.genai import GENAI_CONFIG, MODEL_FILE

if TYPE_CHECKING:
    import torch

    from lexiedge.api import ExportJob

# Tutor requests of different lengths: verification prompts must not share one shape.
VERIFY_PROMPTS = (
    "Correct: She go to school.",
    "Please correct this sentence: My brother eat an apple every morning before he goes to work.",
    "What is the difference between 'affect' and 'effect'? Give me one short example sentence for each word.",
    "Can you explain when to use the present perfect instead of the simple past? I always mix them up when I "
    "talk about my holidays, for example 'I have been to Paris last year'. Is that sentence wrong, and why?",
    "Hi!",
    "Give me three words that mean 'happy'.",
    "Is this correct: 'He don't like apples'?",
    "Write a short dialogue between a student and a teacher about homework that was handed in late.",
)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json",
                   "vocab.json", "merges.txt", "generation_config.json")


@dataclass
class LmSource:
    """The merged model directory, its tokenizer and (loaded on first use) the fp32 PyTorch model."""

    model_dir: Path
    tokenizer: Any
    _model: Any = None

    @property
    def model(self) -> torch.nn.Module:
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM

            with _no_progress_bars():
                self._model = AutoModelForCausalLM.from_pretrained(
                    self.model_dir, dtype=torch.float32, attn_implementation="eager"
                ).eval()
        return self._model

    @property
    def config(self) -> dict[str, Any]:
        return json.loads((self.model_dir / "config.json").read_text(encoding="utf-8"))

    def eos_ids(self) -> list[int]:
        generation = self.model.generation_config
        eos = generation.eos_token_id if generation is not None else None
        if eos is None:
            eos = self.tokenizer.eos_token_id
        return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos]) if e is not None]


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """transformers draws a "Loading weights" bar per load; in `lexiedge export` it is noise between our lines."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def merged_model_dir(job: ExportJob) -> Path:
    """``RUN/merged``: `lexiedge export` plans and runs the merge stage before any exporter runs."""
    merged = merged_dir(job.run_dir)
    if not is_merged_model(merged):
        raise ExportError(f"{job.run_dir} has no {MERGED_DIR}/ model; run `lexiedge merge {job.run_dir}` first")
    return merged


_sources: dict[str, LmSource] = {}


def load_lm_source(job: ExportJob) -> LmSource:
    """One LmSource per merged directory per process (targets of one export share the fp32 model)."""
    from transformers import AutoTokenizer

    model_dir = merged_model_dir(job)
    key = str(model_dir.resolve())
    if key not in _sources:
        _sources.clear()  # one reference model in memory at a time
        _sources[key] = LmSource(model_dir, AutoTokenizer.from_pretrained(model_dir))
    return _sources[key]


def prompt_ids(source: LmSource, count: int) -> list[list[int]]:
    """Token ids of ``count`` tutor prompts as the app sends them (chat template, generation prompt)."""
    prompts = []
    for text in VERIFY_PROMPTS[:count]:
        rendered = source.tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
        prompts.append(list(source.tokenizer(rendered, add_special_tokens=False).input_ids))
    return prompts


def tokenizer_files(artifact: Path) -> list[str]:
    return sorted(p.name for p in artifact.iterdir() if p.name in TOKENIZER_FILES)


def copy_tokenizer_files(source: LmSource, artifact: Path) -> None:
    """The builder copies the tokenizer; generation_config.json (stop tokens) comes along for apps."""
    for name in TOKENIZER_FILES:
        src = source.model_dir / name
        if src.is_file() and not (artifact / name).exists():
            shutil.copyfile(src, artifact / name)


def architecture(source: LmSource) -> dict[str, Any]:
    config = source.config
    keys = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
            "intermediate_size", "vocab_size", "tie_word_embeddings", "max_position_embeddings")
    return {key: config.get(key) for key in keys if key in config}


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


def padded(prompts: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded ids and attention mask (the KV layout GroupQueryAttention reads for a first pass)."""
    length = max(len(p) for p in prompts)
    ids = np.full((len(prompts), length), pad_id, dtype=np.int64)
    mask = np.zeros((len(prompts), length), dtype=np.int64)
    for row, prompt in enumerate(prompts):
        ids[row, : len(prompt)] = prompt
        mask[row, : len(prompt)] = 1
    return ids, mask
