"""LoRA training through the shared engine on the bundled tutor set: loss falls, merge, kill + resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

pytest.importorskip("lexiedge_chat_jsonl", reason="the chat-jsonl dataset plugin provides the training data")

MAX_STEPS = 10
KILL_BEFORE_CHECKPOINT = 8  # the run dies while writing step 8's checkpoint: step 4's is the newest complete one


def write_profile(path: Path, base: Path) -> Path:
    profile = {
        "name": "qwen-lora-test",
        "device": {"kind": "cpu", "memory_gb": 4, "precision": "fp32"},
        "models": {
            "tutor": {
                "model": {"plugin": "qwen-lora", "base": str(base), "seq_len": 256,
                          "lora": {"r": 8, "alpha": 16, "dropout": 0.1}},
                "data": {"plugin": "chat-jsonl", "packing": True, "max_examples": 120, "val_fraction": 0.2},
                "train": {"plugin": "causal-lm-lora", "batch_size": 4, "max_steps": MAX_STEPS, "lr": 2e-2,
                          "warmup_ratio": 0.0, "checkpoint_every": 4, "eval_every": 5, "keep_last": 2},
            }
        },
    }
    path.write_text(yaml.safe_dump(profile))
    return path


@pytest.fixture(scope="module")
def trained(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(profile, run directory) of one uninterrupted run."""
    from lexiedge.cli import main

    root = tmp_path_factory.mktemp("qwen-train")
    profile = write_profile(root / "profile.yaml", tiny_dir)
    run_dir = root / "run"
    assert main(["train", "--profile", str(profile), "--out", str(run_dir)]) == 0
    return profile, run_dir


def baseline_val_loss(profile: Path) -> float:
    """The validation loss before any step (LoRA's B starts at zero: the base alone)."""
    from rich.console import Console

    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile
    from lexiedge_causal_lm.trainer import CausalLMTrainer
    from lexiedge.train.batching import eval_loader

    loaded = load_profile(profile, host=get_host())
    entry = loaded.model("tutor")
    host = get_host()
    built = host.models.get(entry.model.plugin).build(entry.model.settings, loaded.device)
    splits = host.datasets.get(entry.data.plugin).load(
        entry.data.settings, None, built=built, model_settings=entry.model.settings, cache_dir=Path("."),
        console=Console(quiet=True),
    )
    built.module.eval()
    with torch.no_grad():
        return CausalLMTrainer().evaluate(built, eval_loader(splits.val, 4, splits.collate, 0, False), "val")["loss"]


def test_validation_loss_falls_and_checkpoints_hold_the_adapter_only(trained: tuple[Path, Path]) -> None:
    profile, run_dir = trained
    history = json.loads((run_dir / "history.json").read_text())
    assert [row["step"] for row in history] == [5, 10]
    before = baseline_val_loss(profile)
    after = history[-1]["val/loss"]
    print("VAL", before, [row["val/loss"] for row in history])
    assert after < before - 0.1, (before, [row["val/loss"] for row in history])
    assert history[-1]["val/perplexity"] == pytest.approx(torch.tensor(after).exp().item(), rel=1e-6)
    assert history[-1]["val/tokens"] > 0 and history[-1]["train/tokens_per_s"] > 0

    checkpoint = load_file(run_dir / "checkpoints" / "step-00000008" / "model.safetensors")
    assert checkpoint and all("lora_A" in key or "lora_B" in key for key in checkpoint)
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "completed" and run["best"]["metric"] == "val/loss"

    adapter = run_dir / "final" / "adapter"
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= {p.name for p in adapter.iterdir()}
    # The peft adapter holds the final weights: the same tensors as the engine's final checkpoint.
    final = load_file(run_dir / "final" / "model.safetensors")
    saved = load_file(adapter / "adapter_model.safetensors")
    assert saved.keys() == final.keys() and all(torch.equal(saved[k], final[k]) for k in final)

    # the learning curves, as the classifier draws them: a real PNG with both axes' lines
    from PIL import Image

    with Image.open(run_dir / "curves.png") as curves:
        assert curves.format == "PNG" and curves.size[0] > curves.size[1] > 200
    assert run["status"] == "completed"


