"""Speaker enrollment in the Python runtime: `Classifier.calibrate` and `predict(..., speaker=profile)`.

The suite's speaker-normalised model (tests/conftest.py: ``enrollment_run``, trained for three steps and
exported to fp32 ONNX). The profile the runtime computes from a speaker's enrollment clips must be the one
training computed for the same clips (the ravdess loader with the model's own front end), a prediction
with it PyTorch's with those statistics, and a prediction without it the global fallback, saying so.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file

from lexiedge_runtime import (
    ArtifactError,
    InputDtypeError,
    InputShapeError,
    InputValueError,
    ManifestError,
    NoEnrollmentError,
    SpeakerProfile,
    SpeakerProfileError,
    TooFewClipsError,
    load,
)
from lexiedge_runtime.artifact import read_manifest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def classifier(enrollment_run):
    return load(enrollment_run.onnx, "cpu", threads=1)


@pytest.fixture(scope="module")
def trained(enrollment_run):
    """The run's PyTorch model and what its training loader gave every validation clip (enrollment
    included)."""
    from lexiedge.api import CLIP_STATISTICS
    from lexiedge.cache import cache_dir
    from lexiedge.plugin import get_host
    from lexiedge.rundir import find_checkpoint, load_run_profile

    profile, key = load_run_profile(enrollment_run.run)
    entry = profile.model(key)
    host = get_host()
    built = host.models.get("emotion-av").build(entry.model.settings, profile.device)
    built.module.load_state_dict(load_file(find_checkpoint(enrollment_run.run) / "model.safetensors"))
    built.module.eval()
    assert CLIP_STATISTICS in built.extras
    splits = host.datasets.get(entry.data.plugin).load(
        entry.data.settings,
        enrollment_run.data,
        built=built,
        model_settings=entry.model.settings,
        cache_dir=cache_dir(),
        console=Console(quiet=True),
    )
    return built.module, splits.val, entry.data.settings


def _enrollment_files(data: Path, settings, actor: int) -> list[Path]:
    """The actor's enrollment clips as training chose them (data.enrollment.clips: neutral and calm)."""
    from lexiedge_ravdess.enrollment import choose
    from lexiedge_ravdess.loading import find_usable_clips

    chosen = choose(find_usable_clips(settings, data).usable, settings.enrollment)
    return sorted(clip.path for clip in chosen if clip.actor == actor)


def test_the_runtime_profile_is_the_one_training_computed_for_those_clips(
    classifier, trained, enrollment_run
):
    _, val, settings = trained
    actor = val.clips[0].actor
    files = _enrollment_files(enrollment_run.data, settings, actor)
    assert len(files) == 4  # 2 neutral + 2 calm clips
    profile = classifier.calibrate(files)
    assert (profile.clips, profile.features) == (4, 46)
    training = val.speaker_statistics[0]  # what the loader gave the actor's scored clips
    assert np.allclose(profile.mean, training.mean, rtol=1e-4, atol=1e-4), np.abs(
        profile.mean - training.mean
    ).max()
    assert np.allclose(profile.std, training.std, rtol=1e-4, atol=1e-4), np.abs(
        profile.std - training.std
    ).max()
    # the same clips as waveforms (what predict takes) give the same profile
    waveforms = np.stack([classifier.decode_file(path)["waveform"] for path in files])
    again = classifier.calibrate(waveforms)
    assert np.array_equal(again.mean, profile.mean) and np.array_equal(again.std, profile.std)


def test_a_prediction_with_the_profile_is_pytorchs_with_those_statistics(classifier, trained, enrollment_run):
    model, val, settings = trained
    actor = val.clips[0].actor
    profile = classifier.calibrate(_enrollment_files(enrollment_run.data, settings, actor))
    clip = val.clips[0].path  # a scored clip of the same speaker, not an enrollment clip
    feeds = classifier.file_feeds(clip)
    enrolled, fallback = classifier.predict_file(clip, speaker=profile), classifier.predict_file(clip)
    assert (enrolled.normalization, fallback.normalization) == ("speaker", "global")
    tensors = [torch.from_numpy(feeds[name]) for name in ("waveform", "frames", "audio_mask", "video_mask")]
    with torch.no_grad():
        expected = model(*tensors, torch.from_numpy(profile.mean)[None], torch.from_numpy(profile.std)[None])[
            0
        ]
        without = model(*tensors)[0]
    assert np.abs(enrolled.logits - expected.numpy()).max() <= 1e-4
    assert np.abs(fallback.logits - without.numpy()).max() <= 1e-4
    assert np.abs(enrolled.logits - fallback.logits).max() > 1e-3, "the profile changes the logits"
    batch = classifier.predict(
        np.repeat(feeds["waveform"], 3, axis=0), np.repeat(feeds["frames"], 3, axis=0), speaker=profile
    )  # one profile for a batch
    assert all(
        r.normalization == "speaker" and np.allclose(r.logits, enrolled.logits, atol=1e-5) for r in batch
    )


