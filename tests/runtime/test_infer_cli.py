"""`lexiedge infer`: files decoded as the artifact's manifest records (the decoder training used), and
--prompt streamed to stdout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lexiedge.runtime import load

RAVDESS_MP4 = Path("ravdess-av/Actor_01/01-01-01-01-01-01-01.mp4")
RAVDESS_WAV = Path("ravdess-speech/Actor_03/03-01-03-01-01-01-03.wav")  # 22.05 kHz: resampled on decode


def test_infer_classifies_video_and_audio_files_in_a_table(cli, av_artifacts, test_clips):
    clips = test_clips[:3]
    result = cli("infer", str(av_artifacts["onnx"]), *(str(c.path) for c in clips), "--top", "2")
    assert result.exit_code == 0, result.stderr
    model = load(av_artifacts["onnx"], "cpu")
    rows = [line for line in result.stdout.splitlines() if any(c.path.name in line for c in clips)]
    assert len(rows) == len(clips)
    for clip, row in zip(clips, rows):
        expected = model.predict(**clip.arrays)
        cells = [cell.strip() for cell in row.split("│")[1:-1]]  # file, label, expected, top probabilities
        assert cells[:3] == [clip.path.name, expected.label, clip.label], "the file name's emotion is shown too"
        (first, p), (second, _) = expected.top(2)
        assert f"{first} {p:.2f}" in row and second in row


@pytest.mark.shared_data
def test_infer_reads_real_ravdess_files_and_goes_on_past_unreadable_ones(cli, av_artifacts, shared_data, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is no video")
    missing = tmp_path / "missing.wav"
    result = cli("infer", str(av_artifacts["onnx"]), str(shared_data / RAVDESS_MP4), str(broken), str(missing),
                 str(shared_data / RAVDESS_WAV))
    assert result.exit_code != 0
    assert RAVDESS_MP4.name in result.stdout and RAVDESS_WAV.name in result.stdout, "the good files are still classified"
    errors = result.stderr.splitlines()
    assert any(str(broken) in line and "cannot decode" in line for line in errors)
    assert any(str(missing) in line and "no such file" in line for line in errors)
    assert any("2 of 4 files could not be classified" in line for line in errors)


def test_infer_refuses_a_tampered_artifact_in_one_line(cli, av_artifacts, test_clips, tmp_path):
    copy = tmp_path / "tampered"
    shutil.copytree(av_artifacts["onnx"], copy)
    data = bytearray((copy / "model.onnx").read_bytes())
    data[-10] ^= 0xFF
    (copy / "model.onnx").write_bytes(bytes(data))
    result = cli("infer", str(copy), str(test_clips[0].path))
    assert result.exit_code == 2
    assert "model.onnx: sha256 mismatch" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_infer_prompt_streams_the_greedy_answer(cli, lm_artifacts):
    prompt = "Correct: She go to school."
    result = cli("infer", str(lm_artifacts["onnx"]), "--prompt", prompt, "--max-new-tokens", "16")
    assert result.exit_code == 0, result.stderr
    expected = load(lm_artifacts["onnx"], "cpu").generate([{"role": "user", "content": prompt}], max_new_tokens=16)
    assert result.stdout == expected.text + "\n"  # the reply alone: the caveat goes to stderr
    assert "test-sized model" in result.stderr and "not what the tutor says" in result.stderr


def test_infer_says_which_input_an_artifact_takes(cli, av_artifacts, lm_artifacts, test_clips):
    wrong = cli("infer", str(av_artifacts["onnx"]), "--prompt", "hello")
    assert wrong.exit_code == 2 and "pass the FILEs to classify" in wrong.stderr
    wrong = cli("infer", str(lm_artifacts["onnx"]), str(test_clips[0].path))
    assert wrong.exit_code == 2 and "pass --prompt TEXT" in wrong.stderr
    wrong = cli("infer", str(av_artifacts["onnx"]), str(test_clips[0].path), "--device", "npu")
    assert wrong.exit_code == 3 and "unknown device 'npu'" in wrong.stderr
