"""LoRA SFT: `lexiedge train` against transformers.Trainer + peft on the same task, data, model and settings.

    python bench/bench_train_peers.py --json peers.json                       # 0.5B shape: real tokens/s, RSS
    python bench/bench_train_peers.py --base tiny --epochs 2 --json loss.json   # tiny Qwen2: final val loss
    python bench/bench_train_peers.py --tiny --json /tmp/peers.json             # checks the script

Runners (``--modes``), each run in a process of its own, in alternated order (a, b, c, d, then d, c, b, a):

- ``lexiedge-packed`` / ``lexiedge-padded``: ``lexiedge train --profile cpu --model qwen-lora`` through the
  pipeline (``lexiedge.training_runs.train``) with ``data.packing`` on / off;
- ``hf-flat``: ``transformers.Trainer`` on a ``peft`` LoRA model with ``DataCollatorWithFlattening`` (the
  padding-free collator transformers' docs recommend: every batch one row, ``position_ids`` restarting per
  example, no padding);
- ``hf-padded``: the same Trainer with ``DataCollatorForSeq2Seq`` (pad to the longest in the batch, labels
  padded with -100), what most LoRA tutorials run;
- ``lexiedge-packed-compiled`` / ``hf-flat-compiled``: the same with torch.compile (lexiedge's
  ``train.compile: true``, which compiles the decoder; HF's ``torch_compile=True``, which compiles the whole
  peft model). The compile happens in the first steps: give ``--warmup`` 2 or more;
- ``torchtune`` / ``torchtune-compiled`` (opt-in: a bench-only peer, never a project dependency; it needs
  torchao <= 0.15, beside which peft refuses to inject LoRA, so it lives in a folder of its own that only
  its child process puts on sys.path: ``--torchtune-dir``; the error says how to fill it): torchtune's own
  LoRA recipe (``recipes/lora_finetune_single_device.py``, ``LoRAFinetuneRecipeSingleDevice``) with its
  ``qwen2_5/0.5B_lora_single_device.yaml`` config set to these settings, its ``PackedDataset`` (``packed:
  True``: rows of seq_len, ``--rows`` rows per step, as lexiedge-packed; torchtune packs in order where
  lexiedge packs first-fit decreasing), its collate, loss and AdamW + cosine; ``-compiled`` is the recipe's
  ``compile: True`` (each decoder layer and the loss). Its ``FullModelHFCheckpointer`` loads the same HF
  weights; the trained LoRA is merged back into the HF base (torchtune's ``get_merged_lora_ckpt`` +
  ``qwen2_tune_to_hf``) for the common evaluator.

What is the same for all (:class:`Comparable`, checked by :func:`check_comparable` and written to the JSON):
the bundled tutor set and its train/val split (the chat-jsonl plugin's tokenization, answer-only labels),
the base (the Qwen2.5-0.5B shape with seeded random weights built from its config, or ``tiny:qwen2-tutor``),
fp32 on the CPU, torch threads, seq_len (packed row length; the longest example), real tokens per optimizer
step (packed rows x examples per row = examples per step of the others), LoRA rank / alpha / dropout /
targets, AdamW (lr, weight decay, betas, grad clip 1.0), warmup steps and a cosine decay to 0, the number
of optimizer steps (``--steps``) or whole epochs (``--epochs``: every train example once per epoch; the
packed runner then takes a few more, smaller steps, its cosine spanning them), and the seed. Not the same:
the order of the examples (each library's own seeded sampler), and HF's warmup starts at 0 where
lexiedge's starts at lr / (warmup + 1) (torchtune's at 0, as HF's); torchtune's sampler seed is its
recipe's fixed 0 and it drops a last partial batch.

Measured in each child, the same way for every runner: the time of every optimizer step (torch's global
optimizer step hook), the real (non-padding) tokens every training forward saw (a wrapper around the
decoder's forward: the attention mask's ones, else all tokens but each row's trailing padding), the loss the
runner logged at each step, and peak RSS (``VmHWM``). Real tokens/s counts the steps after ``--warmup``
steps. With ``--val`` (the default with ``--base tiny``) the final adapter's validation loss on the same
split is computed by one evaluator for all (token-weighted cross-entropy on the answer tokens).
The machine's load average is recorded at the start and the end; a busy machine's timings are not results.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODEL = "qwen-lora"
BASES = {"0.5b": "random:qwen2.5-0.5b", "tiny": "tiny:qwen2-tutor"}
DEFAULT_MODES = ("lexiedge-packed", "hf-flat", "lexiedge-padded", "hf-padded", "lexiedge-packed-compiled",
                 "hf-flat-compiled")
TORCHTUNE_MODES = ("torchtune", "torchtune-compiled")  # opt-in: torchtune is not a project dependency
MODES = DEFAULT_MODES + TORCHTUNE_MODES
COMPILED = "-compiled"  # torch.compile: lexiedge's train.compile, HF's torch_compile, torchtune's compile
# torchtune 0.6.1 imports torchao.quantization.int4_weight_only (gone in torchao 0.16) and
# torchao.dtypes.nf4tensor (gone in 0.18): 0.15.0 is the newest torchao it imports with, and peft 0.21 refuses
# to inject LoRA while a torchao < 0.16 is importable. So torchtune and its torchao live in a folder of their
# own (--no-deps: torch, transformers, numpy... are the project's), on sys.path in torchtune's child only.
TORCHTUNE_PACKAGES = (
    "torchtune==0.6.1 torchao==0.15.0 torchdata==0.11.0 omegaconf==2.4.0 "
    "sentencepiece==0.2.3 tiktoken==0.14.0"
)
TORCHTUNE_DIR = Path("~/.cache/lexiedge/bench-torchtune-0.6.1").expanduser()


def torchtune_install(folder: Path) -> str:
    return f"pip install --no-deps --target {folder} {TORCHTUNE_PACKAGES}"
SPEED_TARGET = 1.3  # lexiedge / HF real tokens/s
LOSS_TOLERANCE = 0.01  # final validation loss within 1%


@dataclasses.dataclass(frozen=True)
class Comparable:
    """Every setting that must be the same for every runner of one comparison."""

    base: str
    seq_len: int
    rows: int  # packed rows per optimizer step (lexiedge-packed)
    examples_per_step: int  # examples per optimizer step of the unpacked runners (as many real tokens)
    steps: int | None  # optimizer steps; None: whole epochs
    epochs: int
    total_steps: int  # the schedule's length (every runner's)
    warmup_steps: int
    lr: float
    weight_decay: float
    grad_clip: float
    lora_r: int
    lora_alpha: float
    lora_dropout: float
    lora_targets: tuple[str, ...]
    threads: int
    seed: int
    val_fraction: float


def check_comparable(settings: list[dict[str, Any]]) -> None:
    """Each child reports the settings it really trained with; any difference is a broken comparison."""
    first = settings[0]
    for other in settings[1:]:
        differing = sorted(key for key in first if first[key] != other.get(key))
        if differing:
            raise SystemExit(f"runners trained with different settings: {differing}: {first} vs {other}")


# --- what every child measures the same way --------------------------------------------------------


class StepRecorder:
    """Per optimizer step: when it ended and the real tokens its forwards saw (training forwards only)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id
        self.times: list[float] = []
        self.tokens: list[int] = []
        self._pending = 0

    def install(self) -> None:
        import torch
        from torch.optim.optimizer import register_optimizer_step_post_hook
        from transformers.models.qwen2 import modeling_qwen2

        recorder = self
        decoder_forward = modeling_qwen2.Qwen2Model.forward

        # outside torch.compile's graph (a compiled runner breaks the graph here, before any compute)
        @torch.compiler.disable
        def count(module, input_ids, attention_mask) -> None:
            if module.training and torch.is_grad_enabled() and input_ids is not None:
                recorder._pending += recorder.real_tokens(input_ids, attention_mask)

        def counting_forward(module, input_ids=None, attention_mask=None, *args, **kwargs):
            count(module, input_ids, attention_mask)
            return decoder_forward(module, input_ids, attention_mask, *args, **kwargs)

        modeling_qwen2.Qwen2Model.forward = counting_forward
        register_optimizer_step_post_hook(self._on_step)

    def install_torchtune(self) -> None:
        """The same count around torchtune's decoder (``TransformerDecoder.forward(tokens, *, mask=...,
        input_pos=...)``, called with keywords by its recipe): a packed row's padding is the pad id at its end
        (``PackedDataset._pad_pack``), its mask is block-causal, never an attention mask of ones."""
        import torch
        from torchtune.modules import TransformerDecoder

        recorder = self
        decoder_forward = TransformerDecoder.forward

        @torch.compiler.disable
        def count(module, tokens) -> None:
            if module.training and torch.is_grad_enabled() and tokens is not None:
                recorder._pending += recorder.real_tokens(tokens, None)

        def counting_forward(module, tokens=None, *args, **kwargs):
            count(module, tokens)
            return decoder_forward(module, tokens, *args, **kwargs)

        TransformerDecoder.forward = counting_forward

    def real_tokens(self, input_ids, attention_mask) -> int:
        if attention_mask is not None and attention_mask.dim() == 2:
            return int(attention_mask.sum())
        trailing = (input_ids.flip(-1) == self.pad_id).long().cumprod(-1)
        return input_ids.numel() - int(trailing.sum())

    def _on_step(self, optimizer, args, kwargs) -> None:
        self.times.append(time.perf_counter())
        self.tokens.append(self._pending)
        self._pending = 0

    def summary(self, warmup: int) -> dict[str, Any]:
        if len(self.times) <= warmup + 1:
            raise SystemExit(f"only {len(self.times)} optimizer steps ran; need --warmup {warmup} + 2")
        tokens = sum(self.tokens[warmup + 1 :])
        seconds = self.times[-1] - self.times[warmup]
        return {
            "steps": len(self.times),
            "timed_steps": len(self.times) - warmup - 1,
            "timed_tokens": tokens,
            "real_tokens_per_s": tokens / seconds,
            "real_tokens": sum(self.tokens),
            "step_tokens": self.tokens,
        }