def test_a_saved_profile_loads_back_exactly_and_only_this_artifact_takes_it(
    classifier, small_av_artifact, enrollment_run, tmp_path
):
    files = sorted(enrollment_run.data.glob("Actor_01/*.mp4"))[:5]
    profile = classifier.calibrate(files)
    path = profile.save(tmp_path / "speaker.json")
    saved = json.loads(path.read_text())
    assert set(saved) == {"format", "version", "graph_sha256", "model", "clips", "mean", "std"}
    assert saved["graph_sha256"] == read_manifest(enrollment_run.onnx)["files"]["model.onnx"]["sha256"]
    assert [p.name for p in tmp_path.iterdir()] == ["speaker.json"]  # no temporary file left beside it
    loaded = SpeakerProfile.load(path)
    assert np.array_equal(loaded.mean, profile.mean) and np.array_equal(loaded.std, profile.std)
    clip = files[0]
    assert (
        classifier.predict_file(clip, speaker=loaded).probabilities
        == classifier.predict_file(clip, speaker=profile).probabilities
    )

    other = read_manifest(small_av_artifact)["files"]["model.onnx"]["sha256"]
    path.write_text(json.dumps({**saved, "graph_sha256": other}))
    with pytest.raises(SpeakerProfileError) as refused:
        classifier.predict_file(clip, speaker=SpeakerProfile.load(path))
    assert str(refused.value) == (
        f"the speaker profile was made with another model (graph sha256 {other[:12]}..., this model's "
        f"{saved['graph_sha256'][:12]}...): calibrate the speaker again with this model"
    )


def test_a_model_without_enrollment_refuses_calibrate_and_profiles_in_one_line(
    classifier, small_av_artifact, enrollment_run
):
    plain = load(small_av_artifact, "cpu", threads=1)
    files = sorted(enrollment_run.data.glob("Actor_01/*.mp4"))[:4]
    expected = (
        "this model is not normalised by its speaker (its manifest has no enrollment section), so it "
        "takes no speaker profile: classify without one"
    )
    with pytest.raises(NoEnrollmentError) as refused:
        plain.calibrate(files)
    assert str(refused.value) == expected
    with pytest.raises(NoEnrollmentError):
        plain.predict_file(files[0], speaker=classifier.calibrate(files))
    assert plain.predict_file(files[0]).normalization is None


def test_bad_enrollment_input_gets_one_line_each(classifier, enrollment_run, tmp_path):
    clips = sorted(enrollment_run.data.glob("Actor_02/*.mp4"))
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n")
    tone = (0.1 * np.sin(np.arange(16000) / 10)).astype(np.float32)
    cases = [
        (
            lambda: classifier.calibrate(clips[:1]),
            TooFewClipsError,
            "1 enrollment clip(s) given; this model makes a speaker profile from at least 2 clips of the "
            "speaker "
            "(enrollment.min_clips)",
        ),
        (
            lambda: classifier.calibrate(str(clips[0])),
            InputValueError,
            "calibrate takes a list of the speaker's clips (file paths or mono waveforms), got one str",
        ),
        (
            lambda: classifier.calibrate([tone, tone * 30]),
            InputValueError,
            "clips[1]: waveform values must lie in [-1, 1] (float PCM); got max |x| = 3 (scale int16 PCM by "
            "1/32768)",
        ),
        (
            lambda: classifier.calibrate([tone, (tone * 32767).astype(np.int16)]),
            InputDtypeError,
            "clips[1]: waveform has dtype int16; expected float32 mono samples in [-1, 1] (scale int16 PCM "
            "by 1/32768)",
        ),
        (
            lambda: classifier.calibrate([tone, np.stack([tone, tone])]),
            InputShapeError,
            "clips[1]: has shape (2, 16000); expected one mono waveform (samples,) or a file path",
        ),
        (lambda: classifier.calibrate([clips[0], text]), InputValueError, f"{text}: cannot decode:"),
        (
            lambda: classifier.calibrate([clips[0], tmp_path / "missing.wav"]),
            InputValueError,
            f"{tmp_path / 'missing.wav'}: no such file",
        ),
        (
            lambda: classifier.predict(tone, speaker={"mean": [0.0]}),
            SpeakerProfileError,
            "speaker must be a SpeakerProfile (from calibrate() or a saved one loaded), got dict",
        ),
        (
            lambda: SpeakerProfile.load(text),
            SpeakerProfileError,
            f"{text} is not a speaker profile (not JSON)",
        ),
        (
            lambda: classifier.calibrate(clips[:2]).save(tmp_path / "nowhere" / "me.json"),
            SpeakerProfileError,
            f"{tmp_path / 'nowhere' / 'me.json'}: cannot write the speaker profile there (No such file",
        ),
    ]
    for call, error, message in cases:
        with pytest.raises(error) as refused:
            call()
        assert str(refused.value).startswith(message), str(refused.value)
        assert "\n" not in str(refused.value)
    assert classifier.predict(tone).normalization == "global"  # the model is unharmed


