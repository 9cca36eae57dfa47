"""Output that survives a pipe: nothing cut, folded or coloured when stdout is not a terminal; third-party
chatter hidden unless --verbose; --quiet and --verbose on every command."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

LONG = "a-rather-long-folder-name-that-rich-would-cut-" * 4


def _lexiedge(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80"}  # what a CI log or `| tee` would report, if anything
    env.pop("FORCE_COLOR", None)
    return subprocess.run([sys.executable, "-m", "lexiedge", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def test_a_long_path_is_one_unbroken_line_in_a_pipe(tmp_path):
    out = tmp_path / LONG / "synth"
    result = _lexiedge("data", "synth-av", "--out", str(out), "--actors", "2", "--clips-per-emotion", "1",
                       "--seconds", "0.5")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout  # one result line, not wrapped at 80 columns
    assert f"train with: lexiedge train --profile cpu --model emotion-av --data {out}" in lines[0]
    assert "…" not in result.stdout and "\x1b[" not in result.stdout  # nothing cut, no colour codes


def test_table_cells_are_whole_in_a_pipe():
    from lexiedge.plugin import get_host

    result = _lexiedge("plugins")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for kind in ("models", "datasets", "trainers"):
        for name in get_host().registry(kind).names():
            description = get_host().registry(kind).get_class(name).description
            assert any(description in line for line in lines), description  # on one row, not folded
    assert "…" not in result.stdout


def test_rules_are_one_plain_line_in_a_pipe():
    header = f"$ lexiedge train --profile cpu --model emotion-av --data /tmp/{LONG}/data/synth-av --out runs/x"
    code = (
        "from lexiedge.console import console; "
        f"console.rule({('[bold]' + header)!r}, align='left'); console.print('x ' * 100)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "80"}, timeout=60)
    lines = result.stdout.splitlines()
    assert lines[0] == "─── " + header
    assert lines[1].strip() == ("x " * 100).strip()  # printed text is not wrapped


def test_quiet_prints_nothing_on_stdout_and_errors_still_show(tmp_path):
    out = tmp_path / "synth"
    result = _lexiedge("--quiet", "data", "synth-av", "--out", str(out), "--actors", "2",
                       "--clips-per-emotion", "1", "--seconds", "0.5")
    assert result.returncode == 0 and result.stdout == "", result.stdout
    assert any(out.rglob("*.mp4"))
    result = _lexiedge("-q", "train", "--profile", "cpu", "--data", str(tmp_path / "missing"))
    assert result.returncode == 2 and result.stderr.startswith("error:") and result.stdout == ""


def test_quiet_and_verbose_together_are_one_line():
    result = _lexiedge("--quiet", "--verbose", "profiles")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --quiet and --verbose contradict each other; pass one"
    ]


def test_global_options_are_listed_in_help():
    result = _lexiedge("--help")
    assert "--quiet" in result.stdout and "--verbose" in result.stdout


@pytest.fixture
def restore_logging():
    levels = {name: logging.getLogger(name).level for name in ("transformers", "torch", "huggingface_hub")}
    environ = dict(os.environ)
    with warnings.catch_warnings():
        yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    os.environ.clear()
    os.environ.update(environ)
    from lexiedge import console

    console.configure.__globals__["console"].quiet = False


def test_third_party_warnings_and_logs_are_hidden_by_default(restore_logging, capsys):
    from lexiedge.console import configure

    configure()
    warnings.warn("`is_gradient_checkpointing` is deprecated", FutureWarning, stacklevel=1)
    warnings.warn_explicit("a torch user warning", UserWarning, "x.py", 1, module="torch.nn.modules")
    logging.getLogger("transformers.modeling_utils").warning("a transformers warning")
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"  # transformers' "Loading weights" bar too
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "error"
    captured = capsys.readouterr()
    assert "deprecated" not in captured.err and "torch user warning" not in captured.err
    assert not logging.getLogger("transformers.modeling_utils").isEnabledFor(logging.WARNING)
    assert logging.getLogger("transformers").isEnabledFor(logging.ERROR)


def test_verbose_leaves_third_party_output_alone(restore_logging):
    from lexiedge.console import configure

    for name in ("TRANSFORMERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS"):
        os.environ.pop(name, None)
    logging.getLogger("transformers").setLevel(logging.NOTSET)
    configure(verbose=True)
    assert "TRANSFORMERS_VERBOSITY" not in os.environ and "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ
    assert logging.getLogger("transformers").level == logging.NOTSET
