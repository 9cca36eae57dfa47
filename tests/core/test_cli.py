"""The command line's shape: version, listings, help, and one-line errors for what is not there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lexiedge import __version__


def test_version(cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"lexiedge {__version__}"


def test_console_script_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "lexiedge.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and __version__ in result.stdout


def test_profiles_lists_the_three(cli) -> None:
    result = cli("profiles")
    assert result.exit_code == 0
    for name in ("cpu", "rtx3050-4gb", "t4-16gb"):
        assert name in result.stdout


def test_every_command_has_help(cli) -> None:
    for command in ("train", "plan", "merge", "export", "ensemble", "infer", "bench", "demo", "plugins", "profiles",
                    "data"):
        result = cli(command, "--help")
        assert result.exit_code == 0, command
        assert "Usage" in result.stdout


def test_train_help_has_the_documented_options(cli) -> None:
    text = cli("train", "--help").stdout
    for option in ("--profile", "--model", "--data", "--out", "--resume", "--set"):
        assert option in text
    # a flag takes no value: no "--help <bool>"; valued options say what the value looks like
    assert "<bool>" not in text and "KEY=VALUE" in text and "NAME|PATH" in text


def test_the_shell_completes_commands_and_profile_names() -> None:
    def complete(words: str, index: int) -> list[str]:
        env = {"COMP_WORDS": words, "COMP_CWORD": str(index), "_LEXIEDGE_COMPLETE": "complete_bash"}
        script = Path(sys.executable).with_name("lexiedge")  # the console script: completion keys on its name
        done = subprocess.run([str(script)], capture_output=True, text=True, env={**os.environ, **env})
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("lexiedge tr", 1) == ["train"]
    assert complete("lexiedge train --profile rtx", 3) == ["rtx3050-4gb"]
    assert "--install-completion" in subprocess.run([sys.executable, "-m", "lexiedge.cli", "--help"],
                                                    capture_output=True, text=True).stdout


def test_unknown_export_target_lists_known_ones(cli) -> None:
    result = cli("export", "--target", "tflite")
    assert result.exit_code == 2
    assert "unknown exporter plugin 'tflite'" in result.stderr


def test_unknown_model_in_profile_is_one_line(cli) -> None:
    result = cli("plan", "--profile", "cpu", "--model", "gpt-9")
    assert result.exit_code == 2
    assert "no model 'gpt-9'" in result.stderr and "emotion-av" in result.stderr


def test_missing_run_for_merge(cli, tmp_path) -> None:
    result = cli("merge", str(tmp_path / "nope"))
    assert result.exit_code == 2 and "no such run directory" in result.stderr
