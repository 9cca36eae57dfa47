"""Loading a folder into splits: the contract batch, missing modalities, corrupt files, the feature cache."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console
from torch.utils.data import DataLoader

from lexiedge.api import BuiltModel, NoSettings
from lexiedge.errors import LexiedgeError, UsageError
from lexiedge_ravdess.labels import EMOTIONS
from lexiedge_ravdess.loading import load_splits
from lexiedge_ravdess.plugin import RavdessPlugin
from lexiedge_ravdess.settings import SplitSettings


def copy_subset(src: Path, dest: Path, actors: list[int], modalities: tuple[str, ...] = ("01",)) -> list[Path]:
    """Copy the synthetic clips of some actors and modalities (keeping mtimes) into ``dest``."""
    copied = []
    for actor in actors:
        for path in sorted((src / f"Actor_{actor:02d}").iterdir()):
            if path.name[:2] in modalities:
                target = dest / path.parent.name / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
                copied.append(target)
    return copied


def items_of(dataset) -> list[dict[str, torch.Tensor]]:
    return [dataset[i] for i in range(len(dataset))]


def test_plugin_load_returns_actor_splits_of_contract_batches(synth_root: Path, tmp_path: Path, console, small_settings) -> None:
    settings = small_settings()
    plugin = RavdessPlugin()
    assert plugin.name == "ravdess" and plugin.tasks == frozenset({"av-classification"})
    splits = plugin.load(settings, synth_root, built=BuiltModel(torch.nn.Identity()), model_settings=NoSettings(),
                         cache_dir=tmp_path, console=console)
    summary = splits.summary
    assert splits.labels == list(EMOTIONS)
    assert summary["actors"] == {"train": [1, 2, 3, 4], "val": [5], "test": [6], "unassigned": []}
    # per actor and emotion: 2 audio-video mp4 + 1 audio-only wav + 1 video-only mp4
    assert summary["clips"] == {"train": 128, "val": 32, "test": 32}
    assert summary["per_class"]["train"] == {name: 16 for name in EMOTIONS}
    assert summary["cache"]["misses"] == 192 and summary["cache"]["decoded"] == 192 and summary["skipped"]["undecodable"] == []
    assert {c.actor for c in splits.train.clips}.isdisjoint({c.actor for c in splits.test.clips})

    loader = DataLoader(splits.train, batch_size=2, shuffle=True, collate_fn=splits.collate)
    batch = next(iter(loader))
    expected = {
        "waveform": ((2, 19200), torch.float32),
        "frames": ((2, 4, 3, 32, 32), torch.float32),
        "audio_mask": ((2,), torch.float32),
        "video_mask": ((2,), torch.float32),
        "label": ((2,), torch.int64),
    }
    assert {key: (tuple(value.shape), value.dtype) for key, value in batch.items()} == expected
    for item, clip in zip(items_of(splits.val), splits.val.clips):
        assert item["label"] == clip.emotion
        assert item["audio_mask"] == float(clip.has_audio) and item["video_mask"] == float(clip.has_video)
        assert item["frames"].min() >= 0.0 and item["frames"].max() <= 1.0
        assert item["waveform"].abs().max() <= 1.0
        if clip.has_audio:
            assert item["waveform"].abs().max() > 0.05
        else:
            assert not item["waveform"].any(), "video-only clip: zeros"
        if clip.has_video:
            assert item["frames"].std() > 0.05
        else:
            assert not item["frames"].any(), "audio-only wav: zeros"


def test_dropping_a_modality_masks_it_for_every_clip(synth_root: Path, tmp_path: Path, console, small_settings) -> None:
    audio_only = load_splits(small_settings(modalities=["audio"]), synth_root, cache_dir=tmp_path, console=console)
    items = items_of(audio_only.val)
    assert items and all(item["video_mask"] == 0.0 and not item["frames"].any() for item in items)
    assert all(item["audio_mask"] == 1.0 for item in items)
    # video-only clips have nothing left to learn from and are left out (8 emotions x 6 actors)
    assert audio_only.summary["skipped"]["no_usable_modality"] == 48
    video_only = load_splits(small_settings(modalities=["video"]), synth_root, cache_dir=tmp_path, console=console)
    items = items_of(video_only.test)
    assert items and all(item["audio_mask"] == 0.0 and not item["waveform"].any() for item in items)
    assert all(item["video_mask"] == 1.0 and item["frames"].std() > 0.05 for item in items)


def test_corrupt_files_are_named_and_skipped_and_the_rest_loads(synth_root: Path, tmp_path: Path, small_settings) -> None:
    data = tmp_path / "data"
    copied = copy_subset(synth_root, data, [1, 2, 3], modalities=("01", "03"))
    truncated, garbage_wav = data / "Actor_01" / "01-01-03-01-01-01-01.mp4", data / "Actor_02" / "03-01-05-01-01-01-02.wav"
    truncated.write_bytes(truncated.read_bytes()[:3000])
    garbage_wav.write_bytes(np.random.default_rng(0).bytes(5000))
    garbage_mp4 = data / "Actor_03" / "01-01-08-02-02-02-03.mp4"  # a name no clip had: an extra, broken file
    garbage_mp4.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    settings = small_settings(split=SplitSettings(train=[1, 2], val=[3]))
    for attempt in range(2):  # the second load reads the cached failures: it still names them, decodes nothing
        console = Console(record=True, width=300)
        splits = load_splits(settings, data, cache_dir=tmp_path / "cache", console=console, workers=0)
        output = console.export_text()
        for broken in (truncated, garbage_wav, garbage_mp4):
            line = next(line for line in output.splitlines() if broken.name in line)
            assert "skipped" in line and "cannot decode" in line
        undecodable = {entry["file"] for entry in splits.summary["skipped"]["undecodable"]}
        assert undecodable == {str(p.relative_to(data)) for p in (truncated, garbage_wav, garbage_mp4)}
        assert splits.summary["clips"]["train"] + splits.summary["clips"]["val"] == len(copied) - 2
        assert splits.summary["cache"]["decoded"] == (len(copied) + 1 if attempt == 0 else 0)
        batch = splits.collate(items_of(splits.train))
        assert batch["waveform"].shape[0] == len(splits.train)


def test_invalid_names_are_warned_about_and_skipped(synth_root: Path, tmp_path: Path, console, small_settings) -> None:
    data = tmp_path / "data"
    copy_subset(synth_root, data, [1, 2, 3])
    (data / "Actor_01" / "01-01-09-01-01-01-01.mp4").write_bytes(b"not a clip")
    splits = load_splits(small_settings(), data, cache_dir=tmp_path / "cache", console=console, workers=0)
    output = console.export_text()
    assert "01-01-09-01-01-01-01.mp4" in output and "emotion 09" in output
    assert splits.summary["skipped"]["invalid_names"] == ["Actor_01/01-01-09-01-01-01-01.mp4: emotion 09 is not 01..08"]
    assert sum(splits.summary["clips"].values()) == 48


def _arrays(dataset) -> list[tuple[np.ndarray, ...]]:
    torch.manual_seed(0)  # the training split's random crops come from torch's generator
    return [tuple(item[key].numpy() for key in ("waveform", "frames", "label")) for item in items_of(dataset)]


def test_second_load_reads_the_cache_and_decodes_nothing(synth_root: Path, tmp_path: Path, console, small_settings) -> None:
    data = tmp_path / "data"
    copied = copy_subset(synth_root, data, [1, 2, 3], modalities=("01", "02", "03"))
    settings, cache_dir = small_settings(), tmp_path / "cache"
    first = load_splits(settings, data, cache_dir=cache_dir, console=console, workers=0)
    assert first.summary["cache"]["decoded"] == len(copied) == 96
    second = load_splits(settings, data, cache_dir=cache_dir, console=console, workers=0)
    assert second.summary["cache"] == {**first.summary["cache"], "hits": 96, "misses": 0, "decoded": 0}
    reference = _arrays(first.train)
    for (a, b) in zip(reference, _arrays(second.train)):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)

    # Any preprocessing setting keys the cache: a new image size decodes everything again.
    resized = load_splits(small_settings(image_size=40), data, cache_dir=cache_dir, console=console, workers=0)
    assert resized.summary["cache"]["hits"] == 0 and resized.summary["cache"]["decoded"] == 96
    assert resized.train[0]["frames"].shape[-1] == 40
    # ...while the seed and data_fraction choose among cached clips without decoding.
    fewer = load_splits(small_settings(data_fraction=0.5, seed=3), data, cache_dir=cache_dir, console=console, workers=0)
    assert fewer.summary["cache"]["decoded"] == 0 and fewer.summary["clips"]["train"] == 16

    # Proof that reading does not decode: garbage of the same size and mtime in place of a clip is never read.
    victim = first.train.clips[0].path
    stat = victim.stat()
    victim.write_bytes(b"\xff" * stat.st_size)
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    third = load_splits(settings, data, cache_dir=cache_dir, console=console, workers=0)
    assert third.summary["cache"]["decoded"] == 0 and third.summary["skipped"]["undecodable"] == []
    for x, y in zip(reference[0], _arrays(third.train)[0]):
        np.testing.assert_array_equal(x, y)

    # A changed file (new mtime) is decoded again; here it is now garbage, so it is reported and skipped.
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    fourth = load_splits(settings, data, cache_dir=cache_dir, console=console, workers=0)
    assert fourth.summary["cache"]["decoded"] == 1 and fourth.summary["clips"]["train"] == len(first.train) - 1


def test_an_interrupted_preprocessing_leaves_no_corrupt_entry(synth_root: Path, tmp_path: Path, console, small_settings) -> None:
    data = tmp_path / "data"
    copy_subset(synth_root, data, [1, 2, 3])
    settings, cache_dir = small_settings(), tmp_path / "cache"
    first = load_splits(settings, data, cache_dir=cache_dir, console=console, workers=0)
    entry, reference = first.train.entries[0], _arrays(first.train)[0]
    # What a kill between writing the arrays and committing the entry leaves: arrays, a temp file, no .json.
    commit_marker = entry.video.with_name(entry.video.name.replace(".video.npy", ".json"))
    json.loads(commit_marker.read_text())  # a whole entry is valid JSON
    commit_marker.unlink()
    (entry.video.parent / f".{commit_marker.name}.abc.tmp").write_bytes(b'{"ok": tr')
    entry.audio.write_bytes(entry.audio.read_bytes()[:100])  # a torn array that no committed entry points to
    again = load_splits(settings, data, cache_dir=cache_dir, console=console, workers=0)
    assert again.summary["cache"]["decoded"] == 1 and again.summary["cache"]["hits"] == 47
    for x, y in zip(reference, _arrays(again.train)[0]):
        np.testing.assert_array_equal(x, y)


def test_data_fraction_decodes_only_the_sampled_training_clips(synth_root: Path, tmp_path: Path, console, small_settings) -> None:
    splits = load_splits(small_settings(data_fraction=0.25), synth_root, cache_dir=tmp_path, console=console, workers=0)
    assert splits.summary["per_class"]["train"] == {name: 4 for name in EMOTIONS}
    assert splits.summary["clips"] == {"train": 32, "val": 32, "test": 32}
    assert splits.summary["cache"]["decoded"] == 96


def test_missing_or_empty_data_is_a_usage_error(tmp_path: Path, console, small_settings) -> None:
    plugin = RavdessPlugin()
    kwargs = dict(built=BuiltModel(torch.nn.Identity()), model_settings=NoSettings(), cache_dir=tmp_path, console=console)
    with pytest.raises(UsageError, match=r"--data DIR.*lexiedge data synth-av"):
        plugin.load(small_settings(), None, **kwargs)
    with pytest.raises(UsageError, match="no such data folder"):
        plugin.load(small_settings(), tmp_path / "absent", **kwargs)
    (tmp_path / "empty" / "Actor_01").mkdir(parents=True)
    with pytest.raises(UsageError, match="no usable RAVDESS clips"):
        plugin.load(small_settings(), tmp_path / "empty", **kwargs)


def test_a_sample_rate_other_than_the_models_is_refused(synth_root: Path, tmp_path: Path, console, small_settings) -> None:
    class ModelSettings(NoSettings):
        sample_rate: int = 16000

    with pytest.raises(LexiedgeError, match="data.sample_rate is 22050 Hz but model.sample_rate is 16000 Hz"):
        RavdessPlugin().load(small_settings(sample_rate=22050), synth_root, built=BuiltModel(torch.nn.Identity()),
                             model_settings=ModelSettings(), cache_dir=tmp_path, console=console)


def test_a_split_without_present_training_actors_is_a_usage_error(synth_root: Path, tmp_path: Path, console, small_settings) -> None:
    settings = small_settings(split=SplitSettings(train=[20, 21], val=[1]))
    with pytest.raises(UsageError, match=r"no training clips: train actors \[\]; actors present: \[1, 2, 3, 4, 5, 6\]"):
        load_splits(settings, synth_root, cache_dir=tmp_path, console=console)


def test_training_clips_are_random_windows_and_the_others_the_centre_window(
    synth_root: Path, tmp_path: Path, console, small_settings
) -> None:
    from lexiedge_runtime.media.decode import centre_fit
    from lexiedge_ravdess.plugin import RavdessPlugin

    data = tmp_path / "data"
    copy_subset(synth_root, data, [1, 2, 3, 4, 5, 6], modalities=("03",))  # audio-only wavs of 1.2 s
    settings = small_settings(clip_seconds=0.5)  # windows of 0.5 s: room to move inside each recording
    splits = load_splits(settings, data, cache_dir=tmp_path / "cache", console=console, workers=0)
    torch.manual_seed(1)
    reads = [splits.train[0]["waveform"].numpy() for _ in range(4)]
    assert all(read.shape == (settings.num_samples,) for read in reads)
    assert len({read.tobytes() for read in reads}) > 1, "each read of a training clip is another window"
    stored = splits.train.entries[0]
    recording = np.load(stored.audio)
    assert recording.shape[0] == round(settings.kept_seconds * settings.sample_rate), "2 x the clip kept around the centre"
    assert all(any(np.array_equal(read, recording[s : s + len(read)]) for s in range(len(recording) - len(read) + 1))
               for read in reads), "every window is a piece of the recording"
    clip = splits.val.clips[0]
    expected = RavdessPlugin().decode_for_inference(settings, clip.path)["waveform"]
    np.testing.assert_array_equal(splits.val[0]["waveform"].numpy(), expected)
    np.testing.assert_array_equal(expected, centre_fit(np.load(splits.val.entries[0].audio), settings.num_samples))


def test_speed_perturbation_plays_a_clip_faster_and_higher() -> None:
    from lexiedge_ravdess.dataset import change_speed

    rate = 16000
    t = np.arange(rate) / rate
    tone = np.sin(2 * np.pi * 1000.0 * t).astype(np.float32)
    faster = change_speed(tone, 1.25)
    assert faster.dtype == np.float32 and len(faster) == round(rate / 1.25)
    spectrum = np.abs(np.fft.rfft(faster * np.hanning(len(faster))))
    peak_hz = np.argmax(spectrum) * rate / len(faster)
    assert abs(peak_hz - 1250.0) < 5.0, "a quarter faster is a quarter higher"
    assert change_speed(tone, 1.0) is tone


def test_training_reads_with_speed_perturbation_vary_in_length_before_the_crop(
    synth_root: Path, tmp_path: Path, console, small_settings
) -> None:
    data = tmp_path / "data"
    copy_subset(synth_root, data, [1, 2, 3, 4, 5, 6], modalities=("03",))
    settings = small_settings(clip_seconds=2.0, speed_perturb=[0.8, 1.25], random_crop=False)  # longer than the clips
    splits = load_splits(settings, data, cache_dir=tmp_path / "cache", console=console, workers=0)
    torch.manual_seed(3)
    reads = [splits.train[0]["waveform"].numpy() for _ in range(8)]
    # every read is padded to clip_seconds; the sped-up ones end earlier (more trailing zeros)
    voiced = {int(np.flatnonzero(np.abs(read) > 0)[-1]) for read in reads}
    assert len(voiced) == 2, "two speeds, two lengths"
    first = splits.val[0]["waveform"].numpy()
    torch.manual_seed(4)
    np.testing.assert_array_equal(splits.val[0]["waveform"].numpy(), first)  # validation is never augmented
