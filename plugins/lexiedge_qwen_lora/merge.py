"""`lexiedge merge RUN`: fold a run's LoRA adapter into its base, verified, as one model directory.

The merged directory is self-contained (config.json, safetensors weights, tokenizer files,
generation_config.json) and loads with `AutoModelForCausalLM.from_pretrained`. Before it is
renamed into place, its logits on a few tutor prompts are compared with the unmerged adapter
model's; the largest difference is recorded in ``merge.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lexiedge.errors import LexiedgeError, UsageError
from lexiedge_qwen_lora.base import load_recorded_base, read_base_record

if TYPE_CHECKING:
    import torch
    from rich.console import Console

MERGE_REPORT = "merge.json"
CHECK_PROMPTS = (
    "Please correct this sentence: She go to school yesterday.",
    "What is the difference between 'affect' and 'effect'?",
    "Can you explain when to use the present perfect?",
)


def find_adapter(run_dir: Path) -> tuple[str, Path, Path | None]:
    """(label, peft adapter directory, best weights or None): the best checkpoint's weights when the run kept one."""
    from lexiedge.rundir import ADAPTER_CONFIG, WEIGHTS, best_checkpoint, final_adapter

    adapter_dir = final_adapter(run_dir)  # written by the causal-lm-lora trainer at the end of a run
    if not (adapter_dir / ADAPTER_CONFIG).is_file():
        raise UsageError(
            f"{run_dir} has no {adapter_dir.relative_to(run_dir)}; finish the training (or --resume it) before merging"
        )
    best = best_checkpoint(run_dir) / WEIGHTS
    return ("best", adapter_dir, best) if best.is_file() else ("final", adapter_dir, None)


def load_adapter_model(run_dir: Path):
    """(peft model in eval mode, tokenizer, label): the run's base (in its stored dtype) with its best
    (else final) adapter."""
    from peft import PeftModel, set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    label, adapter_dir, best = find_adapter(run_dir)
    base = load_recorded_base(run_dir)
    with _unreadable_as_one_line(adapter_dir):
        model = PeftModel.from_pretrained(base, adapter_dir)
        tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
    if best is not None:
        with _unreadable_as_one_line(best):
            result = set_peft_model_state_dict(model, load_file(best))
        if getattr(result, "unexpected_keys", None):
            raise LexiedgeError(f"{best} does not match the adapter in {adapter_dir}: {result.unexpected_keys[:3]}")
    return model.eval(), tokenizer, label


@contextmanager
def _unreadable_as_one_line(path: Path) -> Iterator[None]:
    """A damaged adapter file (bad JSON, a cut or garbled safetensors file, tensors of other shapes) is
    one line naming ``path``, not peft's or safetensors' traceback."""
    from safetensors import SafetensorError

    try:
        yield
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise UsageError(f"{path}: cannot be read as this run's adapter ({type(exc).__name__}: {first}); "
                         "restore it from a copy or train the run again") from None


def check_inputs(tokenizer, prompts: tuple[str, ...] = CHECK_PROMPTS) -> list[torch.Tensor]:
    """Token ids of the check prompts as the tutor app sends them (chat template, generation prompt)."""
    texts = [
        tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
        for p in prompts
    ]
    return [tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids for text in texts]


def _logits(model: torch.nn.Module, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    import torch

    with torch.no_grad():
        return [model(input_ids=ids, use_cache=False).logits.float() for ids in inputs]


def merge_adapter(run_dir: Path, out_dir: Path, console: Console) -> dict[str, Any]:
    """Merge ``run_dir``'s adapter into its recorded base and write the result to ``out_dir``.

    The merge itself runs in fp32 and must match the adapter model to float rounding; the saved
    copy keeps the base's own precision (Qwen ships bf16: merging must not double the size), and
    its difference from the adapter model is what ``merge.json`` records.
    """
    from transformers import AutoModelForCausalLM

    if out_dir.exists() and any(out_dir.iterdir()):
        raise UsageError(f"{out_dir} exists and is not empty; remove it or choose another --out")
    record = read_base_record(run_dir)
    adapted, tokenizer, label = load_adapter_model(run_dir)
    stored_dtype = adapted.get_base_model().get_input_embeddings().weight.dtype
    adapted = adapted.float()
    console.print(f"merge: the {label} adapter of {run_dir} into {record['base']}")
    inputs = check_inputs(tokenizer)
    reference = _logits(adapted, inputs)
    merged = adapted.merge_and_unload()
    merged.config.use_cache = True  # training switched it off; inference wants the KV cache
    scale = max(1.0, max(r.abs().max().item() for r in reference))
    merge_diff = _max_diff(_logits(merged, inputs), reference)
    tolerance = 1e-4 * scale
    if merge_diff > tolerance:
        raise LexiedgeError(
            f"the merged model's logits differ from the adapter model's by {merge_diff:.3g} "
            f"(tolerance {tolerance:.3g}); nothing was written to {out_dir}"
        )
    merged = merged.to(stored_dtype)
    expected = _logits(merged, inputs)

    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        reloaded = AutoModelForCausalLM.from_pretrained(tmp, dtype="auto").eval()
        if _max_diff(_logits(reloaded, inputs), expected) > 1e-6 * scale:
            raise LexiedgeError(f"the merged model saved to {tmp} does not load back to the same weights")
        report = {
            "run": str(run_dir),
            "base": record["base"],
            "adapter": label,
            "out_dir": str(out_dir),
            "dtype": str(stored_dtype).removeprefix("torch."),
            "parameters": sum(p.numel() for p in reloaded.parameters()),
            "check_prompts": len(inputs),
            "merge_max_abs_logit_diff": merge_diff,  # fp32 merge vs adapter: the merge itself
            "max_abs_logit_diff": _max_diff(expected, reference),  # the saved model vs adapter
            "tolerance": tolerance,
        }
        (tmp / MERGE_REPORT).write_text(json.dumps(report, indent=2) + "\n")
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked above); os.replace cannot replace a directory
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    console.print(f"merged -> {out_dir} (max |logit diff| {report['max_abs_logit_diff']:.2e}, {report['dtype']})")
    return report


def _max_diff(got: list[torch.Tensor], expected: list[torch.Tensor]) -> float:
    return max((a.float() - b).abs().max().item() for a, b in zip(got, expected))
