"""Inputs are bounded: a classifier takes at most MAX_INPUT_FACTOR training clips of audio or frames, and a
JSONL line over the configured size is a bad line reported by number, never read whole."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest

from lexiedge.runtime import InputShapeError, load
from lexiedge.runtime.inputs import MAX_INPUT_FACTOR


def test_the_exported_manifest_carries_the_maximum_input_length(artifact):
    preprocessing = json.loads((artifact / "manifest.json").read_text())["preprocessing"]
    clip_seconds, frames = preprocessing["data_settings"]["clip_seconds"], preprocessing["data_settings"]["frames"]
    assert preprocessing["max_input_seconds"] == clip_seconds * MAX_INPUT_FACTOR == 5.0
    assert preprocessing["max_frames"] == frames * MAX_INPUT_FACTOR == 20


def test_audio_longer_than_the_limit_is_refused_in_one_line_and_the_model_goes_on(artifact):
    model = load(artifact, "cpu")
    ten_minutes = np.zeros(600 * 1000, np.float32)
    with pytest.raises(InputShapeError) as caught:
        model.predict(waveform=ten_minutes, sample_rate=1000)
    assert str(caught.value) == (
        "waveform clips are 600.0 s long; this model takes at most 5 s (preprocessing.max_input_seconds, 10x its "
        "training clips): split long audio into windows and classify each")
    at_limit = model.predict(waveform=np.zeros(5 * 1000, np.float32), sample_rate=1000)
    assert at_limit.label in model.labels
    with pytest.raises(InputShapeError, match="5.0 s long"):  # the limit is in seconds, whatever the rate
        model.predict(waveform=np.zeros(5 * 48000 + 48, np.float32), sample_rate=48000)


def test_more_frames_than_the_limit_are_refused(artifact):
    model = load(artifact, "cpu")
    with pytest.raises(InputShapeError, match=r"frames hold 21 frames; this model takes at most 20"):
        model.predict(frames=np.zeros((21, 3, 8, 8), np.uint8))
    assert model.predict(frames=np.zeros((20, 3, 8, 8), np.uint8)).label in model.labels


def test_an_artifact_exported_before_the_limit_gets_it_from_its_clip_length(artifact_copy):
    manifest = json.loads((artifact_copy / "manifest.json").read_text())
    del manifest["preprocessing"]["max_input_seconds"], manifest["preprocessing"]["max_frames"]
    (artifact_copy / "manifest.json").write_text(json.dumps(manifest))
    model = load(artifact_copy, "cpu")
    assert (model.spec.max_input_seconds, model.spec.max_frames) == (5.0, 20)


# --- JSONL lines ------------------------------------------------------------------------------------


CHAT = {"messages": [{"role": "user", "content": "Correct: he go."}, {"role": "assistant", "content": "He goes."}]}


def test_an_oversize_jsonl_line_is_a_bad_line_by_number_and_is_never_held_whole(tmp_path):
    from lexiedge_chat_jsonl.examples import describe_bad_lines, load_examples

    blob = {"messages": [{"role": "user", "content": "x" * 5_000_000}, {"role": "assistant", "content": "y"}]}
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (CHAT, blob, CHAT)) + "\n", encoding="utf-8")
    tracemalloc.start()
    try:
        examples, bad = load_examples(path, max_line_bytes=64 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [e.line for e in examples] == [1, 3]
    size = len(json.dumps(blob)) + 1  # with its newline
    assert [(b.line, b.reason) for b in bad] == [
        (2, f"line of {size:,} bytes is over the 65,536-byte limit (data.max_line_bytes); not read")]
    assert peak < 1_000_000, f"the 5 MB line was held in memory ({peak:,} bytes at the peak)"
    assert describe_bad_lines(bad)[1] == f"  {path}:2: {bad[0].reason}"
    examples, bad = load_examples(path)  # the default limit (1 MiB) also refuses it
    assert [b.line for b in bad] == [2]


def test_the_line_limit_is_a_profile_setting(tmp_path):
    from lexiedge.errors import ProfileError
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile

    profile = load_profile("cpu", ["models.qwen-lora.data.max_line_bytes=2000000"], host=get_host())
    assert profile.model("qwen-lora").data.settings.max_line_bytes == 2_000_000
    with pytest.raises(ProfileError, match="max_line_bytes"):
        load_profile("cpu", ["models.qwen-lora.data.max_line_bytes=10"], host=get_host())


def test_lines_are_numbered_by_newlines_and_a_bad_encoding_is_one_bad_line(tmp_path):
    """A raw U+2028 inside a JSON string is legal JSON; splitlines() used to cut the line there."""
    from lexiedge_chat_jsonl.examples import load_examples

    separator = {"messages": [{"role": "user", "content": "one\u2028two"}, {"role": "assistant", "content": "ok"}]}
    path = tmp_path / "data.jsonl"
    with open(path, "wb") as handle:
        handle.write("\ufeff".encode() + json.dumps(CHAT).encode() + b"\r\n")  # a BOM and CRLF from an editor
        handle.write(json.dumps(separator, ensure_ascii=False).encode() + b"\n")
        handle.write(b'{"messages": "caf\xe9"}\n')  # Latin-1
        handle.write(json.dumps(CHAT).encode())  # no final newline
    examples, bad = load_examples(path)
    assert [e.line for e in examples] == [1, 2, 4]
    assert examples[1].messages[0].content == "one\u2028two"
    assert [(b.line, b.reason) for b in bad] == [(3, "not UTF-8 text (byte 18 of the line); expected UTF-8 JSON")]
