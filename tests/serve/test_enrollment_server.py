"""Speaker enrollment over HTTP: `POST /v1/emotion/calibrate`, `/v1/emotion` with `speaker`, and deleting one.

A real `lexiedge serve` process serves the suite's speaker-normalised model (tests/conftest.py:
``enrollment_run``) as ``emotion`` and the small emotion artifact, which takes no profile, as ``plain``,
with an API key, one allowed origin, a 4 MiB body limit and room for two profiles. Plain HTTP
(http.client) sends what a browser or `curl -F` would; the answers must be the Python runtime's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from serve_helpers import (
    ALLOWED_ORIGIN,
    API_KEY,
    Reply,
    Server,
    multipart,
    post_json,
    request,
    start_server,
    stop,
    wait_until_up,
)

from lexiedge_runtime import load

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def uploads_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-tmp")  # the server's TMPDIR: where uploads live while decoded


@pytest.fixture(scope="module")
def enroll_server(
    enrollment_run, small_av_artifact: Path, uploads_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("serve-enroll") / "server.log"
    process, port = start_server(
        [
            f"emotion={enrollment_run.onnx}",
            f"plain={small_av_artifact}",
            "--api-key",
            API_KEY,
            "--max-body-mb",
            "4",
            "--max-speakers",
            "2",
            "--allow-origin",
            ALLOWED_ORIGIN,
            "--threads",
            "1",
            "--log-level",
            "warning",
        ],
        log,
        env={"TMPDIR": str(uploads_dir)},
    )
    running = Server("127.0.0.1", port, API_KEY, process, log)
    try:
        wait_until_up(running)
        yield running
    finally:
        stop(process)


@pytest.fixture(scope="module")
def local(enrollment_run):
    """The same artifact in this process: what the server's answers must equal."""
    return load(enrollment_run.onnx, "cpu", threads=1)


def _speaker_files(data: Path, actor: int) -> list[Path]:
    """The actor's neutral and calm clips (emotions 01 and 02 in RAVDESS names)."""
    return sorted(
        path for path in data.glob(f"Actor_{actor:02d}/*.mp4") if path.name.split("-")[2] in ("01", "02")
    )


def calibrate(server: Server, files: list[Path], **fields: str) -> Reply:
    body, content_type = multipart(fields, [("file", path.name, path.read_bytes()) for path in files])
    return request(server, "POST", "/v1/emotion/calibrate", body, headers={"Content-Type": content_type})


def classify(server: Server, path: Path, **fields: str) -> Reply:
    body, content_type = multipart(fields, {"file": (path.name, path.read_bytes())})
    return request(server, "POST", "/v1/emotion", body, headers={"Content-Type": content_type})


def _close(answer: dict, expected: dict[str, float]) -> bool:
    return all(abs(answer["probabilities"][label] - p) <= 1e-5 for label, p in expected.items())


def test_uploaded_clips_make_a_profile_that_classifies_as_the_runtime_does(
    enroll_server, local, enrollment_run, uploads_dir
):
    files = _speaker_files(enrollment_run.data, 3)
    made = calibrate(enroll_server, files, model="emotion")
    assert made.status == 200, made.body
    answer = made.json()
    assert answer["object"] == "speaker_profile" and answer["model"] == "emotion"
    assert (answer["clips"], answer["features"]) == (4, 46) and answer["id"].startswith("spk-")
    profile = local.calibrate(files)
    clip = next(p for p in sorted(enrollment_run.data.glob("Actor_03/*.mp4")) if p.name.split("-")[2] == "03")
    enrolled = classify(enroll_server, clip, model="emotion", speaker=answer["id"]).json()
    assert enrolled["normalization"] == "speaker" and enrolled["speaker"] == answer["id"]
    assert _close(enrolled, local.predict_file(clip, speaker=profile).probabilities)
    fallback = classify(enroll_server, clip, model="emotion").json()
    assert fallback["normalization"] == "global" and "speaker" not in fallback
    assert _close(fallback, local.predict_file(clip).probabilities)
    assert (
        "normalization" not in classify(enroll_server, clip, model="plain").json()
    )  # a model without enrollment
    kept = [path.name for path in uploads_dir.iterdir() if path.name.startswith("lexiedge-upload")]
    assert kept == [], "no uploaded audio is kept"


def test_json_clips_make_the_same_profile_as_the_runtime(enroll_server, local, enrollment_run):
    waveforms = [local.decode_file(path)["waveform"] for path in _speaker_files(enrollment_run.data, 4)]
    made = post_json(
        enroll_server,
        "/v1/emotion/calibrate",
        {"model": "emotion", "clips": [w.tolist() for w in waveforms], "sample_rate": 16000},
    )
    assert made.status == 200, made.body
    speaker = made.json()["id"]
    probe = (0.3 * np.sin(np.arange(16000) * 0.07)).astype(np.float32)
    answer = post_json(
        enroll_server, "/v1/emotion", {"model": "emotion", "samples": probe.tolist(), "speaker": speaker}
    ).json()
    assert answer["normalization"] == "speaker"
    assert _close(answer, local.predict(probe, speaker=local.calibrate(np.stack(waveforms))).probabilities)