def peak_rss_mb() -> float:
    """VmHWM: this process's own high-water mark (ru_maxrss after fork+exec keeps the parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**10
    raise SystemExit("no VmHWM in /proc/self/status: peak RSS needs Linux")


def lexiedge_overrides(c: Comparable, packing: bool, compiled: bool = False) -> list[str]:
    key = f"models.{MODEL}"
    return [
        f"{key}.train.compile={'true' if compiled else 'false'}",
        f"{key}.model.base={c.base}",
        f"{key}.model.seq_len={c.seq_len}",
        f"{key}.model.lora.r={c.lora_r}",
        f"{key}.model.lora.alpha={c.lora_alpha}",
        f"{key}.model.lora.dropout={c.lora_dropout}",
        f"{key}.model.lora.target_modules=[{', '.join(c.lora_targets)}]",
        f"{key}.data.packing={'true' if packing else 'false'}",
        f"{key}.data.val_fraction={c.val_fraction}",
        f"{key}.data.seed={c.seed}",
        f"{key}.train.batch_size={c.rows if packing else c.examples_per_step}",
        f"{key}.train.grad_accum=1",
        f"{key}.train.epochs={c.epochs}",
        f"{key}.train.max_steps={c.steps if c.steps else 'null'}",
        f"{key}.train.lr={c.lr}",
        f"{key}.train.weight_decay={c.weight_decay}",
        f"{key}.train.warmup_ratio={c.warmup_steps / c.total_steps}",
        f"{key}.train.min_lr_ratio=0.0",
        f"{key}.train.grad_clip={c.grad_clip}",
        f"{key}.train.seed={c.seed}",
        f"{key}.train.checkpoint_every=1000000",  # only the end-of-run checkpoint, after the timed steps
        f"{key}.train.trackers=[]",  # the HF runners report to nothing either
        f"{key}.train.learning_check=null",
    ]


def load_profile(c: Comparable, packing: bool, compiled: bool = False):
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile as load

    return load("cpu", lexiedge_overrides(c, packing, compiled), host=get_host())


def load_splits(c: Comparable, packing: bool, tokenizer):
    """The chat-jsonl plugin's train/val splits of the bundled tutor set, and the profile's entry."""
    from rich.console import Console

    from lexiedge.api import BuiltModel
    from lexiedge.plugin import get_host

    profile = load_profile(c, packing)
    entry = profile.model(MODEL)
    plugin = get_host().datasets.get(entry.data.plugin)
    splits = plugin.load(
        entry.data.settings,
        None,
        built=BuiltModel(module=None, tokenizer=tokenizer),
        model_settings=entry.model.settings,
        cache_dir=Path(tempfile.gettempdir()),
        console=Console(quiet=True),
    )
    return splits, entry


def base_source_and_tokenizer(c: Comparable, weights: bool = True):
    """Where the base's weights come from, and its tokenizer. ``weights=False``: a built base resolves to
    its random twin (the same config and tokenizer), so counting tokens never pretrains the tiny base."""
    from lexiedge_qwen_lora.base import load_tokenizer, resolve_base
    from lexiedge_qwen_lora.settings import QwenLoraSettings

    source = resolve_base(QwenLoraSettings(base=c.base), weights=weights)
    return source, load_tokenizer(source)


def hf_base_model(c: Comparable):
    """The base every peer starts from, fp32 with SDPA attention, loaded by the qwen-lora plugin's own loader
    (a random base's seeded init, a built or local base's files), so all runners hold the same weights."""
    from lexiedge.profile import DeviceSpec
    from lexiedge_qwen_lora.base import load_base_model
    from lexiedge_qwen_lora.settings import QwenLoraSettings

    source, tokenizer = base_source_and_tokenizer(c)
    settings = QwenLoraSettings(base=c.base, dtype="fp32", attn_implementation="sdpa")
    return load_base_model(source, settings, DeviceSpec(kind="cpu", memory_gb=8, precision="fp32"), tokenizer)


def validation_loss(module, c: Comparable, tokenizer) -> dict[str, float]:
    """One evaluator for every runner: the causal-lm-lora trainer's token-weighted answer-token loss on the
    unpacked validation split, batch 8, in eval mode."""
    import torch
    from lexiedge_causal_lm.trainer import CausalLMTrainer

    from lexiedge.api import BuiltModel
    from lexiedge.train.batching import eval_loader

    splits, _ = load_splits(c, packing=False, tokenizer=tokenizer)
    module.eval()
    with torch.no_grad():
        return CausalLMTrainer().evaluate(
            BuiltModel(module=module, tokenizer=tokenizer),
            eval_loader(splits.val, 8, splits.collate, 0, False),
            "val",
        )


# --- the runners (each in a child process) ---------------------------------------------------------


def run_lexiedge(c: Comparable, packing: bool, compiled: bool, run_dir: Path, recorder: StepRecorder) -> dict[str, Any]:
    from rich.console import Console

    from lexiedge import training_runs
    from lexiedge.rundir import read_history

    profile = load_profile(c, packing, compiled)
    request = training_runs.TrainRequest(
        profile=profile,
        model_keys=[MODEL],
        data={MODEL: None},
        out=run_dir,
        resume=False,
        evaluate_test=False,
    )
    training_runs.train(request, Console(quiet=True))
    losses = [
        json.loads(line)["train/loss"]
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        if "train/loss" in line and '"event"' not in line
    ]
    settings = profile.model(MODEL).train.settings
    optimizer = {"lr": settings.lr, "weight_decay": settings.weight_decay, "grad_clip": settings.grad_clip}
    last = read_history(run_dir)[-1]
    return {
        "losses": losses,
        "optimizer": optimizer,
        "engine_val_loss": last.get("val/loss"),
        "final_adapter": str(run_dir / "final" / "adapter"),
    }


def run_hf(c: Comparable, flat: bool, compiled: bool, run_dir: Path, recorder: StepRecorder) -> dict[str, Any]:
    from peft import LoraConfig, get_peft_model
    from transformers import (
        DataCollatorForSeq2Seq,
        DataCollatorWithFlattening,
        Trainer,
    )

    _, tokenizer = base_source_and_tokenizer(c)
    base = hf_base_model(c)
    base.config.use_cache = False
    model = get_peft_model(
        base,
        LoraConfig(
            r=c.lora_r,
            lora_alpha=c.lora_alpha,
            lora_dropout=c.lora_dropout,
            target_modules=list(c.lora_targets),
            bias="none",
            task_type="CAUSAL_LM",
        ),
    )
    splits, _ = load_splits(c, packing=False, tokenizer=tokenizer)
    train = [
        {
            "input_ids": row.input_ids.tolist(),
            "labels": row.labels.tolist(),
            **({} if flat else {"attention_mask": [1] * len(row)}),
        }
        for row in splits.train.rows
    ]
    collator = (
        DataCollatorWithFlattening(return_position_ids=True)
        if flat
        else DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100)
    )
    arguments = hf_training_arguments(c, run_dir, compiled)
    trainer = Trainer(model=model, args=arguments, train_dataset=train, data_collator=collator)
    trainer.train()
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    val = (
        validation_loss(model, c, tokenizer)
        if c.val_fraction and os.environ.get("BENCH_VAL") == "1"
        else None
    )
    optimizer = {
        "lr": arguments.learning_rate,
        "weight_decay": arguments.weight_decay,
        "grad_clip": arguments.max_grad_norm,
    }
    return {"losses": losses, "optimizer": optimizer, "val": val}


def hf_training_arguments(c: Comparable, run_dir: Path, compiled: bool = False):
    """transformers.Trainer's settings for ``c``: AdamW, warmup + cosine to 0, clip, no eval, no saving,
    no reporting, a loss logged every step."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(run_dir),
        per_device_train_batch_size=c.examples_per_step,
        gradient_accumulation_steps=1,
        num_train_epochs=c.epochs,
        max_steps=c.steps or -1,
        learning_rate=c.lr,
        weight_decay=c.weight_decay,
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        max_grad_norm=c.grad_clip,
        lr_scheduler_type="cosine",
        warmup_steps=c.warmup_steps,
        optim=hf_optimizer(),
        logging_steps=1,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        use_cpu=True,
        # every example trains, as in lexiedge's packed epoch (its rows fill whole micro-batches by default)
        dataloader_num_workers=0,
        dataloader_drop_last=False,
        seed=c.seed,
        data_seed=c.seed,
        remove_unused_columns=False,
        disable_tqdm=True,
        torch_compile=compiled,
    )


