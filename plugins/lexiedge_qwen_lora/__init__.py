"""qwen-lora: Qwen2.5(-Instruct) + LoRA (peft) for the English-tutor app, and merging its adapter.

Heavy imports (torch, transformers, peft) happen inside functions, so registering the plugin
(`lexiedge plugins`, profile validation) stays fast.
"""

from __future__ import annotations
