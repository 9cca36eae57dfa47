"""The `qwen-lora` model plugin: a Qwen2-family causal LM with a peft LoRA adapter."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lexiedge.api import (
    BlockStack,
    BuiltModel,
    Choice,
    FloatRange,
    IntRange,
    ModelPlugin,
    PluginSettings,
    SearchParam,
)
from lexiedge.errors import UsageError
from lexiedge_qwen_lora.base import (
    base_layers,
    base_record,
    load_base_model,
    load_tokenizer,
    resolve_base,
    write_base_record,
)
from lexiedge_qwen_lora.settings import QwenLoraSettings
from lexiedge_runtime.tasks import causal_lm as lm_task

if TYPE_CHECKING:
    import torch
    from rich.console import Console

    from lexiedge.profile import DeviceSpec, ModelEntry

LORA_MARKER = "lora_"
DECODER_LAYERS = "decoder layers"  # the block stack the memory plan cuts down


def linear_layer_names(model: torch.nn.Module) -> set[str]:
    """The last name part of every Linear-like layer (what LoRA ``target_modules`` match)."""
    import torch

    return {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) or type(module).__name__.startswith("Linear")
    }


def apply_lora(model: torch.nn.Module, settings: QwenLoraSettings) -> torch.nn.Module:
    """Freeze the base and wrap the target layers with LoRA adapters (peft)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    available = linear_layer_names(model)
    missing = [name for name in settings.lora.target_modules if name not in available]
    if missing:
        raise UsageError(
            f"lora.target_modules {missing} match no Linear layer of {settings.base}; "
            f"its Linear layers: {', '.join(sorted(available))}"
        )
    if settings.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=settings.gradient_checkpointing)
    elif settings.gradient_checkpointing:
        # Non-reentrant checkpointing handles frozen inputs; input grads keep the reentrant path working too.
        enable = getattr(model, "activation_checkpointing_enable", None)  # transformers >= 5.2x name
        if enable is not None:
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.config.use_cache = False  # training never reuses past keys; the cache only costs memory
    config = LoraConfig(
        r=settings.lora.r,
        lora_alpha=settings.lora.alpha,
        lora_dropout=settings.lora.dropout,
        target_modules=list(settings.lora.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def split_parameter_counts(module: torch.nn.Module) -> tuple[int, int]:
    """(base, adapter) parameter counts; tied weights counted once."""
    base = lora = 0
    for name, parameter in module.named_parameters():
        if LORA_MARKER in name:
            lora += parameter.numel()
        else:
            base += parameter.numel()
    return base, lora


class QwenLoraPlugin(ModelPlugin):
    """Qwen2.5(-Instruct) + LoRA for the English-tutor chat model."""

    name: ClassVar[str] = "qwen-lora"
    description: ClassVar[str] = "Qwen2.5 causal LM fine-tuned with a LoRA adapter (peft); QLoRA on CUDA"
    Settings: ClassVar[type[PluginSettings]] = QwenLoraSettings
    task: ClassVar[str] = lm_task.NAME
    supports_merge: ClassVar[bool] = True

    def build(self, settings: PluginSettings, device: DeviceSpec, *, pretrained: bool = True) -> BuiltModel:
        return self._build(settings, device, pretrained=pretrained)

    def search_space(self, entry: ModelEntry) -> list[SearchParam]:
        """`lexiedge tune`'s default: the rate around the profile's, the adapter's rank, scale and dropout,
        epochs (scored by validation loss, minimised)."""
        lr = float(getattr(entry.train.settings, "lr", 2e-4))
        epochs = int(getattr(entry.train.settings, "epochs", 2))
        return [
            FloatRange.around("train.lr", lr),
            Choice("model.lora.r", (4, 8, 16, 32)),
            Choice("model.lora.alpha", (8, 16, 32, 64)),
            FloatRange("model.lora.dropout", 0.0, 0.1),
            IntRange("train.epochs", 1, max(2, epochs * 2)),
        ]

    def block_stacks(self, settings: PluginSettings) -> list[BlockStack]:
        """The decoder layers: planning the 0.5B then builds 1 and 2 of its 24 layers."""
        assert isinstance(settings, QwenLoraSettings)
        if settings.load_in_4bit:  # bitsandbytes quantizes while loading real weights: plan the whole model
            return []
        return [BlockStack(DECODER_LAYERS, base_layers(resolve_base(settings, weights=False)))]

    def build_with_depths(self, settings: PluginSettings, device: DeviceSpec, depths: dict[str, int]) -> BuiltModel:
        return self._build(settings, device, pretrained=False, layers=depths[DECODER_LAYERS])

    def _build(
        self, settings: PluginSettings, device: DeviceSpec, *, pretrained: bool, layers: int | None = None
    ) -> BuiltModel:
        assert isinstance(settings, QwenLoraSettings)
        source = resolve_base(settings, weights=pretrained)
        tokenizer = load_tokenizer(source, pretrained=pretrained)
        base = load_base_model(source, settings, device, tokenizer, pretrained=pretrained, layers=layers)
        record = base_record(source, settings, base)  # before LoRA renames the base's modules
        module = apply_lora(base, settings)
        return BuiltModel(
            module=module,
            tokenizer=tokenizer,
            extras={
                "base": source.location,
                "base_record": record,
                # The trainer calls this with the run directory so `merge` can get the same base back.
                "save_to_run": partial(write_base_record, record),
            },
        )

    def tokenizer(self, settings: PluginSettings) -> Any:
        """The base's tokenizer alone (what `lexiedge data stats` needs): no weights are loaded."""
        assert isinstance(settings, QwenLoraSettings)
        return load_tokenizer(resolve_base(settings, weights=False), pretrained=True)

    def example_batch(
        self, built: BuiltModel, settings: PluginSettings, data_settings: PluginSettings, batch_size: int
    ) -> dict[str, torch.Tensor]:
        """Full rows of ``seq_len`` tokens: two packed examples per row, or one padded example."""
        import torch

        assert isinstance(settings, QwenLoraSettings)
        length = settings.seq_len
        generator = torch.Generator().manual_seed(0)
        vocab = len(built.tokenizer) if built.tokenizer is not None else built.module.config.vocab_size
        input_ids = torch.randint(0, vocab, (batch_size, length), generator=generator)
        packing = bool(getattr(data_settings, "packing", True))
        lengths = [length // 2, length - length // 2] if packing else [length]
        position_ids = torch.cat([torch.arange(n) for n in lengths]).expand(batch_size, length).clone()
        # Roughly the tutor data's shape: the prompt first, the assistant's answer (the labelled part) after it.
        assistant = torch.cat([torch.arange(n) >= n // 3 for n in lengths]).expand(batch_size, length)
        batch = {
            "input_ids": input_ids,
            "labels": input_ids.masked_fill(~assistant, -100),
            "position_ids": position_ids,
        }
        if not packing:
            batch["attention_mask"] = torch.ones_like(input_ids)
        return batch

    def parameter_groups(self, module: torch.nn.Module) -> dict[str, int]:
        base, lora = split_parameter_counts(module)
        return {"base (frozen)": base, "lora (trainable)": lora}

    def merge(self, run_dir: Path, out_dir: Path, console: Console) -> dict[str, Any]:
        from lexiedge_qwen_lora.merge import merge_adapter

        return merge_adapter(Path(run_dir), Path(out_dir), console)
