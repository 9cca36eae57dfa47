"""A damaged RAVDESS feature-cache entry is decoded again; it never breaks the runs that read it.

Issue 31, item 11: a truncated ``.npy`` in the feature cache made every later run on that data end
in numpy's traceback ("EOF: reading array header"). The cache now checks each entry's header and
size before trusting it, and a damaged entry is rebuilt like a missing one. Real wav files (the
shared RAVDESS copy), a real cache, `lexiedge train` twice.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from lexiedge_ravdess.cache import whole_npy


@pytest.mark.shared_data
def test_truncated_or_garbled_cache_entries_are_rebuilt_and_training_goes_on(shared_data, tmp_path, cli, monkeypatch):
    monkeypatch.setenv("LEXIEDGE_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data" / "Actor_01"
    data.mkdir(parents=True)
    for wav in sorted((shared_data / "ravdess-speech" / "Actor_01").glob("*.wav"))[:16]:
        shutil.copy(wav, data)
    train = ["train", "--profile", "cpu", "--model", "emotion-av", "--data", str(data.parent),
             "--set", "models.emotion-av.train.max_steps=1"]
    first = cli(*train, "--out", str(tmp_path / "run-1"))
    assert first.exit_code == 0, first.stderr
    [entries] = [p for p in (tmp_path / "cache" / "ravdess-features").iterdir()]
    audio = sorted(entries.glob("*.audio.npy"))
    originals = {path: np.load(path) for path in audio[:3]}

    header_cut, data_cut, rewritten = audio[:3]
    header_cut.write_bytes(header_cut.read_bytes()[:100])  # inside the header: numpy's "EOF" traceback
    data_cut.write_bytes(data_cut.read_bytes()[:-1000])  # the header is whole, the samples are not
    rewritten.write_bytes(b"not an array at all, but the same size".ljust(rewritten.stat().st_size, b"."))
    marker = entries / audio[3].name.replace(".audio.npy", ".json")
    marker.write_text(json.dumps(["a list, not the entry's mapping"]))
    assert not any(whole_npy(path) for path in (header_cut, data_cut, rewritten))

    second = cli(*train, "--out", str(tmp_path / "run-2"))
    assert second.exit_code == 0 and "Traceback" not in second.stderr, second.stderr
    assert "ravdess: decoded 4 clips" in second.stdout  # the three damaged entries and the bad marker
    for path, array in originals.items():
        assert whole_npy(path) and np.array_equal(np.load(path), array)
    assert json.loads(marker.read_text())["ok"] is True