def hf_optimizer() -> str:
    """The AdamW lexiedge's engine builds on the CPU (fused where this torch has the kernel)."""
    import torch

    try:
        torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], fused=True)
        return "adamw_torch_fused"
    except (RuntimeError, TypeError):
        return "adamw_torch"


# --- torchtune's LoRA recipe (a bench-only peer) ---------------------------------------------------

TORCHTUNE_RECIPE = "lora_finetune_single_device.py"
TORCHTUNE_CONFIG = "configs/qwen2_5/0.5B_lora_single_device.yaml"
# HF module names -> torchtune's (its MLP takes LoRA on all three projections or on none)
TORCHTUNE_ATTENTION = {"q_proj": "q_proj", "k_proj": "k_proj", "v_proj": "v_proj", "o_proj": "output_proj"}
TORCHTUNE_MLP = {"gate_proj": "w1", "down_proj": "w2", "up_proj": "w3"}


def torchtune_recipe_dir() -> Path:
    """The recipes the torchtune wheel ships beside its package (``recipes/``: not importable by design)."""
    import torchtune

    return Path(torchtune.__file__).resolve().parent.parent / "recipes"


def torchtune_missing(folder: Path) -> str | None:
    """Why the torchtune modes cannot run from ``folder`` (one line with the fix), or None."""
    if (folder / "torchtune").is_dir() and (folder / "recipes" / TORCHTUNE_RECIPE).is_file():
        return None
    return f"the torchtune modes need torchtune in {folder} (--torchtune-dir): {torchtune_install(folder)}"