def test_profiles_are_deleted_on_request_and_the_least_recently_used_go_first(enroll_server, enrollment_run):
    files = _speaker_files(enrollment_run.data, 5)
    clip = files[0]
    first, second = (calibrate(enroll_server, files, model="emotion").json()["id"] for _ in range(2))
    assert classify(enroll_server, clip, model="emotion", speaker=first).status == 200  # first: used last
    third = calibrate(enroll_server, files, model="emotion").json()["id"]  # --max-speakers 2: evicts second
    gone = classify(enroll_server, clip, model="emotion", speaker=second)
    assert gone.status == 404 and gone.json()["error"]["code"] == "speaker_not_found"
    assert "the server keeps the 2 most recently used" in gone.json()["error"]["message"]
    for kept in (first, third):
        assert (
            classify(enroll_server, clip, model="emotion", speaker=kept).json()["normalization"] == "speaker"
        )
    deleted = request(enroll_server, "DELETE", f"/v1/emotion/speakers/{first}")
    assert deleted.status == 200 and deleted.json() == {
        "object": "speaker_profile.deleted",
        "id": first,
        "deleted": True,
    }
    assert request(enroll_server, "DELETE", f"/v1/emotion/speakers/{first}").status == 404
    assert classify(enroll_server, clip, model="emotion", speaker=first).status == 404


def test_bad_calibrations_get_one_line_each(enroll_server, enrollment_run, tmp_path):
    files = _speaker_files(enrollment_run.data, 6)
    notes = tmp_path / "notes.wav"
    notes.write_text("not audio\n")
    speaker = calibrate(enroll_server, files, model="emotion").json()["id"]
    cases = [
        (
            calibrate(enroll_server, files[:1], model="emotion"),
            400,
            "1 enrollment clip(s) given; this model makes a speaker profile from at least 2 clips of the "
            "speaker "
            "(enrollment.min_clips)",
        ),
        (
            calibrate(enroll_server, files, model="plain"),
            400,
            "the model 'plain': this model is not normalised by its speaker (its manifest has no enrollment "
            "section), "
            "so it takes no speaker profile: classify without one",
        ),
        (calibrate(enroll_server, [files[0], notes], model="emotion"), 400, "notes.wav: cannot decode:"),
        (
            classify(enroll_server, files[0], model="plain", speaker=speaker),
            400,
            f"the speaker profile {speaker!r} was made with the model 'emotion', not 'plain'",
        ),
        (
            post_json(
                enroll_server,
                "/v1/emotion/calibrate",
                {"model": "emotion", "clips": [[0.1] * 1600, [2.0] * 1600]},
            ),
            400,
            "clips[1]: waveform values must lie in [-1, 1] (float PCM); got max |x| = 2",
        ),
        (
            post_json(
                enroll_server, "/v1/emotion/calibrate", {"model": "emotion", "clips": [[0.1] * 160] * 65}
            ),
            400,
            "'clips' holds 65 clips; a calibration takes at most 64",
        ),
        (
            calibrate(enroll_server, [notes] * 65, model="emotion"),
            400,
            "Too many files. Maximum number of files is 64",
        ),
        (
            post_json(enroll_server, "/v1/emotion/calibrate", {"model": "emotion", "clips": [0.1, 0.2]}),
            400,
            "'clips' must be a non-empty list of clips, each a non-empty list of mono audio samples in [-1, "
            "1]",
        ),
        (
            request(
                enroll_server,
                "POST",
                "/v1/emotion/calibrate",
                b"clips",
                headers={"Content-Type": "text/plain"},
            ),
            415,
            "send the speaker's clips as multipart/form-data",
        ),
        (
            request(
                enroll_server,
                "POST",
                "/v1/emotion/calibrate",
                b"{}",
                key=None,
                headers={"Content-Type": "application/json"},
            ),
            401,
            "a valid API key is required",
        ),
        (
            request(
                enroll_server,
                "POST",
                "/v1/emotion/calibrate",
                b"{}",
                headers={"Content-Type": "application/json", "Origin": "http://elsewhere.example"},
            ),
            403,
            None,
        ),
        (
            post_json(
                enroll_server, "/v1/emotion/calibrate", {"model": "emotion", "clips": [[0.1] * 500_000] * 2}
            ),
            413,
            "the request body is over the server's limit",
        ),
    ]
    for reply, status, message in cases:
        assert reply.status == status, (status, reply.body[:300])
        error = reply.json()["error"]["message"]
        assert "\n" not in error
        if message is not None:
            assert error.startswith(message), error
    assert "lexiedge-upload" not in json.dumps(cases[2][0].json())  # the upload's name, not the temp file's