def test_merged_directory_loads_and_generates_like_the_adapter_model(trained: tuple[Path, Path]) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lexiedge.cli import main
    from lexiedge_qwen_lora.merge import CHECK_PROMPTS, check_inputs, load_adapter_model

    _, run_dir = trained
    out = run_dir.parent / "merged"
    assert main(["merge", str(run_dir), "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "merge.json"} <= names
    assert not any(name.startswith("adapter_") for name in names)
    report = json.loads((out / "merge.json").read_text())
    assert report["adapter"] == "best" and report["max_abs_logit_diff"] <= report["tolerance"] < 1e-2

    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    assert not any("lora" in name for name, _ in merged.named_parameters())
    adapted, tokenizer, _ = load_adapter_model(run_dir)
    assert AutoTokenizer.from_pretrained(out).get_vocab() == tokenizer.get_vocab()
    generated = 0
    for ids in check_inputs(tokenizer, CHECK_PROMPTS):
        with torch.no_grad():
            want = adapted.generate(input_ids=ids, max_new_tokens=24, do_sample=False)
            got = merged.generate(input_ids=ids, max_new_tokens=24, do_sample=False)
        assert torch.equal(got, want)
        generated += want.shape[1] - ids.shape[1]
    assert generated > 0
    # The adapter changed the model: merging a zero adapter would also pass the checks above.
    base = adapted.get_base_model()
    with adapted.disable_adapter(), torch.no_grad():
        ids = check_inputs(tokenizer)[0]
        assert (base(input_ids=ids).logits - merged(input_ids=ids).logits).abs().max() > 1e-3

    with pytest.raises(Exception, match="not empty"):
        from lexiedge_qwen_lora.merge import merge_adapter
        from rich.console import Console

        merge_adapter(run_dir, out, Console(quiet=True))


KILLER = """
import os, signal, sys
import lexiedge.train.checkpoint as checkpoint

write = checkpoint.save_checkpoint

def save_or_die(root, step, *args, **kwargs):
    if step == {kill_at}:
        os.kill(os.getpid(), signal.SIGKILL)
    return write(root, step, *args, **kwargs)

checkpoint.save_checkpoint = save_or_die
from lexiedge.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigkill_then_resume_ends_with_the_uninterrupted_adapter(trained: tuple[Path, Path], tmp_path: Path) -> None:
    profile, reference_run = trained
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    killed = subprocess.run(
        [sys.executable, "-c", KILLER.format(kill_at=KILL_BEFORE_CHECKPOINT), "train", "--profile", str(profile),
         "--out", str(run_dir)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    steps = sorted(p.name for p in (run_dir / "checkpoints").glob("step-*"))
    assert steps == ["step-00000004"] and not (run_dir / "final").exists()

    from lexiedge.cli import main

    assert main(["train", "--profile", str(profile), "--out", str(run_dir), "--resume"]) == 0
    resumed = load_file(run_dir / "final" / "model.safetensors")
    reference = load_file(reference_run / "final" / "model.safetensors")
    assert resumed.keys() == reference.keys()
    for key in reference:
        torch.testing.assert_close(resumed[key], reference[key], rtol=0, atol=1e-6, msg=key)
    # The same evaluations at the same steps (timings aside).
    def losses(run: Path) -> list[tuple]:
        rows = json.loads((run / "history.json").read_text())
        return [(row["step"], row["train/loss"], row["val/loss"]) for row in rows]

    assert losses(run_dir) == losses(reference_run)


def test_padded_batches_train_every_example_each_epoch_the_ragged_last_one_included(
    tiny_dir: Path, tmp_path: Path
) -> None:
    """A causal LM has no batch statistics, so the engine keeps an epoch's ragged last micro-batch: with
    packing off, ceil(N / batch) steps an epoch and N examples, where a classifier drops the rest."""
    import math

    from rich.console import Console

    from lexiedge.cli import main
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile

    profile = write_profile(tmp_path / "profile.yaml", tiny_dir)
    settings = yaml.safe_load(profile.read_text())
    tutor = settings["models"]["tutor"]
    tutor["data"].update(packing=False, max_examples=23)
    tutor["train"].update(batch_size=4, max_steps=None, epochs=2, checkpoint_every=None, eval_every=None)
    profile.write_text(yaml.safe_dump(settings))
    host = get_host()
    entry = load_profile(profile, host=host).model("tutor")
    built = host.models.get(entry.model.plugin).build(entry.model.settings, load_profile(profile, host=host).device)
    splits = host.datasets.get(entry.data.plugin).load(
        entry.data.settings, None, built=built, model_settings=entry.model.settings, cache_dir=tmp_path,
        console=Console(quiet=True),
    )
    examples = len(splits.train)
    assert examples % 4, f"{examples} training examples: the test needs a ragged last batch"

    run_dir = tmp_path / "run"
    assert main(["train", "--profile", str(profile), "--out", str(run_dir)]) == 0
    info = json.loads((run_dir / "run.json").read_text())
    assert info["total_steps"] == info["step"] == 2 * math.ceil(examples / 4)
    history = json.loads((run_dir / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1.0, 2.0]  # each epoch ended after its ragged batch


def with_train_settings(profile: Path, out: Path, **train) -> Path:
    """A copy of ``profile`` at ``out`` with ``train`` merged into the tutor's train section."""
    settings = yaml.safe_load(profile.read_text())
    settings["models"]["tutor"]["train"].update(train)
    out.write_text(yaml.safe_dump(settings))
    return out


def test_compiled_training_saves_the_same_adapter_names_and_learns_like_eager(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``train.compile`` compiles the decoder in place: checkpoints, the final weights and the peft adapter
    carry eager's names (no ``_orig_mod.``), and the validation loss follows eager's (the dropout masks
    differ: inductor draws its own random numbers)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from lexiedge.cli import main

    profile, reference_run = trained
    compiled_profile = with_train_settings(profile, tmp_path / "compiled.yaml", compile=True, max_steps=5)
    run_dir = tmp_path / "run"
    assert main(["train", "--profile", str(compiled_profile), "--out", str(run_dir)]) == 0
    assert "train.compile: Qwen2Model compiled" in capsys.readouterr().out

    final = load_file(run_dir / "final" / "model.safetensors")
    assert final.keys() == load_file(reference_run / "final" / "model.safetensors").keys()
    assert final.keys() == load_file(run_dir / "checkpoints" / "step-00000004" / "model.safetensors").keys()
    step5 = {row["step"]: row["val/loss"] for row in json.loads((run_dir / "history.json").read_text())}[5]
    eager5 = {row["step"]: row["val/loss"] for row in json.loads((reference_run / "history.json").read_text())}[5]
    assert step5 == pytest.approx(eager5, rel=2e-3)
    assert step5 < baseline_val_loss(profile)

    base = AutoModelForCausalLM.from_pretrained(yaml.safe_load(profile.read_text())["models"]["tutor"]["model"]["base"])
    adapted = PeftModel.from_pretrained(base, run_dir / "final" / "adapter")  # peft's loader accepts the names
    assert any("lora_B" in name and param.abs().sum() > 0 for name, param in adapted.named_parameters())


def test_compile_without_a_cpp_compiler_is_one_line_before_training(
    trained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lexiedge.cli import main

    profile, _ = trained
    compiled_profile = with_train_settings(profile, tmp_path / "compiled.yaml", compile=True)
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    assert main(["train", "--profile", str(compiled_profile), "--out", str(tmp_path / "run")]) != 0
    captured = capsys.readouterr()
    assert "train.compile on the CPU needs a C++ compiler" in captured.err
    assert "Traceback" not in captured.out + captured.err
    assert not (tmp_path / "run" / "checkpoints").exists() or not any((tmp_path / "run" / "checkpoints").iterdir())
