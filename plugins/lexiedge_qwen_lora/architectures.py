"""Qwen2 architectures known without the network.

`random:<name>` bases are built from these dims with random weights (tests, demos, planning);
the hub table lets `lexiedge plan` size a hub base offline (sizes do not depend on weight values).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

RANDOM_PREFIX = "random:"
QWEN_VOCAB = 151936


@dataclass(frozen=True)
class Qwen2Dims:
    """The numbers that fix a Qwen2 decoder's shapes."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    vocab_size: int | None  # None: the tokenizer's size (tiny models are trained with their tokenizer)
    tie_word_embeddings: bool = True
    rope_theta: float = 1_000_000.0
    max_position_embeddings: int = 32768
    rms_norm_eps: float = 1e-6

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


QWEN2_TINY = Qwen2Dims(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=128,
    vocab_size=None,
    max_position_embeddings=4096,
)
QWEN2_5_0_5B = Qwen2Dims(
    hidden_size=896,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    intermediate_size=4864,
    vocab_size=QWEN_VOCAB,
)
QWEN2_5_1_5B = Qwen2Dims(
    hidden_size=1536,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    intermediate_size=8960,
    vocab_size=QWEN_VOCAB,
)

RANDOM_ARCHITECTURES: dict[str, Qwen2Dims] = {"qwen2-tiny": QWEN2_TINY, "qwen2.5-0.5b": QWEN2_5_0_5B}

# Hub names `lexiedge plan` can size offline (published config.json values).
HUB_ARCHITECTURES: dict[str, Qwen2Dims] = {
    "Qwen/Qwen2.5-0.5B": QWEN2_5_0_5B,
    "Qwen/Qwen2.5-0.5B-Instruct": QWEN2_5_0_5B,
    "Qwen/Qwen2.5-1.5B": QWEN2_5_1_5B,
    "Qwen/Qwen2.5-1.5B-Instruct": QWEN2_5_1_5B,
}


def random_architecture(base: str) -> Qwen2Dims:
    """The dims of a `random:<name>` base; an unknown name lists the known ones."""
    from lexiedge.errors import UsageError

    name = base[len(RANDOM_PREFIX) :]
    try:
        return RANDOM_ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(RANDOM_PREFIX + n for n in RANDOM_ARCHITECTURES)
        raise UsageError(f"unknown random architecture {base!r}; known: {known}") from None


def qwen2_config(dims: Qwen2Dims, *, vocab_size: int, bos_id: int, eos_id: int, pad_id: int):
    """A transformers Qwen2Config for ``dims`` (vocab from the tokenizer when dims leave it open)."""
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=dims.vocab_size or vocab_size,
        hidden_size=dims.hidden_size,
        num_hidden_layers=dims.num_hidden_layers,
        num_attention_heads=dims.num_attention_heads,
        num_key_value_heads=dims.num_key_value_heads,
        intermediate_size=dims.intermediate_size,
        hidden_act="silu",
        max_position_embeddings=dims.max_position_embeddings,
        rms_norm_eps=dims.rms_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": dims.rope_theta},
        tie_word_embeddings=dims.tie_word_embeddings,
        use_sliding_window=False,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
