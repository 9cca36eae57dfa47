"""What the README says about data, caches and scale-out matches the code."""

from __future__ import annotations

from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_bundled_tutor_set_is_where_and_what_the_readme_says():
    from lexiedge_chat_jsonl.dataset import SAMPLE_PATH
    from lexiedge_chat_jsonl.examples import load_examples

    root = Path(__file__).resolve().parents[2]
    assert SAMPLE_PATH.relative_to(root).as_posix() in README
    examples, bad = load_examples(SAMPLE_PATH)
    assert not bad and f"{len(examples)} English-tutor conversations" in README
    assert "--data tutor.jsonl" not in README  # no such file ships


def test_the_cache_location_is_the_code_s(monkeypatch, tmp_path):
    from lexiedge.cache import cache_dir
    from lexiedge_qwen_lora.tiny import cache_root

    assert "`~/.cache/lexiedge`" in README and "`$LEXIEDGE_CACHE`" in README
    monkeypatch.setenv("LEXIEDGE_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path and cache_root() == tmp_path
    monkeypatch.delenv("LEXIEDGE_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "lexiedge" == cache_root()


def test_scale_out_names_the_tested_command():
    assert "torchrun --nproc-per-node 4 -m lexiedge train --profile" in README
    assert (Path(__file__).resolve().parents[2] / "lexiedge" / "__main__.py").is_file()
