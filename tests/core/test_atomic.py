"""lexiedge.atomic: a file is replaced whole or not at all, and no temporary file is left behind."""

from __future__ import annotations

import json
import os
import stat

import pytest

from lexiedge import atomic


def _names(directory):
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize("fsync", [False, True])
def test_writes_whole_file(tmp_path, fsync):
    path = tmp_path / "sub" / "out.txt"  # the parent is created
    assert atomic.write_text(path, "héllo\n", fsync=fsync) == path
    assert path.read_text(encoding="utf-8") == "héllo\n"
    atomic.write_bytes(path, b"\x00\x01", fsync=fsync)
    assert path.read_bytes() == b"\x00\x01"
    atomic.write_json(path, {"a": [1, 2]}, fsync=fsync)
    assert path.read_text(encoding="utf-8") == json.dumps({"a": [1, 2]}, indent=2) + "\n"
    assert _names(path.parent) == ["out.txt"]


def test_failing_writer_keeps_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "run.json"
    path.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError, match="disk on fire"), atomic.atomic_path(path, fsync=True) as tmp:
        tmp.write_text("half a fi", encoding="utf-8")
        raise RuntimeError("disk on fire")
    assert path.read_text(encoding="utf-8") == "old"
    assert _names(tmp_path) == ["run.json"]


def test_interrupt_is_cleaned_up_too(tmp_path):
    path = tmp_path / "model.safetensors"
    with pytest.raises(KeyboardInterrupt), atomic.atomic_path(path) as tmp:
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt
    assert _names(tmp_path) == []


def test_unserialisable_json_leaves_nothing(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("{}\n", encoding="utf-8")
    with pytest.raises(TypeError):
        atomic.write_json(path, {"x": object()})
    assert path.read_text(encoding="utf-8") == "{}\n"
    assert _names(tmp_path) == ["m.json"]


def test_temp_path_is_hidden_beside_target_with_suffix(tmp_path):
    path = tmp_path / "plot.png"
    with atomic.atomic_path(path, suffix=".tmp.png") as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".plot.png.") and tmp.name.endswith(".tmp.png")
        assert tmp.exists()  # reserved: no other writer can take the name
        tmp.write_bytes(b"png")
    assert path.read_bytes() == b"png"
    assert _names(tmp_path) == ["plot.png"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_new_file_gets_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic.write_text(tmp_path / "manifest.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
