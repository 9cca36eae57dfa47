"""causal-lm runs (qwen-lora) as every LLM exporter reads them: the merged model (``RUN/merged``,
``lexiedge merge RUN``; run by `lexiedge export` before any exporter), its tokenizer, the fp32 PyTorch
reference, and the tutor prompts verification runs on. Format-specific pieces (ONNX Runtime GenAI's
config, an ExecuTorch program) live in the exporter plugins.
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

from lexiedge.export.errors import ExportError
from lexiedge.rundir import MERGED_DIR, is_merged_model, merged_dir

if TYPE_CHECKING:
    import torch

    from lexiedge.api import ExportJob, PluginSettings
    from lexiedge_runtime.tasks.causal_lm import LmThresholds

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


def padded(prompts: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded ids and attention mask (the KV layout GroupQueryAttention reads for a first pass)."""
    length = max(len(p) for p in prompts)
    ids = np.full((len(prompts), length), pad_id, dtype=np.int64)
    mask = np.zeros((len(prompts), length), dtype=np.int64)
    for row, prompt in enumerate(prompts):
        ids[row, : len(prompt)] = prompt
        mask[row, : len(prompt)] = 1
    return ids, mask


def lm_thresholds(settings: PluginSettings, precision: str) -> LmThresholds:
    """What verification enforces on an LLM graph of ``precision`` ("fp32", "int8", "int4"): the task spec's
    defaults (:data:`lexiedge_runtime.tasks.causal_lm.THRESHOLDS`) unless the profile sets them; an fp32
    graph must also generate PyTorch's text."""
    from lexiedge.export.verify_classifier import set_or
    from lexiedge_runtime.tasks import causal_lm as lm_task

    default = lm_task.THRESHOLDS[precision]
    return lm_task.LmThresholds(
        atol=set_or(settings, "atol", default.atol),
        min_token_agreement=set_or(settings, "min_token_agreement", default.min_token_agreement),
        identical_generation=default.identical_generation,
        min_decisive_share=settings.min_decisive_share,
    )
