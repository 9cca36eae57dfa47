"""`Classifier.predict_file`: a real RAVDESS file reaches the model in an app exactly as in evaluation.

Training's path is the ravdess data plugin's loader (feature cache -> dataset -> collate); the app's
is the runtime alone, reading the decoding the manifest recorded. Both must hand the graph the same
four arrays, bit for bit, for a 48 kHz AAC mp4 with a face and a 48 kHz stereo wav.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from lexiedge_runtime import ArtifactError, InputValueError, MissingExtraError, load

REAL_MP4 = Path("ravdess-av/Actor_01/01-01-01-01-01-01-01.mp4")  # H.264 720p + AAC 48 kHz, 3.3 s
REAL_WAV = Path("ravdess-speech/Actor_01/03-01-02-01-01-02-01.wav")  # 48 kHz stereo: downmixed and resampled


def _as_actor(source: Path, folder: Path, actor: int) -> Path:
    """The file copied under ``Actor_NN/`` with its name's actor field set to ``actor``."""
    parts = source.stem.split("-")
    parts[-1] = f"{actor:02d}"
    target = folder / f"Actor_{actor:02d}" / ("-".join(parts) + source.suffix)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


@pytest.mark.shared_data
def test_a_real_mp4_and_wav_reach_the_model_as_in_the_training_loader(small_av_artifact, shared_data, tmp_path):
    from lexiedge_ravdess.loading import load_splits
    from lexiedge_ravdess.settings import RavdessSettings, SplitSettings

    classifier = load(small_av_artifact, "cpu")
    recorded = classifier.manifest["preprocessing"]["data_settings"]
    settings = RavdessSettings.model_validate({**recorded, "split": SplitSettings(train=[2], val=[1])})
    assert settings.random_crop and settings.kept_seconds == 2 * settings.clip_seconds, \
        "the cache keeps room for random crops: evaluation must still take the centre window"
    data = tmp_path / "data"
    evaluated = [_as_actor(shared_data / name, data, actor=1) for name in (REAL_MP4, REAL_WAV)]
    for name in (REAL_MP4, REAL_WAV):  # the loader needs training clips; they are not compared
        _as_actor(shared_data / name, data, actor=2)
    splits = load_splits(settings, data, cache_dir=tmp_path / "cache", console=Console(file=None, quiet=True), workers=0)
    loader = {clip.path.name: splits.val[index] for index, clip in enumerate(splits.val.clips)}
    assert sorted(loader) == sorted(path.name for path in evaluated)

    for path in evaluated:
        training = {name: tensor.numpy()[np.newaxis] for name, tensor in loader[path.name].items() if name != "label"}
        runtime = classifier.file_feeds(path)
        assert runtime.keys() == training.keys()
        for name, array in training.items():
            assert runtime[name].dtype == array.dtype and runtime[name].shape == array.shape, (path.name, name)
            np.testing.assert_array_equal(runtime[name], array, err_msg=f"{path.name}: {name}")
        assert runtime["audio_mask"][0] == 1.0 and runtime["video_mask"][0] == (1.0 if path.suffix == ".mp4" else 0.0)
        on_training_inputs = classifier.run(training)[1][0]
        answer = classifier.predict_file(path)
        assert answer.probabilities == dict(zip(classifier.labels, map(float, on_training_inputs)))


def test_the_manifest_records_the_decoder_the_run_was_evaluated_with(small_av_artifact):
    manifest = json.loads((small_av_artifact / "manifest.json").read_text())
    media, data = manifest["preprocessing"]["media"], manifest["preprocessing"]["data_settings"]
    assert media["decoder"] == "lexiedge_runtime.media.decode" and media["version"] == 1
    assert media["clip_samples"] == round(data["clip_seconds"] * data["sample_rate"])
    assert media["decoded_seconds"] == 2 * data["clip_seconds"]  # random_crop: the cache's window
    assert (media["frames"], media["image_size"], media["face_crop"]) == (data["frames"], data["image_size"], True)
    assert media["face_detector"].startswith("haar")


def test_files_that_cannot_be_classified_are_one_line_and_the_model_goes_on(small_av_artifact, tmp_path):
    classifier = load(small_av_artifact, "cpu")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not an mp4 at all")
    with pytest.raises(InputValueError, match=r"broken\.mp4: cannot decode: "):
        classifier.predict_file(broken)
    with pytest.raises(InputValueError, match=r"absent\.wav: no such file"):
        classifier.predict_file(tmp_path / "absent.wav")
    with pytest.raises(InputValueError, match="is a directory"):
        classifier.predict_file(tmp_path)
    silent = np.zeros(4000, np.float32)
    assert classifier.predict(waveform=silent).label in classifier.labels


def test_an_artifact_that_records_no_decoding_refuses_files_in_one_line(small_av_artifact, tmp_path):
    copy = tmp_path / "old"
    shutil.copytree(small_av_artifact, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["preprocessing"]["media"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"records no decoding \(preprocessing\.media\)"):
        load(copy, "cpu").predict_file(tmp_path / "clip.mp4")


def test_a_recorded_decoding_that_disagrees_with_the_model_is_refused_at_load(small_av_artifact, tmp_path):
    copy = tmp_path / "skewed"
    shutil.copytree(small_av_artifact, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["preprocessing"]["media"]["image_size"] += 16
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"preprocessing\.media\.image_size: 64 disagrees with preprocessing"):
        load(copy, "cpu")


def test_without_the_media_extra_predict_file_names_it(small_av_artifact, tmp_path, monkeypatch):
    classifier = load(small_av_artifact, "cpu")
    monkeypatch.setitem(sys.modules, "av", None)  # what importlib reports for a package that is not installed
    with pytest.raises(MissingExtraError, match=r"needs av \(not installed\): pip install 'lexiedge-runtime\[media\]'"):
        classifier.predict_file(tmp_path / "clip.mp4")
