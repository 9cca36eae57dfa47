"""`lexiedge eval` trusts a run's weights as export does; `lexiedge merge` on a damaged adapter is one line.

Issue 31, item 10: eval scored a run whose weights no longer matched the checksum training recorded
(export refused the same run), and merge printed peft's or safetensors' traceback for an adapter
whose files were damaged. Real runs: the fault suite's trained classifier, and the suite's tiny
qwen-lora run (tests/conftest.py: trained and merged by the commands a user types).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lexiedge.train import checkpoint as ckpt


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damaged", ["checkpoints/best", "final"])
def test_eval_refuses_weights_that_no_longer_match_their_checksum(run_copy, tmp_path, cli, damaged):
    if damaged == "final":  # without a best checkpoint, eval (like export) reads final/
        shutil.rmtree(run_copy / "checkpoints" / "best")
    _flip_a_byte(run_copy / damaged / ckpt.WEIGHTS)
    result = cli("eval", str(run_copy), "--out", str(tmp_path / "eval"))
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: {run_copy / damaged} is damaged (model.safetensors: sha256 mismatch")
    assert "refusing to evaluate it" in result.stderr
    assert not (tmp_path / "eval" / "eval.json").exists()


@pytest.fixture
def lora_run(small_lm_artifact, small_artifacts_root: Path, tmp_path: Path) -> Path:
    """A copy of the suite's tiny qwen-lora run without its merged model (what `lexiedge merge` writes)."""
    copy = tmp_path / "run-lm"
    shutil.copytree(small_artifacts_root / "run-lm", copy, ignore=shutil.ignore_patterns("merged", "run.lock"))
    return copy


@pytest.mark.parametrize(("name", "damage", "words"), [
    ("adapter_config.json", lambda p: p.write_text("{not json"), "JSONDecodeError: Expecting property name"),
    ("adapter_model.safetensors", lambda p: p.write_bytes(p.read_bytes()[:40]), "SafetensorError: Error while"),
])
def test_merge_of_a_damaged_adapter_is_one_line(lora_run, cli, name, damage, words):
    adapter = lora_run / "final" / "adapter"
    damage(adapter / name)
    result = cli("merge", str(lora_run))
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: {adapter}: cannot be read as this run's adapter ({words}")
    assert not (lora_run / "merged").exists()


def test_merge_refuses_best_weights_that_no_longer_match_their_checksum(lora_run, cli):
    best = lora_run / "checkpoints" / "best"
    assert (best / ckpt.CHECKSUMS).is_file(), "merge reads the best adapter weights when the run kept them"
    _flip_a_byte(best / ckpt.WEIGHTS)
    result = cli("merge", str(lora_run))
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: {best} is damaged (model.safetensors: sha256 mismatch")
    assert "refusing to merge it" in result.stderr
