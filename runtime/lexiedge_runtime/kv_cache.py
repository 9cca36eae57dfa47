"""The KV cache a :class:`~lexiedge_runtime.generator.TextGenerator` keeps between calls.

A chat re-sends the system prompt and the whole history every turn. ONNX Runtime GenAI's
``Generator`` holds its keys and values in ORT and ``rewind_to(n)`` drops everything after the first
``n`` tokens, so the runtime keeps the last call's generator and, on the next call, rewinds it to the
longest common prefix of the token ids it holds and the new prompt, then prefills only the rest (what
llama.cpp's server does with its slots). The answer is the one a fresh generator gives: the kept
keys and values are those a fresh prefill computes (equal up to float rounding, ~1e-6 in the logits).

One kept generator per loaded model, leased to one call at a time (:class:`CacheSlot`); a call that
finds it leased runs on a generator of its own, so two threads never share a GenAI generator.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Tokens the kept cache holds unless the caller says otherwise: bounded well below Qwen2.5's 32k
# context because GenAI allocates (and zeroes) the whole buffer up front; 4096 tokens of the 0.5B
# model's fp32 keys and values are ~100 MB (24 layers x 2 x 2 KV heads x 64 x 4 bytes per token).
DEFAULT_CACHE_TOKENS = 4096


@dataclass(frozen=True)
class SearchSettings:
    """What a GenAI generator is created with and cannot change afterwards."""

    do_sample: bool = False
    temperature: float = 0.0
    top_p: float = 1.0


@dataclass
class KeptGenerator:
    """A GenAI generator and the token ids whose keys and values it holds, in order.

    A generated token's keys and values are computed only when the *next* token is generated, so the
    last token of a generation is never in ``ids`` (GenAI's own sequence may be one longer).
    """

    generator: Any
    settings: SearchSettings
    ids: list[int] = field(default_factory=list)


class CacheSlot:
    """The one kept generator of a model, leased to one call at a time.

    ``try_lease`` never blocks: a call that finds the slot leased (another thread's generation, or a
    stream not yet finished) runs without it. A lease ends with :meth:`release`, from any thread.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity  # the kept generator's max_length: prompt + new tokens must fit
        self.kept: KeptGenerator | None = None
        self._lease = threading.Lock()  # a Lock, not an RLock: a stream may be closed by another thread
        self._drop_on_release = False

    def try_lease(self) -> bool:
        return self._lease.acquire(blocking=False)

    def release(self) -> None:
        if self._drop_on_release:
            self.kept, self._drop_on_release = None, False
        self._lease.release()

    def clear(self) -> None:
        """Free the kept cache now, or when the call holding it ends."""
        if self.try_lease():
            self.kept = None
            self.release()
        else:
            self._drop_on_release = True


def common_prefix_length(kept: Sequence[int], prompt: Sequence[int], limit: int) -> int:
    """How many leading ids ``kept`` and ``prompt`` share, at most ``limit``."""
    length = 0
    for a, b in zip(kept[:limit], prompt[:limit]):
        if a != b:
            break
        length += 1
    return length


def prefill(kept: KeptGenerator, prompt: Sequence[int], *, need_logits: bool = True) -> int:
    """Rewind ``kept`` to what it shares with ``prompt`` and append the rest; returns the reused count.

    With ``need_logits`` (a generation follows) the last prompt token is always run again even when
    the cache holds it: its logits give the first new token, and GenAI keeps no logits across calls.
    Afterwards ``kept.ids`` is ``prompt``. On an exception ``kept`` is left unusable: drop it.
    """
    limit = len(prompt) - 1 if need_logits else len(prompt)
    reused = common_prefix_length(kept.ids, prompt, limit)
    kept.generator.rewind_to(reused)
    del kept.ids[reused:]
    if reused < len(prompt):
        kept.generator.append_tokens(np.asarray([list(prompt[reused:])], dtype=np.int32))
    kept.ids[:] = prompt
    return reused
