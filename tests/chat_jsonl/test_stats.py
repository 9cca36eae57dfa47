"""Token-length statistics on real tokenized data, and `lexiedge data stats`."""

from __future__ import annotations

import numpy as np
import pytest

from lexiedge_chat_jsonl import SAMPLE_PATH, load_examples
from lexiedge_chat_jsonl.encoding import token_lengths
from lexiedge_chat_jsonl.stats import length_stats


@pytest.fixture(scope="module")
def sample_lengths(chatml_tokenizer) -> list[int]:
    examples, _ = load_examples(SAMPLE_PATH)
    return token_lengths(chatml_tokenizer, examples)


def test_percentiles_match_numpy_on_tokenized_sample_set(sample_lengths) -> None:
    stats = length_stats(sample_lengths, seq_len=200)
    assert stats["count"] == len(sample_lengths) == 425
    assert stats["mean"] == pytest.approx(np.mean(sample_lengths))
    assert (stats["min"], stats["max"]) == (min(sample_lengths), max(sample_lengths))
    for p in (50, 90, 95, 99):
        assert stats[f"p{p}"] == int(np.percentile(sample_lengths, p, method="inverted_cdf"))
        # nearest rank: at least p% of the examples fit in p-th percentile tokens, fewer fit in one less
        assert np.mean(np.array(sample_lengths) <= stats[f"p{p}"]) >= p / 100
        assert np.mean(np.array(sample_lengths) <= stats[f"p{p}"] - 1) < p / 100
    over = int(np.sum(np.array(sample_lengths) > 200))
    assert 0 < over < len(sample_lengths)
    assert stats["truncated"] == over and stats["truncated_share"] == pytest.approx(
        over / len(sample_lengths)
    )
    assert stats["by_seq_len"][200] == over and stats["by_seq_len"][512] == 0


def test_stats_on_tiny_inputs() -> None:
    stats = length_stats([7])
    assert stats["p50"] == stats["p99"] == stats["max"] == 7 and "truncated" not in stats
    assert length_stats([1, 2, 3, 4], seq_len=2)["truncated"] == 2
    with pytest.raises(ValueError):
        length_stats([])


def test_data_stats_command_with_a_local_tokenizer(cli, tokenizer_dir, sample_lengths) -> None:
    result = cli("data", "stats", "--tokenizer", str(tokenizer_dir), "--seq-len", "200")
    assert result.exit_code == 0, result.stderr
    expected = length_stats(sample_lengths, seq_len=200)
    line = next(line for line in result.stdout.splitlines() if line.lstrip("│ ").startswith("425"))
    assert [cell.strip() for cell in line.strip("│ ").split("│")] == [
        "425", f"{expected['mean']:.1f}", str(expected["min"]),
        *(str(expected[f"p{p}"]) for p in (50, 90, 95, 99)), str(expected["max"]),
    ]  # fmt: skip
    share = expected["truncated_share"]
    assert f"seq_len 200 truncates {expected['truncated']} of 425 examples ({share:.1%})" in result.stdout


def test_data_stats_reads_a_given_file_and_needs_a_tokenizer(cli, tokenizer_dir, write_jsonl) -> None:
    path = write_jsonl([{"instruction": "Say hi.", "output": "Hi!"}, "{bad"])
    result = cli("data", "stats", "--tokenizer", str(tokenizer_dir), "--data", str(path))
    assert result.exit_code == 0, result.stderr
    assert "skipped 1 bad line" in result.stdout and "seq_len 512 truncates 0 of 1 examples" in result.stdout
    missing = cli("data", "stats", "--data", str(path))
    assert missing.exit_code == 2 and "--tokenizer DIR" in missing.stderr
    bad_dir = cli("data", "stats", "--tokenizer", str(path.parent / "nope"))
    assert bad_dir.exit_code == 2 and "not a directory" in bad_dir.stderr


def test_data_stats_with_the_cpu_profile_uses_its_model_tokenizer(cli) -> None:
    from lexiedge.plugin import get_host

    if "qwen-lora" not in get_host().models:
        pytest.skip("the qwen-lora model plugin is not installed yet")
    result = cli("data", "stats", "--profile", "cpu", "--model", "qwen-lora")
    assert result.exit_code == 0, result.stderr
    assert "seq_len 256 truncates" in result.stdout  # the cpu profile's qwen-lora seq_len