def test_the_enrollment_section_is_checked_when_the_artifact_loads(
    enrollment_run, small_av_artifact, tmp_path
):
    def copy_with(source: Path, name: str, change) -> Path:
        target = tmp_path / name
        shutil.copytree(source, target)
        manifest = json.loads((target / "manifest.json").read_text())
        change(manifest)
        (target / "manifest.json").write_text(json.dumps(manifest))
        return target

    section = read_manifest(enrollment_run.onnx)["enrollment"]
    newer = copy_with(enrollment_run.onnx, "v2", lambda m: m["enrollment"].update(version=2))
    with pytest.raises(ManifestError) as refused:
        load(newer, "cpu")
    assert "manifest.json: enrollment.version: expected 1, got 2" in str(refused.value)
    floor = copy_with(enrollment_run.onnx, "floor", lambda m: m["enrollment"].update(variance_floor=0))
    with pytest.raises(ManifestError, match="enrollment.variance_floor: expected a value above 0, got 0"):
        load(floor, "cpu")
    clash = copy_with(
        enrollment_run.onnx, "clash", lambda m: m["enrollment"]["profile_inputs"].update(std="waveform")
    )
    with pytest.raises(
        ManifestError, match="enrollment.profile_inputs.std: 'waveform' is one of the task's inputs"
    ):
        load(clash, "cpu")
    # a section the graph does not back: a model exported without enrollment
    claimed = copy_with(small_av_artifact, "claimed", lambda m: m.update(enrollment=section))
    with pytest.raises(
        ArtifactError, match="the manifest's enrollment section names the output 'feature_stats'"
    ):
        load(claimed, "cpu")


def test_infer_enrolls_the_speaker_saves_the_profile_and_reads_it_back(
    cli, classifier, enrollment_run, small_av_artifact, tmp_path
):
    files = sorted(enrollment_run.data.glob("Actor_04/*.mp4"))
    enroll = [path for path in files if path.name.split("-")[2] in ("01", "02")]
    clip = next(path for path in files if path.name.split("-")[2] == "05")
    saved = tmp_path / "speaker.json"
    options = [item for path in enroll for item in ("--enroll", str(path))]
    result = cli(
        "infer", str(enrollment_run.onnx), str(clip), *options, "--save-speaker", str(saved), "--top", "1"
    )
    assert result.exit_code == 0, result.stderr
    assert f"speaker profile: {len(enroll)} --enroll clips, saved to {saved}" in result.stderr
    expected = classifier.predict_file(clip, speaker=classifier.calibrate(enroll))
    row = next(line for line in result.stdout.splitlines() if clip.name in line)
    assert f"{expected.label} {expected.confidence:.2f}" in row
    again = cli("infer", str(enrollment_run.onnx), str(clip), "--speaker", str(saved), "--top", "1")
    assert again.exit_code == 0 and f"speaker profile: {saved}" in again.stderr
    assert f"{expected.label} {expected.confidence:.2f}" in next(
        line for line in again.stdout.splitlines() if clip.name in line
    )
    plain = cli("infer", str(enrollment_run.onnx), str(clip))
    assert "no speaker profile: normalised by the global training statistics" in plain.stderr

    for args, message in [
        ([str(enrollment_run.onnx), str(clip), "--enroll", str(enroll[0])], "1 enrollment clip(s) given;"),
        ([str(enrollment_run.onnx), str(clip), *options, "--speaker", str(saved)], "not both"),
        (
            [str(enrollment_run.onnx), str(clip), "--save-speaker", str(saved)],
            "pass the speaker's clips with --enroll",
        ),
        ([str(small_av_artifact), str(clip), *options], "is not normalised by its speaker"),
        (
            [str(enrollment_run.onnx), str(clip), "--speaker", str(clip)],
            "is not a speaker profile (not JSON)",
        ),
        (
            [
                str(enrollment_run.onnx),
                str(clip),
                *options,
                "--save-speaker",
                str(tmp_path / "no" / "me.json"),
            ],
            f"no such folder {tmp_path / 'no'}; create it first",
        ),
    ]:
        refused = cli("infer", *args)
        assert refused.exit_code == 2, (args, refused.stderr)
        assert message in refused.stderr and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