def torchtune_recipe_class(recipes: Path):
    """``LoRAFinetuneRecipeSingleDevice`` from the shipped recipe file, unchanged."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("torchtune_lora_recipe", recipes / TORCHTUNE_RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LoRAFinetuneRecipeSingleDevice


@dataclasses.dataclass(frozen=True)
class HeldTokenization:
    """The recipe's ``tokenizer``: only what it reads (``pad_id`` for collate and packing, ``max_seq_len``
    for packing). No text is tokenized here: every runner trains on the chat-jsonl plugin's token ids and
    answer-only labels, the tokenization held constant on purpose."""

    pad_id: int
    max_seq_len: int


def tutor_rows_dataset(tokenizer: HeldTokenization, *, path: str, packed: bool):
    """The recipe's ``dataset``: the train split's examples ({"tokens", "labels"} as torchtune's SFT datasets
    give them, non-answer labels CROSS_ENTROPY_IGNORE_IDX), packed by torchtune's own PackedDataset."""
    from torchtune.data import CROSS_ENTROPY_IGNORE_IDX
    from torchtune.datasets import PackedDataset

    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
    examples = [
        {
            "tokens": row["input_ids"],
            "labels": [CROSS_ENTROPY_IGNORE_IDX if label == -100 else label for label in row["labels"]],
        }
        for row in rows
    ]
    if not packed:
        return examples
    # torchtune's builders pad with id 0; the pad id makes a row's padding countable like everyone's (the
    # block-causal mask and ignored labels make its value irrelevant to the model)
    return PackedDataset(examples, max_seq_len=tokenizer.max_seq_len, padding_idx=tokenizer.pad_id)


class StepLossLogger:
    """The recipe's ``metric_logger``: every logged step as one JSON line (the loss the recipe reports)."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed by the recipe's cleanup)

    def log(self, name: str, data: Any, step: int) -> None:
        self.log_dict({name: data}, step)

    def log_dict(self, payload: dict[str, Any], step: int) -> None:
        self._file.write(json.dumps({"step": step, **{k: float(v) for k, v in payload.items()}}) + "\n")
        self._file.flush()

    def log_config(self, config: Any) -> None:
        pass

    def close(self) -> None:
        self._file.close()


def torchtune_lora_modules(targets: tuple[str, ...]) -> tuple[list[str], bool]:
    """``lora_attn_modules`` and ``apply_lora_to_mlp`` for the HF target names."""
    unknown = sorted(set(targets) - set(TORCHTUNE_ATTENTION) - set(TORCHTUNE_MLP))
    mlp = set(targets) & set(TORCHTUNE_MLP)
    if unknown or mlp not in (set(), set(TORCHTUNE_MLP)):
        raise SystemExit(
            f"torchtune's LoRA cannot target {list(targets)}: it takes attention projections by name and the "
            f"MLP's {', '.join(TORCHTUNE_MLP)} all together or none"
        )
    return [TORCHTUNE_ATTENTION[t] for t in targets if t in TORCHTUNE_ATTENTION], bool(mlp)


def torchtune_model(c: Comparable, hf: dict[str, Any]) -> dict[str, Any]:
    """The recipe's ``model``: the Qwen2.5-0.5B builder when the base has its sizes, else torchtune's Qwen2
    component builder with the base's sizes (the tiny base)."""
    attention, mlp = torchtune_lora_modules(c.lora_targets)
    lora = {
        "lora_attn_modules": attention,
        "apply_lora_to_mlp": mlp,
        "lora_rank": c.lora_r,
        "lora_alpha": float(c.lora_alpha),
        "lora_dropout": c.lora_dropout,
    }
    sizes = {
        "vocab_size": hf["vocab_size"],
        "num_layers": hf["num_hidden_layers"],
        "num_heads": hf["num_attention_heads"],
        "num_kv_heads": hf["num_key_value_heads"],
        "embed_dim": hf["hidden_size"],
        "intermediate_dim": hf["intermediate_size"],
        "max_seq_len": hf["max_position_embeddings"],
        "attn_dropout": hf.get("attention_dropout", 0.0),
        "norm_eps": hf["rms_norm_eps"],
        "rope_base": (hf.get("rope_parameters") or {}).get("rope_theta", hf.get("rope_theta", 1e6)),
        "tie_word_embeddings": hf["tie_word_embeddings"],
    }
    qwen2_5_0_5b = {
        "vocab_size": 151936, "num_layers": 24, "num_heads": 14, "num_kv_heads": 2, "embed_dim": 896,
        "intermediate_dim": 4864, "max_seq_len": 32768, "attn_dropout": 0.0, "norm_eps": 1e-6,
        "rope_base": 1000000.0, "tie_word_embeddings": True,
    }  # lora_qwen2_5_0_5b's sizes (torchtune/models/qwen2_5/_model_builders.py)
    if sizes == qwen2_5_0_5b:
        return {"_component_": "torchtune.models.qwen2_5.lora_qwen2_5_0_5b", **lora}
    return {"_component_": "torchtune.models.qwen2.lora_qwen2", **lora, **sizes}


