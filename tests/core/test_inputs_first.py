"""Bad --data is reported before anything heavy loads: no model build, no tokenizer, no hub, no run directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def nothing_heavy(monkeypatch):
    """Building a model, loading a tokenizer or reaching the hub fails the test."""
    from lexiedge import hub
    from lexiedge_qwen_lora.model import QwenLoraPlugin

    def heavy(*_args, **_kwargs):
        raise AssertionError("loaded a model, a tokenizer or the hub before checking --data")

    monkeypatch.setattr(QwenLoraPlugin, "build", heavy)
    monkeypatch.setattr(QwenLoraPlugin, "tokenizer", heavy)
    monkeypatch.setattr(hub, "load_from_hub", heavy)


def _one_line_error(result, *words: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_data_stats_missing_data(cli, nothing_heavy, tmp_path):
    missing = tmp_path / "nope.jsonl"
    _one_line_error(cli("data", "stats", "--profile", "t4-16gb", "--data", str(missing)), "--data", str(missing))


def test_train_missing_data(cli, nothing_heavy, tmp_path):
    missing = tmp_path / "nope.jsonl"
    result = cli("train", "--profile", "t4-16gb", "--model", "qwen-lora", "--data", str(missing),
                 "--out", str(tmp_path / "run"))
    _one_line_error(result, "--data", str(missing))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("content", ["", "not json\n", '{"text": "no messages"}\n'])
def test_train_unusable_data_fails_before_the_model_and_the_run_directory(cli, nothing_heavy, tmp_path, content):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    result = cli("train", "--profile", "t4-16gb", "--model", "qwen-lora", "--data", str(bad),
                 "--out", str(tmp_path / "run"))
    _one_line_error(result, str(bad))
    assert not (tmp_path / "run").exists()


def test_train_empty_data_folder(cli, nothing_heavy, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    result = cli("train", "--profile", "t4-16gb", "--model", "qwen-lora", "--data", str(folder),
                 "--out", str(tmp_path / "run"))
    _one_line_error(result, str(folder))


def test_eval_missing_data(cli, nothing_heavy, tmp_path):
    missing = tmp_path / "nope.jsonl"
    _one_line_error(cli("eval", str(tmp_path / "run"), "--data", str(missing)), "--data", str(missing))


def test_export_missing_data(cli, nothing_heavy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no runs/ here: the --data check must come first anyway
    missing = tmp_path / "nope.jsonl"
    _one_line_error(cli("export", "--profile", "cpu", "--data", str(missing)), "--data", str(missing))
    _one_line_error(cli("export", "--run", str(tmp_path / "run"), "--data", str(missing)), "--data", str(missing))


def test_the_bundled_set_passes_the_check():
    from lexiedge.plugin import get_host
    from lexiedge_chat_jsonl.settings import ChatJsonlSettings

    get_host().datasets.get("chat-jsonl").check_source(ChatJsonlSettings(), None)  # no error


def test_default_check_source_accepts_anything(tmp_path: Path):
    from lexiedge.api import DatasetPlugin

    class LoadsAndReports(DatasetPlugin):  # a plugin without check_source: load reports its own errors
        name = "loads-and-reports"
        tasks = frozenset({"av-classification"})

        def load(self, settings, source, **_):
            raise NotImplementedError

    plugin = LoadsAndReports()
    plugin.check_source(plugin.Settings(), tmp_path)


def test_an_empty_ravdess_folder_is_refused_before_anything_loads(cli, nothing_heavy, tmp_path):
    _one_line_error(cli("train", "--profile", "cpu", "--model", "emotion-av", "--data", str(tmp_path)),
                    str(tmp_path), "no usable RAVDESS clips")
