"""causal-lm-lora: LoRA fine-tuning of causal LMs on chat data with the shared training engine."""

from __future__ import annotations