def hf_base_dir(c: Comparable, run_dir: Path) -> Path:
    """The base as an HF checkpoint (config.json + model.safetensors) for torchtune's checkpointer: a built
    base's own folder, a random base's seeded weights (the HF runner's) saved once in the run dir."""
    source, _ = base_source_and_tokenizer(c)
    if source.kind != "random":
        if not (Path(source.location) / "model.safetensors").is_file():
            raise SystemExit(f"base {c.base}: torchtune needs a model.safetensors in {source.location}")
        return Path(source.location)
    out = run_dir / "base"
    # in a process of its own: building and saving the random base stays out of this child's peak RSS (what
    # it measures is torchtune's own load, checkpoint to model, as the HF child measures from_config)
    spec = {"save_random_base": str(out), "comparable": dataclasses.asdict(c)}
    subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], check=True, stdout=subprocess.DEVNULL)
    return out


def save_random_base(c: Comparable, out: Path) -> None:
    """The HF runner's seeded random base, saved (one safetensors file: below transformers' shard size)."""
    hf_base_model(c).save_pretrained(out)


def torchtune_config(c: Comparable, compiled: bool, base_dir: Path, rows: Path, run_dir: Path, pad_id: int):
    """The recipe's shipped Qwen2.5-0.5B LoRA config with the comparison's settings put in."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(torchtune_recipe_dir() / TORCHTUNE_CONFIG)
    hf = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    out = run_dir / "torchtune"
    settings = {
        "output_dir": str(out),
        "model": torchtune_model(c, hf),
        "tokenizer": {
            "_component_": f"{__name__}.HeldTokenization",
            "pad_id": pad_id,
            "max_seq_len": c.seq_len,
        },
        "checkpointer": {
            "_component_": "torchtune.training.FullModelHFCheckpointer",
            "checkpoint_dir": str(base_dir),
            "checkpoint_files": ["model.safetensors"],
            "recipe_checkpoint": None,
            "output_dir": str(out),
            "model_type": "QWEN2",
        },
        "resume_from_checkpoint": False,
        # the end-of-epoch save the recipe always makes: the adapter only (the merged model for the
        # evaluation is built in memory)
        "save_adapter_weights_only": True,
        "dataset": {"_component_": f"{__name__}.tutor_rows_dataset", "path": str(rows), "packed": True},
        "seed": c.seed,
        "shuffle": True,
        "epochs": c.epochs,
        "max_steps_per_epoch": c.steps,
        "batch_size": c.rows,  # packed rows of seq_len per step, as lexiedge-packed
        "gradient_accumulation_steps": 1,
        "optimizer": {
            "_component_": "torch.optim.AdamW",
            "fused": hf_optimizer() == "adamw_torch_fused",
            "lr": c.lr,
            "weight_decay": c.weight_decay,
            "betas": [0.9, 0.999],
            "eps": 1e-8,
        },
        "lr_scheduler": {
            "_component_": "torchtune.training.lr_schedulers.get_cosine_schedule_with_warmup",
            "num_warmup_steps": c.warmup_steps,
        },
        "device": "cpu",
        "dtype": "fp32",
        "clip_grad_norm": c.grad_clip,
        "compile": compiled,
        "enable_activation_checkpointing": False,
        "enable_activation_offloading": False,
        "metric_logger": {"_component_": f"{__name__}.StepLossLogger", "path": str(run_dir / "losses.jsonl")},
        "log_every_n_steps": 1,
        "log_peak_memory_stats": False,
    }
    for key, value in settings.items():
        cfg[key] = value  # whole sections replaced: none of the yaml's paths (tokenizer files, data) remain
    return cfg


def write_train_rows(c: Comparable, tokenizer, path: Path) -> None:
    """The chat-jsonl plugin's unpacked train split, as every runner gets it."""
    splits, _ = load_splits(c, packing=False, tokenizer=tokenizer)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for row in splits.train.rows:
            example = {"input_ids": row.input_ids.tolist(), "labels": row.labels.tolist()}
            handle.write(json.dumps(example) + "\n")


