"""A resolved profile is coherent (no inherited GPU name on a cpu device), and --set reaches every command
that reads a profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from lexiedge.plugin import get_host
from lexiedge.profile import load_profile


def _child(tmp_path: Path, device: str) -> Path:
    path = tmp_path / "child.yaml"
    path.write_text(f"extends: rtx3050-4gb\ndevice:\n{device}")
    return path


def test_a_cpu_child_of_a_gpu_profile_does_not_keep_the_gpu_name(tmp_path):
    profile = load_profile(_child(tmp_path, "  kind: cpu\n  precision: fp32\n"), host=get_host())
    assert profile.device.kind == "cpu"
    assert "RTX" not in profile.device.name and "NVIDIA" not in profile.device.name
    assert profile.device.name == "CPU, 4 GB"
    import yaml

    assert yaml.safe_load(profile.to_yaml())["device"]["name"] == "CPU, 4 GB"  # what runs record, too


def test_a_child_that_changes_memory_gets_a_derived_name(tmp_path):
    profile = load_profile(_child(tmp_path, "  memory_gb: 8\n"), host=get_host())
    assert profile.device.name == "CUDA GPU, 8 GB"


def test_a_child_naming_its_device_keeps_its_name(tmp_path):
    child = _child(tmp_path, "  kind: cpu\n  precision: fp32\n  name: my laptop\n")
    profile = load_profile(child, host=get_host())
    assert profile.device.name == "my laptop"


def test_a_child_changing_nothing_the_name_describes_keeps_it(tmp_path):
    profile = load_profile(_child(tmp_path, "  reserve_gb: 1.0\n"), host=get_host())
    assert profile.device.name == "NVIDIA GeForce RTX 3050 (4 GB)"


def test_set_device_kind_drops_the_stale_name():
    profile = load_profile("rtx3050-4gb", ["device.kind=cpu", "device.precision=fp32"], host=get_host())
    assert profile.device.name == "CPU, 4 GB"
    named = load_profile(
        "rtx3050-4gb", ["device.kind=cpu", "device.precision=fp32", "device.name=box"], host=get_host()
    )
    assert named.device.name == "box"
    kept = load_profile("rtx3050-4gb", ["device.reserve_gb=1"], host=get_host())
    assert kept.device.name == "NVIDIA GeForce RTX 3050 (4 GB)"


def test_profiles_show_prints_the_coherent_name(cli, tmp_path):
    result = cli("profiles", "show", str(_child(tmp_path, "  kind: cpu\n  precision: fp32\n")))
    assert result.exit_code == 0, result.stderr
    assert "NVIDIA GeForce RTX 3050" not in result.stdout
    assert "name: CPU, 4 GB" in result.stdout


def test_data_stats_takes_set(cli):
    result = cli("data", "stats", "--profile", "t4-16gb",
                 "--set", "models.qwen-lora.model.base=random:qwen2-tiny",
                 "--set", "models.qwen-lora.model.seq_len=64")
    assert result.exit_code == 0, result.stderr
    assert "seq_len 64 truncates" in result.stdout


def test_data_stats_set_is_validated(cli):
    result = cli("data", "stats", "--profile", "t4-16gb", "--set", "models.qwen-lora.model.nonsense=1")
    assert result.exit_code == 2
    assert "nonsense" in result.stderr and "unknown key" in result.stderr


def test_data_stats_set_needs_a_profile(cli):
    result = cli("data", "stats", "--set", "models.qwen-lora.model.seq_len=64")
    assert result.exit_code == 2 and "--profile" in result.stderr


@pytest.mark.parametrize("command", [["plan"], ["train"], ["export"], ["profiles", "show"], ["data", "stats"]])
def test_every_command_that_reads_a_profile_takes_set(cli, command):
    from lexiedge.cli import _build_app

    import typer.main

    group = typer.main.get_command(_build_app(command))
    for name in command:
        group = group.commands[name] if hasattr(group, "commands") else group
    assert any("--set" in param.opts for param in group.params), command
