"""Caveats printed beside results of the tiny models the cpu profile and the tests build, where a reader
sees the result (not only in the demo's report): a degenerate tutor reply, a speed-up that is mostly
PyTorch's per-call overhead."""

from __future__ import annotations

from typing import Any

TINY_LM_HIDDEN = 256  # narrower than any released LM: the cpu profile's built tutor base is 64 wide
OVERHEAD_BOUND_BYTES = 8 * 2**20  # below ~8 MB of weights an eager PyTorch call is mostly framework overhead


def tiny_lm_note(manifest: dict[str, Any]) -> str | None:
    """For an LLM artifact exported from a test-sized base (the cpu profile's), one line saying what its replies are."""
    architecture = manifest.get("architecture") or {}
    hidden, layers = architecture.get("hidden_size"), architecture.get("num_hidden_layers")
    if not isinstance(hidden, int) or hidden >= TINY_LM_HIDDEN:
        return None
    return (f"note: a {layers}-layer, {hidden}-wide test-sized model (the cpu profile's tutor base): its replies "
            "show that the pipeline runs, not what the tutor says; train qwen-lora with rtx3050-4gb or t4-16gb "
            "(Qwen2.5-0.5B) for real ones")


def overhead_note(model_bytes: int, compared_with_torch: bool) -> str | None:
    """For `lexiedge bench` of a small model against eager PyTorch: the speed-ups are mostly overhead."""
    if not compared_with_torch or model_bytes >= OVERHEAD_BOUND_BYTES:
        return None
    return (f"note: with {model_bytes / 2**20:.1f} MB of weights, an eager PyTorch call is mostly framework "
            "overhead: speed-ups over torch this large do not carry over to a bigger model (compare the ORT "
            "backends with each other)")