def merged_hf_model(recipe, base_dir: Path):
    """The recipe's trained LoRA merged into the HF base with torchtune's own functions (the merged
    checkpoint it saves when not adapter-only). Its PEFT adapter export permutes the q/k LoRA B matrices
    for Llama's rotary layout, which Qwen2's conversion does not use, so that file is not loaded here."""
    import torch
    from torchtune.models.qwen2._convert_weights import qwen2_tune_to_hf
    from torchtune.modules.peft import get_merged_lora_ckpt
    from transformers import AutoModelForCausalLM

    hf = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    state = {key: value.detach().clone() for key, value in recipe._model.state_dict().items()}
    merged = get_merged_lora_ckpt(state, rank=recipe._lora_rank, alpha=recipe._lora_alpha)
    converted = qwen2_tune_to_hf(
        merged,
        num_heads=hf["num_attention_heads"],
        num_kv_heads=hf["num_key_value_heads"],
        dim=hf["hidden_size"],
        tie_word_embeddings=hf["tie_word_embeddings"],
    )
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(converted, strict=False)
    tied = {"lm_head.weight"} if hf["tie_word_embeddings"] else set()
    if set(missing) - tied or unexpected:
        raise SystemExit(
            f"torchtune's merged weights do not fit the HF base: missing {missing}, extra {unexpected}"
        )
    return model


def torchtune_trained_settings(recipe, cfg, c: Comparable) -> tuple[dict[str, Any], dict[str, float]]:
    """The settings the recipe really trained with, in the Comparable's fields (those it has no notion of,
    the base, examples per unpacked step and the validation share, are the comparison's own)."""
    import torch
    from torchtune.modules.peft import get_lora_module_names

    names = get_lora_module_names(recipe._lora_attn_modules, recipe._apply_lora_to_mlp, False)
    to_hf = {tune: hf for hf, tune in {**TORCHTUNE_ATTENTION, **TORCHTUNE_MLP}.items()}
    trained = {to_hf[name] for name in names}
    group = recipe._optimizer.param_groups[0]
    comparable = {
        **dataclasses.asdict(c),
        "seq_len": recipe._tokenizer.max_seq_len,
        "rows": recipe._dataloader.batch_size,
        "steps": recipe.max_steps_per_epoch,
        "epochs": recipe.total_epochs,
        # whole epochs: the packed runners' cosine spans their own steps (see comparable_settings)
        "total_steps": recipe.total_epochs * recipe._steps_per_epoch if c.steps else c.total_steps,
        "warmup_steps": cfg.lr_scheduler.num_warmup_steps,
        "lora_r": recipe._lora_rank,
        "lora_alpha": recipe._lora_alpha,
        "lora_dropout": cfg.model.lora_dropout,
        "lora_targets": list(c.lora_targets) if trained == set(c.lora_targets) else sorted(trained),
        "threads": torch.get_num_threads(),
        "seed": recipe.seed,
    }
    optimizer = {
        "lr": group["initial_lr"],
        "weight_decay": group["weight_decay"],
        "grad_clip": float(recipe._clip_grad_norm),
    }
    return comparable, optimizer


def run_torchtune(
    c: Comparable, compiled: bool, run_dir: Path, recorder: StepRecorder, val: bool
) -> dict[str, Any]:
    recipe_class = torchtune_recipe_class(torchtune_recipe_dir())
    _, tokenizer = base_source_and_tokenizer(c)
    base_dir = hf_base_dir(c, run_dir)
    rows = run_dir / "train_rows.jsonl"
    write_train_rows(c, tokenizer, rows)
    cfg = torchtune_config(c, compiled, base_dir, rows, run_dir, tokenizer.pad_token_id)
    recorder.install_torchtune()
    recipe = recipe_class(cfg=cfg)
    recipe.setup(cfg=cfg)
    recipe.train()
    recipe.cleanup()
    losses = [
        json.loads(line)["loss"]
        for line in (run_dir / "losses.jsonl").read_text(encoding="utf-8").splitlines()
        if '"loss"' in line
    ]
    comparable, optimizer = torchtune_trained_settings(recipe, cfg, c)
    packs = recipe._dataloader.dataset
    return {
        "comparable": comparable,
        "losses": losses,
        "optimizer": optimizer,
        "packed_rows": len(packs),
        "packed_tokens": sum(recorder.real_tokens(pack["tokens"], None) for pack in packs),
        "val": validation_loss(merged_hf_model(recipe, base_dir), c, tokenizer) if val else None,
    }


def child(spec: dict[str, Any]) -> dict[str, Any]:
    if spec.get("mode", "").removesuffix(COMPILED) == "torchtune":
        # first, before anything imports torchao: a project environment may hold a newer one (executorch's)
        # that torchtune cannot import; this process only, since its torchao would break peft's LoRA
        sys.path.insert(0, spec["torchtune_dir"])
    import torch

    c = Comparable(**{**spec["comparable"], "lora_targets": tuple(spec["comparable"]["lora_targets"])})
    if "save_random_base" in spec:
        save_random_base(c, Path(spec["save_random_base"]))
        return {}
    torch.set_num_threads(c.threads)
    _, tokenizer = base_source_and_tokenizer(c)
    recorder = StepRecorder(pad_id=tokenizer.pad_token_id)
    recorder.install()
    mode, run_dir = spec["mode"], Path(spec["run_dir"])
    started = time.perf_counter()
    compiled = mode.endswith(COMPILED)
    runner = mode.removesuffix(COMPILED)
    if runner.startswith("lexiedge"):
        result = run_lexiedge(c, runner == "lexiedge-packed", compiled, run_dir, recorder)
        if spec["val"]:
            result["val"] = lexiedge_final_validation(c, Path(result["final_adapter"]), tokenizer)
    elif runner == "torchtune":
        result = run_torchtune(c, compiled, run_dir, recorder, spec["val"])
    else:
        os.environ["BENCH_VAL"] = "1" if spec["val"] else "0"
        result = run_hf(c, runner == "hf-flat", compiled, run_dir, recorder)
    seconds = time.perf_counter() - started
    return {
        "mode": mode,
        "comparable": result.pop("comparable", dataclasses.asdict(c)),  # what the runner really trained with
        "peak_rss_mb": peak_rss_mb(),
        "wall_s": seconds,
        "torch_threads": torch.get_num_threads(),
        **recorder.summary(spec["warmup"]),
        **result,
    }


