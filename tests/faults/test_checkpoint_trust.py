"""Checkpoints are verified against the sha256 recorded when they were written; a bad one is never trusted.

The run here was killed right after its step-9 checkpoint (a real process, see ``interrupted_run``).
Each test damages that run's newest checkpoint the way a disk or a copy would, resumes it, and checks
that lexiedge named the damage in one line and went on from the newest intact checkpoint, to the very
weights of the run that was never interrupted.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lexiedge.train import checkpoint as ckpt


def _final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "final" / "model.safetensors"))


def _assert_same_weights(run: Path, reference: Path) -> None:
    ours, theirs = _final_weights(run), _final_weights(reference)
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours), \
        "the resumed run must end with the uninterrupted run's weights"


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _resume(cli, profile_path: Path, run: Path):
    return cli("train", "--profile", str(profile_path), "--out", str(run), "--resume")


def _step(run: Path, step: int) -> Path:
    return run / "checkpoints" / ckpt.step_dir_name(step)


def test_checkpoint_files_are_recorded_with_their_sha256(interrupted_run):
    for step in (3, 6, 9):
        recorded = json.loads((_step(interrupted_run, step) / ckpt.CHECKSUMS).read_text())
        assert sorted(recorded) == [ckpt.META, ckpt.WEIGHTS, ckpt.TRAINER_STATE]
        assert ckpt.checkpoint_problems(_step(interrupted_run, step)) == []
    assert sorted(json.loads((interrupted_run / "checkpoints" / "best" / ckpt.CHECKSUMS).read_text())) == [
        ckpt.META, ckpt.WEIGHTS]


def test_a_flipped_byte_in_the_newest_weights_falls_back_to_the_previous_checkpoint(
        interrupted_copy, trained_run, profile_path, cli):
    _flip_a_byte(_step(interrupted_copy, 9) / ckpt.WEIGHTS)
    result = _resume(cli, profile_path, interrupted_copy)
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: skipping the damaged checkpoint {_step(interrupted_copy, 9)}: model.safetensors: "
                        "sha256 mismatch (the file changed since it was written)"]
    assert "resumed from step-00000006" in result.stdout
    _assert_same_weights(interrupted_copy, trained_run)
    assert ckpt.checkpoint_problems(_step(interrupted_copy, 9)) == [], "step 9 was written again, intact"


def test_a_truncated_trainer_state_falls_back_instead_of_a_traceback(interrupted_copy, trained_run, profile_path, cli):
    state = _step(interrupted_copy, 9) / ckpt.TRAINER_STATE
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    result = _resume(cli, profile_path, interrupted_copy)
    assert result.exit_code == 0, result.stderr
    assert "trainer_state.pt: sha256 mismatch" in result.stdout and "resumed from step-00000006" in result.stdout
    _assert_same_weights(interrupted_copy, trained_run)


def test_a_truncated_trainer_state_is_one_line_even_when_its_checksum_was_rewritten(interrupted_copy):
    checkpoint = _step(interrupted_copy, 9)
    state = checkpoint / ckpt.TRAINER_STATE
    state.write_bytes(state.read_bytes()[:1000])
    ckpt.write_checksums(checkpoint, [ckpt.WEIGHTS, ckpt.TRAINER_STATE, ckpt.META])
    with pytest.raises(ckpt.CheckpointError) as caught:
        ckpt.load_trainer_state(checkpoint)
    assert str(caught.value).startswith(f"{state}: unreadable (") and "\n" not in str(caught.value)
    found, _ = ckpt.latest_intact_checkpoint(interrupted_copy / "checkpoints", warn=lambda line: None)
    assert found == _step(interrupted_copy, 6)


class _Payload:
    """What an attacker would plant: unpickling it would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _plant_pickle(checkpoint: Path, marker: Path) -> None:
    torch.save({"step": 9, "payload": _Payload(marker)}, checkpoint / ckpt.TRAINER_STATE)


def test_a_planted_pickle_is_refused_in_one_line_and_never_runs(interrupted_copy, profile_path, cli, tmp_path):
    checkpoint, marker = _step(interrupted_copy, 9), tmp_path / "pwned"
    _plant_pickle(checkpoint, marker)
    ckpt.write_checksums(checkpoint, [ckpt.WEIGHTS, ckpt.TRAINER_STATE, ckpt.META])  # made to look intact
    run_json = (interrupted_copy / "run.json").read_bytes()
    result = _resume(cli, profile_path, interrupted_copy)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {checkpoint / ckpt.TRAINER_STATE} is not a lexiedge checkpoint: it holds Python objects other "
        "than tensors and plain data, which lexiedge never writes and never loads; refusing it"]
    assert "weights_only" not in result.stderr + result.stdout and not marker.exists()
    assert (interrupted_copy / "run.json").read_bytes() == run_json, "refused before anything was written"


def test_a_planted_pickle_without_a_matching_checksum_is_skipped_as_damaged(interrupted_copy, trained_run,
                                                                           profile_path, cli, tmp_path):
    marker = tmp_path / "pwned"
    _plant_pickle(_step(interrupted_copy, 9), marker)
    result = _resume(cli, profile_path, interrupted_copy)
    assert result.exit_code == 0, result.stderr
    assert "step-00000009: trainer_state.pt: sha256 mismatch" in result.stdout and not marker.exists()
    _assert_same_weights(interrupted_copy, trained_run)


def test_load_trainer_state_refuses_any_pickle_with_one_line(tmp_path):
    marker = tmp_path / "pwned"
    _plant_pickle(tmp_path, marker)
    with pytest.raises(ckpt.CheckpointError, match="is not a lexiedge checkpoint") as caught:
        ckpt.load_trainer_state(tmp_path)
    assert not isinstance(caught.value.__cause__, pickle.UnpicklingError) and not marker.exists()


def test_when_no_checkpoint_is_intact_the_run_starts_over_and_says_why(interrupted_copy, trained_run, profile_path,
                                                                       cli):
    for step in (3, 6, 9):
        _flip_a_byte(_step(interrupted_copy, step) / ckpt.WEIGHTS)
    (_step(interrupted_copy, 3) / ckpt.CHECKSUMS).unlink()  # and one written before checksums existed
    result = _resume(cli, profile_path, interrupted_copy)
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning:")]
    assert [w.split(": ", 2)[1].rsplit("/", 1)[-1] for w in warnings[:3]] == [
        "step-00000009", "step-00000006", "step-00000003"]
    assert "no checksums.json" in warnings[2]
    assert warnings[3] == f"warning: no intact checkpoint in {interrupted_copy / 'checkpoints'}; starting from step 0"
    _assert_same_weights(interrupted_copy, trained_run)


def test_export_refuses_damaged_best_weights(run_copy, tmp_path, cli):
    _flip_a_byte(run_copy / "checkpoints" / "best" / ckpt.WEIGHTS)
    result = cli("export", "--run", str(run_copy), "--target", "onnx", "--out", str(tmp_path / "artifact"))
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert f"{run_copy / 'checkpoints' / 'best'} is damaged (model.safetensors: sha256 mismatch" in result.stderr
    assert not (tmp_path / "artifact").exists()


def test_final_weights_carry_a_checksum(trained_run):
    assert ckpt.checkpoint_problems(trained_run / "final") == []
