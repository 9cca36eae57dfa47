"""A profile is read with bounds: YAML aliases that expand without limit and oversized files are one line.

Issue 31, item 12: `profiles show --json` on a YAML alias bomb (nine anchors of nine aliases inside
`export.options`, a mapping validated only at export) grew to 2.6 GB; a 200 MB profile was read for
minutes. Every path that reads YAML (a profile file, its `extends` parents, a run's profile.yaml,
`--set` values) goes through one guarded loader.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from lexiedge.profile import MAX_PROFILE_BYTES, MAX_YAML_VALUES

HEADER = """name: bomb
device: {kind: cpu, memory_gb: 2, precision: fp32}
models:
  emotion-av:
    model: {plugin: emotion-av}
    data: {plugin: ravdess}
    train: {plugin: classifier}
    export:
      targets: [onnx]
      options:
        onnx:
"""


def _bomb_lines(levels: int = 9) -> list[str]:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return lines


def _profile(tmp_path: Path, option_lines: list[str], name: str = "bomb.yaml") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(f"          {line}\n" for line in option_lines), encoding="utf-8")
    return path


def _capped_memory() -> None:
    """The child's address space is capped at 3 GiB: a run-away expansion fails there, not on the CI host."""
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def test_an_alias_bomb_is_refused_by_profiles_show_json_in_a_real_process(tmp_path):
    bomb = _profile(tmp_path, _bomb_lines())
    result = subprocess.run([sys.executable, "-m", "lexiedge.cli", "profiles", "show", str(bomb), "--json"],
                            capture_output=True, text=True, timeout=120, preexec_fn=_capped_memory,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 2 and result.stdout == "", result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        f"error: {bomb}: refused: its aliases expand to over {MAX_YAML_VALUES:,} values; a profile holds hundreds"]


@pytest.mark.parametrize("command", [["profiles", "show"], ["profiles", "show", "--json"], ["plan", "--profile"]])
def test_every_command_reading_the_profile_refuses_the_bomb_alike(tmp_path, cli, command):
    bomb = _profile(tmp_path, _bomb_lines())
    result = cli(*command, str(bomb))
    assert result.exit_code == 2 and result.stderr.strip() == (
        f"error: {bomb}: refused: its aliases expand to over {MAX_YAML_VALUES:,} values; a profile holds hundreds")


def test_an_extended_profile_is_read_through_the_same_guard(tmp_path, cli):
    _profile(tmp_path, _bomb_lines(), name="parent.yaml")
    child = tmp_path / "child.yaml"
    child.write_text("extends: parent.yaml\nname: child\n", encoding="utf-8")
    result = cli("profiles", "show", str(child), "--json")
    assert result.exit_code == 2 and "parent.yaml: refused: its aliases expand" in result.stderr


def test_a_bomb_in_a_set_value_is_refused_too(cli):
    anchors = ["&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    anchors += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    result = cli("profiles", "show", "cpu", "--json", "--set", f"models.emotion-av.export.options.onnx.x=[{', '.join(anchors)}]")
    assert result.exit_code == 2 and result.stderr.strip() == (
        f"error: --set: models.emotion-av.export.options.onnx.x: refused: its aliases expand to over "
        f"{MAX_YAML_VALUES:,} values; a profile holds hundreds")


def test_a_recursive_alias_is_refused_in_one_line(tmp_path, cli):
    profile = _profile(tmp_path, ["loop: &loop [1, *loop]"])
    result = cli("profiles", "show", str(profile), "--json")
    assert result.exit_code == 2 and result.stderr.strip() == (
        f"error: {profile}: refused: an alias refers to the anchor it sits in (a recursive structure)")


def test_aliases_that_expand_to_a_few_values_still_work(tmp_path, cli):
    profile = _profile(tmp_path, ["base: &base {max_val_clips: 4}", "again: *base", "more: [*base, *base]"])
    result = cli("profiles", "show", str(profile), "--json")
    assert result.exit_code == 0 and '"max_val_clips": 4' in result.stdout


def test_a_profile_over_the_size_cap_is_refused_without_being_read_whole(tmp_path, cli):
    big = _profile(tmp_path, [])
    with big.open("a", encoding="utf-8") as handle:
        handle.write("# " + "x" * MAX_PROFILE_BYTES + "\n")  # valid YAML: a long comment
    result = cli("profiles", "show", str(big))
    assert result.exit_code == 2 and result.stderr.strip() == (
        f"error: {big}: over {MAX_PROFILE_BYTES >> 20} MiB; a profile is a few KB of YAML")