def lexiedge_final_validation(c: Comparable, adapter_dir: Path, tokenizer) -> dict[str, float]:
    """The run's final adapter (peft format, as users load it) on its base, through the common evaluator."""
    from peft import PeftModel

    return validation_loss(PeftModel.from_pretrained(hf_base_model(c), adapter_dir), c, tokenizer)


# --- the parent: settings, alternated children, report ---------------------------------------------


def comparable_settings(args: argparse.Namespace) -> tuple[Comparable, dict[str, Any]]:
    """Real tokens per step matched: examples per step = packed rows per step x examples per packed row."""
    base = BASES[args.base]
    probe = Comparable(
        base=base,
        seq_len=args.seq_len,
        rows=args.rows,
        examples_per_step=1,
        steps=args.steps,
        epochs=args.epochs,
        total_steps=1,
        warmup_steps=0,
        lr=args.lr,
        weight_decay=args.weight_decay,
        grad_clip=1.0,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=0.0,
        lora_targets=tuple(args.lora_targets.split(",")),
        threads=args.threads,
        seed=0,
        val_fraction=args.val_fraction,
    )
    _, tokenizer = base_source_and_tokenizer(probe, weights=False)
    packed, _ = load_splits(probe, packing=True, tokenizer=tokenizer)
    examples, rows, tokens = packed.train.num_examples, len(packed.train), packed.train.num_tokens
    longest = max(len(row) for row in packed.train.rows)
    per_step = max(1, round(args.rows * examples / rows))
    # whole epochs: each runner's warmup + cosine spans its own steps over the same tokens (packed rows make
    # a few more steps than unpacked examples); the warmup steps are the same for all
    total = args.steps or math.ceil(examples / per_step) * args.epochs
    c = dataclasses.replace(
        probe, examples_per_step=per_step, total_steps=total, warmup_steps=round(args.warmup_ratio * total)
    )
    data = {
        "train_examples": examples,
        "packed_rows": rows,
        "train_tokens": tokens,
        "longest_row": longest,
        "examples_per_packed_row": examples / rows,
        "tokens_per_example": tokens / examples,
        "packed_steps_per_epoch": rows // args.rows,
        "unpacked_steps_per_epoch": math.ceil(examples / per_step),
    }
    return c, data


