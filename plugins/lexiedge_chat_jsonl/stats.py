"""Token-length statistics: the numbers to choose ``seq_len`` from (the seeds chose 512 to cover 90%+).

:func:`length_stats` is pure (lengths in, numbers out); :func:`stats_tables` only lays them out.
Percentiles are nearest-rank: ``p90`` is an actual example length such that at least 90% of the
examples are no longer than it, so "seq_len >= p90" reads directly as "covers 90%".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

PERCENTILES = (50, 90, 95, 99)
CANDIDATE_SEQ_LENS = (128, 256, 384, 512, 768, 1024, 2048)


def nearest_rank_percentile(sorted_lengths: Sequence[int], percent: float) -> int:
    """The smallest value with at least ``percent``% of the values at or below it."""
    if not sorted_lengths:
        raise ValueError("no lengths")
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be in (0, 100], got {percent}")
    rank = math.ceil(percent / 100 * len(sorted_lengths))
    return sorted_lengths[rank - 1]


def truncated_share(sorted_lengths: Sequence[int], seq_len: int) -> tuple[int, float]:
    """How many examples (and which share) are longer than ``seq_len``."""
    over = sum(1 for length in sorted_lengths if length > seq_len)
    return over, over / len(sorted_lengths)


def length_stats(lengths: Iterable[int], seq_len: int | None = None) -> dict[str, Any]:
    """count, mean, min, p50/p90/p95/p99, max; with ``seq_len`` also how many it would truncate.

    ``by_seq_len`` maps common lengths (and ``seq_len``) to the number they would truncate.
    """
    ordered = sorted(int(length) for length in lengths)
    if not ordered:
        raise ValueError("no lengths: there is nothing to describe")
    stats: dict[str, Any] = {
        "count": len(ordered),
        "mean": sum(ordered) / len(ordered),
        "min": ordered[0],
        **{f"p{p}": nearest_rank_percentile(ordered, p) for p in PERCENTILES},
        "max": ordered[-1],
    }
    candidates = sorted({*CANDIDATE_SEQ_LENS, *([seq_len] if seq_len else [])})
    stats["by_seq_len"] = {n: truncated_share(ordered, n)[0] for n in candidates}
    if seq_len is not None:
        stats["seq_len"] = seq_len
        stats["truncated"], stats["truncated_share"] = truncated_share(ordered, seq_len)
    return stats


def stats_tables(stats: dict[str, Any], title: str) -> list[Any]:
    """Two rich tables: the distribution, and what each candidate seq_len would truncate."""
    from rich.table import Table

    distribution = Table(title=title, title_justify="left")
    for column in ("examples", "mean", "min", *(f"p{p}" for p in PERCENTILES), "max"):
        distribution.add_column(column, justify="right")
    distribution.add_row(
        str(stats["count"]),
        f"{stats['mean']:.1f}",
        str(stats["min"]),
        *(str(stats[f"p{p}"]) for p in PERCENTILES),
        str(stats["max"]),
    )
    chosen = stats.get("seq_len")
    truncation = Table(title="examples a seq_len would truncate", title_justify="left")
    for column in ("seq_len", "truncated", "share", "covers"):
        truncation.add_column(column, justify="right")
    count = stats["count"]
    for seq_len, over in stats["by_seq_len"].items():
        if seq_len > 2 * stats["max"] and seq_len != chosen:
            continue  # far past the longest example: nothing to learn from the row
        style = "bold" if seq_len == chosen else None
        truncation.add_row(
            f"{seq_len}{' (chosen)' if seq_len == chosen else ''}",
            str(over),
            f"{over / count:.1%}",
            f"{1 - over / count:.1%}",
            style=style,
        )
    return [distribution, truncation]
