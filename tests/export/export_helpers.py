"""What the export tests use to check an artifact themselves, without the exporter's own verification code:
the run's PyTorch model rebuilt from its checkpoint, real clips of the run's data, ONNX Runtime sessions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

AV_INPUTS = ("waveform", "frames", "audio_mask", "video_mask")
SYNTH_ACTORS = 15  # synth-av actors, 16 clips each (8 emotions x 2)
TRAIN_ACTORS, VAL_ACTORS, TEST_ACTORS = list(range(1, 7)), list(range(7, 14)), [14, 15]
CLIPS_PER_ACTOR = 16

_INT8 = "models.emotion-av.export.options.onnx-int8"
# variant name -> (target, --set overrides); every target the model supports, int8 in both modes
AV_VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "onnx": ("onnx", ()),
    "onnx-int8-dynamic": ("onnx-int8", (f"{_INT8}.mode=dynamic",)),
    "onnx-int8-static": ("onnx-int8", (f"{_INT8}.mode=static",)),
    "ort-mobile": ("ort-mobile", ()),
}
LM_VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "onnx": ("onnx", ()),
    "onnx-int8": ("onnx-int8", ()),
    "onnx-int4": ("onnx-int4", ()),
    "ort-mobile": ("ort-mobile", ()),
}


@dataclass
class _Built:
    """What a dataset plugin may read from the built model (nothing, for ravdess)."""

    module: Any = None
    tokenizer: Any = None
    extras: dict = field(default_factory=dict)


def run_entry(run: Path):
    from lexiedge.rundir import load_run_profile

    profile, key = load_run_profile(run)
    return profile, profile.model(key)


def pytorch_classifier(run: Path, checkpoint: str):
    """The run's emotion-av model with the weights the manifest says were exported."""
    from safetensors.torch import load_file

    from lexiedge.plugin import get_host

    profile, entry = run_entry(run)
    built = get_host().models.get(entry.model.plugin).build(entry.model.settings, profile.device, pretrained=False)
    module = built.module.float().eval()
    module.load_state_dict(load_file(run / checkpoint / "model.safetensors"), strict=True)
    return module


def classifier_logits(module, feeds: dict[str, np.ndarray]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return module(*(torch.from_numpy(feeds[name]) for name in AV_INPUTS)).numpy()


def av_splits(run: Path):
    """The run's data, loaded by its data plugin from the path `lexiedge train` recorded (features cached)."""
    from rich.console import Console

    from lexiedge.plugin import get_host
    from lexiedge.cache import cache_dir

    _, entry = run_entry(run)
    data_path = Path(json.loads((run / "run.json").read_text())["data_path"])
    return get_host().datasets.get(entry.data.plugin).load(
        entry.data.settings, data_path, built=_Built(), model_settings=entry.model.settings,
        cache_dir=cache_dir(), console=Console(quiet=True),
    )


def reshaped_clips(dataset, indices: list[int], samples: int, frame_picks: list[int]) -> dict[str, np.ndarray]:
    """Real clips at a shape nobody traced: audio centre-cropped to ``samples``, frames ``frame_picks`` only."""
    items = [dataset[i] for i in indices]
    waveform = np.stack([item["waveform"].numpy() for item in items]).astype(np.float32)
    start = (waveform.shape[1] - samples) // 2
    frames = np.stack([item["frames"].numpy()[frame_picks] for item in items]).astype(np.float32)
    return {
        "waveform": np.ascontiguousarray(waveform[:, start : start + samples]),
        "frames": np.ascontiguousarray(frames),
        "audio_mask": np.array([float(item["audio_mask"]) for item in items], np.float32),
        "video_mask": np.array([float(item["video_mask"]) for item in items], np.float32),
    }


def ort_session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_session(session, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [o.name for o in session.get_outputs()]
    wanted = {i.name for i in session.get_inputs()}
    return dict(zip(names, session.run(None, {k: v for k, v in feeds.items() if k in wanted})))


# --- LLM ---------------------------------------------------------------------------------------------


class KvSession:
    """An LLM graph run step by step with an explicit KV cache: past_key_values.* in, present.* out."""

    def __init__(self, graph: Path, head_size: int) -> None:
        self.session = ort_session(graph)
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.past_names = [name for name in inputs if name.startswith("past_key_values.")]
        self.kv_heads = inputs[self.past_names[0]].shape[1]
        self.head_size = head_size

    def empty(self, batch: int) -> dict[str, np.ndarray]:
        return {name: np.zeros((batch, self.kv_heads, 0, self.head_size), np.float32) for name in self.past_names}

    def step(self, ids: np.ndarray, total: int, past: dict[str, np.ndarray]) -> tuple[np.ndarray, dict]:
        """Logits of ``ids`` (batch, new) after ``past``; ``total`` = past + new tokens (all attended)."""
        feeds = {"input_ids": ids.astype(np.int64), "attention_mask": np.ones((len(ids), total), np.int64), **past}
        out = run_session(self.session, feeds)
        present = {name: out[name.replace("past_key_values.", "present.")] for name in self.past_names}
        return out["logits"], present

    def greedy(self, prompt: list[int], new_tokens: int, eos: set[int]) -> list[int]:
        logits, past = self.step(np.array([prompt]), len(prompt), self.empty(1))
        tokens: list[int] = []
        while True:
            token = int(logits[0, -1].argmax())
            tokens.append(token)
            if token in eos or len(tokens) == new_tokens:
                return tokens
            logits, past = self.step(np.array([[token]]), len(prompt) + len(tokens), past)

    def teacher_forced(self, rows: np.ndarray, prompt_length: int) -> np.ndarray:
        """Logits for positions prompt_length-1 .. end-1: a first pass, then one token at a time."""
        batch, length = rows.shape
        logits, past = self.step(rows[:, :prompt_length], prompt_length, self.empty(batch))
        steps = [logits[:, -1]]
        for position in range(prompt_length, length - 1):
            logits, past = self.step(rows[:, position : position + 1], position + 1, past)
            steps.append(logits[:, -1])
        return np.stack(steps, axis=1)


def pytorch_lm(model_dir: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
    return model, AutoTokenizer.from_pretrained(model_dir)


def chat_ids(tokenizer, text: str) -> list[int]:
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                             add_generation_prompt=True)
    return list(tokenizer(rendered, add_special_tokens=False).input_ids)


def pytorch_greedy(model, prompt: list[int], new_tokens: int, eos: list[int]) -> list[int]:
    import torch

    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             max_new_tokens=new_tokens, do_sample=False, eos_token_id=eos, pad_token_id=eos[0])
    return [int(t) for t in out[0, len(prompt):]]


def pytorch_lm_logits(model, rows: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(input_ids=torch.from_numpy(rows), use_cache=False).logits.float().numpy()


def ops_in_ort_file(ort_path: Path, scratch: Path) -> dict[str, set[str]]:
    """``{"domain;opset": {ops}}`` read from the .ort flatbuffer itself, by ONNX Runtime's own tool."""
    from onnxruntime.tools.ort_format_model import create_config_from_models

    config = scratch / "ops.config"
    create_config_from_models([ort_path], config, enable_type_reduction=False)
    return parse_operator_config(config)


def parse_operator_config(path: Path) -> dict[str, set[str]]:
    table: dict[str, set[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            domain, opset, ops = line.split(";", 2)
            table[f"{domain};{opset}"] = set(ops.split(","))
    return table