def run_child(spec: dict[str, Any], log: Path) -> dict[str, Any]:
    with open(log, "w") as handle:
        completed = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=handle,
            text=True,
            check=False,
        )
    if completed.returncode != 0:
        raise SystemExit(
            f"{spec['mode']} failed (exit {completed.returncode}); its log: {log}\n" + log.read_text()[-2000:]
        )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def summarise(runs: dict[str, list[dict[str, Any]]], modes: list[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for mode in modes:
        rates = [run["real_tokens_per_s"] for run in runs[mode]]
        vals = [run["val"]["loss"] for run in runs[mode] if run.get("val")]
        summary[mode] = {
            "real_tokens_per_s": statistics.median(rates),
            "runs_tokens_per_s": rates,
            "peak_rss_mb": max(run["peak_rss_mb"] for run in runs[mode]),
            "real_tokens": runs[mode][0]["real_tokens"],
            "steps": runs[mode][0]["steps"],
            "val_loss": vals[0] if vals else None,
            "val_perplexity": math.exp(min(vals[0], 50.0)) if vals else None,
        }
    ratios: dict[str, Any] = {}
    for ours in (m for m in modes if m.startswith("lexiedge")):
        for theirs in (m for m in modes if not m.startswith("lexiedge")):
            a, b = summary[ours], summary[theirs]
            ratios[f"{ours}/{theirs}"] = {
                "real_tokens_per_s": a["real_tokens_per_s"] / b["real_tokens_per_s"],
                "peak_rss": a["peak_rss_mb"] / b["peak_rss_mb"],
                "val_loss": a["val_loss"] / b["val_loss"] if a["val_loss"] and b["val_loss"] else None,
                "real_tokens": a["real_tokens"] / b["real_tokens"],
            }
    return {"modes": summary, "ratios": ratios}


def targets(summary: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets against HF's faster runner: >= 1.3x real tokens/s at <= its peak RSS, and a val
    loss no more than 1% above HF's (speed not bought with quality; a lower loss passes, its size is
    shown)."""
    modes = summary["modes"]
    ours = [m for m in modes if m.startswith("lexiedge")]
    theirs = [m for m in modes if m.startswith("hf")]
    if not ours or not theirs:
        return {}
    best_ours = max(ours, key=lambda m: modes[m]["real_tokens_per_s"])
    best_theirs = max(theirs, key=lambda m: modes[m]["real_tokens_per_s"])
    ratio = summary["ratios"][f"{best_ours}/{best_theirs}"]
    result = {
        "lexiedge": best_ours,
        "hf": best_theirs,
        "speed_ratio": ratio["real_tokens_per_s"],
        "speed_met": ratio["real_tokens_per_s"] >= SPEED_TARGET,
        "rss_ratio": ratio["peak_rss"],
        "rss_met": ratio["peak_rss"] <= 1.0,
    }
    if ratio["val_loss"] is not None:
        result.update(
            val_loss_ratio=ratio["val_loss"],
            val_loss_within_1pct=abs(ratio["val_loss"] - 1) <= LOSS_TOLERANCE,
            val_loss_met=ratio["val_loss"] <= 1 + LOSS_TOLERANCE,
        )
    return result


def markdown(summary: dict[str, Any], c: Comparable) -> str:
    lines = [
        "| runner | real tokens/s | peak RSS MiB | real tokens | steps | val loss | val ppl |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, row in summary["modes"].items():
        val = f"{row['val_loss']:.4f}" if row["val_loss"] is not None else "-"
        ppl = f"{row['val_perplexity']:.2f}" if row["val_perplexity"] is not None else "-"
        lines.append(
            f"| {mode} | {row['real_tokens_per_s']:.1f} | {row['peak_rss_mb']:.0f} | {row['real_tokens']} "
            f"| {row['steps']} | {val} | {ppl} |"
        )
    lines += ["", "| lexiedge / peer | real tokens/s | peak RSS | val loss |", "|---|---:|---:|---:|"]
    for pair, ratio in summary["ratios"].items():
        val = f"{ratio['val_loss']:.4f}" if ratio["val_loss"] is not None else "-"
        lines.append(f"| {pair} | {ratio['real_tokens_per_s']:.2f}x | {ratio['peak_rss']:.2f}x | {val} |")
    return "\n".join(lines) + "\n"


def loss_curves(runs: dict[str, list[dict[str, Any]]]) -> dict[str, list[list[float]]]:
    """Each runner's logged loss per step against the real tokens trained so far (its first run)."""
    curves = {}
    for mode, mode_runs in runs.items():
        run = mode_runs[0]
        seen, curve = 0, []
        for tokens, loss in zip(run["step_tokens"], run["losses"]):
            seen += tokens
            curve.append([seen, round(float(loss), 5)])
        curves[mode] = curve
    return curves


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:4]),
    )
    parser.add_argument("--base", choices=tuple(BASES), default="0.5b")
    parser.add_argument(
        "--modes",
        default=",".join(DEFAULT_MODES),
        help=f"comma-separated, from {', '.join(MODES)} (torchtune's only when named)",
    )
    parser.add_argument(
        "--torchtune-dir",
        type=Path,
        default=TORCHTUNE_DIR,
        help="torchtune 0.6.1 and its torchao, installed apart from the project (see the error for how)",
    )
    parser.add_argument("--steps", type=int, default=8, help="optimizer steps per run (0: whole --epochs)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2, help="untimed first optimizer steps of each run")
    parser.add_argument("--repeats", type=int, default=1, help="runs per runner, alternated")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--rows", type=int, default=2, help="packed rows per optimizer step")
    parser.add_argument(
        "--lr", type=float, help="default: 2e-4 (0.5b, qwen-lora's), 2e-3 (tiny, the cpu profile's)"
    )
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup-ratio", type=float, default=0.05)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--lora-alpha", type=float, default=32)
    parser.add_argument("--lora-targets", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument(
        "--val",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="final validation loss of each run (default: on with --base tiny)",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        help="held-out share of the tutor set; default 0.1 (tiny), 0.02 (0.5b: a short final eval)",
    )
    parser.add_argument(
        "--tiny", action="store_true", help="the tiny base, 4 steps: checks the script end to end"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tiny:
        args.base, args.steps, args.seq_len, args.warmup, args.threads = "tiny", 4, 256, 1, 1
    if args.val is None:
        args.val = args.base == "tiny"
    if args.lr is None:
        args.lr = 2e-3 if args.base == "tiny" else 2e-4
    if args.val_fraction is None:
        args.val_fraction = 0.1 if args.base == "tiny" else 0.02
    if args.steps == 0:
        args.steps = None
    if args.steps is not None and args.steps < args.warmup + 2:
        parser.error(
            f"--steps {args.steps} leaves no timed step after --warmup {args.warmup}: "
            f"give {args.warmup + 2} or more"
        )
    unknown = [mode for mode in args.modes.split(",") if mode not in MODES]
    if unknown:
        parser.error(f"unknown --modes {unknown}; expected some of {', '.join(MODES)}")
    if set(args.modes.split(",")) & set(TORCHTUNE_MODES):
        missing = torchtune_missing(args.torchtune_dir)
        if missing:
            parser.error(missing)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    from lexiedge.latency.machine import RunLoad, busy_warning, sample

    start = sample()
    c, data = comparable_settings(args)
    modes = args.modes.split(",")
    print(
        f"{c.base}, seq_len {c.seq_len}, {c.rows} packed rows = {c.examples_per_step} examples per step, "
        f"{c.total_steps} steps ({c.warmup_steps} warmup), {c.threads} threads; {start.describe()}",
        flush=True,
    )
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory(prefix="bench-train-peers-") as tmp_name:
        tmp = Path(tmp_name)
        for repeat in range(args.repeats):
            for mode in modes if repeat % 2 == 0 else list(reversed(modes)):
                spec = {
                    "mode": mode,
                    "comparable": dataclasses.asdict(c),
                    "run_dir": str(tmp / f"{mode}-{repeat}"),
                    "warmup": args.warmup,
                    "val": args.val,
                    "torchtune_dir": str(args.torchtune_dir),
                }
                result = run_child(spec, tmp / f"{mode}-{repeat}.log")
                runs[mode].append(result)
                val = f", val loss {result['val']['loss']:.4f}" if result.get("val") else ""
                print(
                    f"  {mode:16s} {result['real_tokens_per_s']:8.1f} real tokens/s over "
                    f"{result['timed_steps']} "
                    f"steps, peak RSS {result['peak_rss_mb']:.0f} MiB, {result['wall_s']:.0f} s{val}",
                    flush=True,
                )
        check_comparable(
            [{**run["comparable"], **run["optimizer"]} for mode_runs in runs.values() for run in mode_runs]
        )
    load = RunLoad(start, sample())
    summary = summarise(runs, modes)
    table = markdown(summary, c)
    print("\n" + table)
    met = targets(summary)
    if met:
        print("targets: " + json.dumps(met))
    warning = busy_warning(load)
    if warning:
        print(warning)
    if args.json:
        report = {
            "comparable": dataclasses.asdict(c),
            "data": data,
            "load": load.to_json(),
            **summary,
            "targets": met,
            "loss_curves": loss_curves(runs),
            "markdown": table,
            "runs": {
                mode: [{k: v for k, v in run.items() if k != "step_tokens"} for run in mode_runs]
                for mode, mode_runs in runs.items()
            },
            "command": "python bench/bench_train_peers.py "
            + " ".join(argv if argv is not None else sys.argv[1:]),
        }
        tmp_path = args.json.with_name(f".{args.json.name}.tmp")
        tmp_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp_path, args.json)


if __name__ == "__main__":
    main()
