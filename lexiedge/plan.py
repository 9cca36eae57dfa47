"""The memory plan: what training a profile's model will hold in device memory, before training.

Parameters are counted on the real model, built by its plugin with random weights. Activations are
*measured*, not guessed: a forward pass and the trainer's loss run on the CPU at micro-batch 1 and 2
under ``torch.autograd.graph.saved_tensors_hooks``, which sees every tensor autograd keeps for the
backward pass; their bytes (each storage counted once, parameters excluded) grow linearly with the
batch, so two points give the fixed part and the per-sample part. With fp16/bf16 profiles the pass
runs under CPU bf16 autocast, so saved tensors have the half-precision sizes a GPU run would keep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from lexiedge.api import BuiltModel, ModelPlugin, TrainerPlugin
from lexiedge.profile import DeviceSpec, Profile

GB = 1024**3
MB = 1024**2
ACTIVATION_METHOD = (
    "measured: bytes of the tensors autograd saves for backward (saved_tensors_hooks) in a CPU "
    "forward + loss at micro-batch 1 and 2, extrapolated linearly in the batch"
)

# Optimizer state bytes per trainable parameter.
OPTIMIZER_STATE_BYTES = {
    "adamw": 8.0,  # exp_avg + exp_avg_sq in fp32
    "adamw-8bit": 2.0 + 8.0 / 256,  # two uint8 states + fp32 absmax per 256-value block (bitsandbytes)
}


@dataclass
class ActivationProfile:
    fixed_bytes: float
    per_sample_bytes: float
    method: str = ACTIVATION_METHOD

    def at(self, batch: int) -> float:
        return max(0.0, self.fixed_bytes + self.per_sample_bytes * batch)


@dataclass
class MemoryPlan:
    profile: str
    model_key: str
    model_plugin: str
    device: DeviceSpec
    precision: str
    params_total: int
    params_trainable: int
    param_groups: dict[str, int]
    weights_bytes: float
    gradients_bytes: float
    optimizer: str
    optimizer_bytes: dict[str, float]
    activations: ActivationProfile
    batch_bytes_per_sample: float
    micro_batch: int
    grad_accum: int
    auto_batch: bool
    notes: list[str] = field(default_factory=list)

    @property
    def effective_batch(self) -> int:
        return self.micro_batch * self.grad_accum

    @property
    def budget_bytes(self) -> float:
        return (self.device.memory_gb - self.device.reserve_gb) * GB

    def total_bytes(self, batch: int | None = None) -> float:
        batch = self.micro_batch if batch is None else batch
        return (
            self.weights_bytes
            + self.gradients_bytes
            + self.optimizer_bytes[self.optimizer]
            + self.activations.at(batch)
            + self.batch_bytes_per_sample * batch
        )

    @property
    def fits(self) -> bool:
        return self.micro_batch >= 1 and self.total_bytes() <= self.budget_bytes

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "model": self.model_key,
            "params_total": self.params_total,
            "params_trainable": self.params_trainable,
            "param_groups": self.param_groups,
            "precision": self.precision,
            "micro_batch": self.micro_batch,
            "grad_accum": self.grad_accum,
            "weights_bytes": self.weights_bytes,
            "gradients_bytes": self.gradients_bytes,
            "optimizer": self.optimizer,
            "optimizer_bytes": self.optimizer_bytes,
            "activation_bytes": self.activations.at(self.micro_batch),
            "batch_bytes": self.batch_bytes_per_sample * self.micro_batch,
            "total_bytes": self.total_bytes(),
            "budget_bytes": self.budget_bytes,
            "fits": self.fits,
            "activation_method": self.activations.method,
        }


def training_precision(device: DeviceSpec, requested: str) -> str:
    """The precision a run uses: the trainer's setting, else the device's; CPUs train in fp32."""
    precision = device.precision if requested == "auto" else requested
    return "fp32" if device.kind == "cpu" else precision


def measure_activations(
    built: BuiltModel,
    model_plugin: ModelPlugin,
    trainer: TrainerPlugin,
    model_settings: Any,
    data_settings: Any,
    precision: str,
) -> tuple[ActivationProfile, float]:
    """Saved-for-backward bytes at batch 1 and 2, and the bytes of one sample's input batch."""
    import torch

    module = built.module
    module.train()
    parameter_storages = {p.untyped_storage().data_ptr() for p in module.parameters()}

    def saved_bytes(batch_size: int) -> tuple[float, float]:
        batch = model_plugin.example_batch(built, model_settings, data_settings, batch_size)
        batch_bytes = sum(t.numel() * t.element_size() for t in batch.values() if isinstance(t, torch.Tensor))
        seen: dict[int, int] = {}

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            storage = tensor.untyped_storage()
            pointer = storage.data_ptr()
            if pointer not in parameter_storages and pointer not in seen:
                seen[pointer] = storage.nbytes()
            return tensor

        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision in ("fp16", "bf16"))
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor), autocast:
            loss = trainer.loss(built, batch)
        del loss
        return float(sum(seen.values())), float(batch_bytes)

    torch.manual_seed(0)
    one, batch_one = saved_bytes(1)
    two, batch_two = saved_bytes(2)
    per_sample = max(two - one, 0.0)
    return ActivationProfile(fixed_bytes=one - per_sample, per_sample_bytes=per_sample), batch_two - batch_one


def largest_fitting_batch(plan: MemoryPlan, limit: int) -> int:
    """The largest micro-batch <= limit whose total fits the budget (0 when none does)."""
    best = 0
    for batch in range(1, limit + 1):
        if plan.total_bytes(batch) <= plan.budget_bytes:
            best = batch
        else:
            break
    return best


def plan_profile(profile: Profile, model_key: str) -> MemoryPlan:
    """Build the model with random weights, measure it, and fit the batch to the budget."""
    from lexiedge.plugin import get_host

    host = get_host()
    entry = profile.model(model_key)
    model_plugin = host.models.get(entry.model.plugin)
    trainer = host.trainers.get(entry.train.plugin)
    train_settings = entry.train.settings
    precision = training_precision(profile.device, getattr(train_settings, "precision", "auto"))
    built = model_plugin.build(entry.model.settings, profile.device, pretrained=False)
    module = built.module
    trainable = trainer.trainable_parameters(built)
    trainable_ids = {id(p) for p in trainable}
    params_total = sum(p.numel() for p in module.parameters())
    params_trainable = sum(p.numel() for p in trainable)
    mixed = precision in ("fp16", "bf16")
    # Trainable weights stay fp32 under autocast (the optimizer updates fp32 masters); frozen ones are
    # held in whatever dtype the plugin built them in.
    weights = sum(
        p.numel() * (4 if id(p) in trainable_ids and mixed else p.element_size()) for p in module.parameters()
    )
    gradients = params_trainable * 4.0
    optimizer_bytes = {name: params_trainable * size for name, size in OPTIMIZER_STATE_BYTES.items()}
    notes: list[str] = []
    if params_trainable < params_total:
        optimizer_bytes["adamw (full fine-tune, for comparison)"] = params_total * OPTIMIZER_STATE_BYTES["adamw"]
        notes.append(f"only {params_trainable / params_total:.2%} of the parameters train (adapter)")
    activations, batch_per_sample = measure_activations(
        built, model_plugin, trainer, entry.model.settings, entry.data.settings, precision
    )
    auto = train_settings.batch_size == "auto"
    plan = MemoryPlan(
        profile=profile.name,
        model_key=model_key,
        model_plugin=entry.model.plugin,
        device=profile.device,
        precision=precision,
        params_total=params_total,
        params_trainable=params_trainable,
        param_groups=model_plugin.parameter_groups(module),
        weights_bytes=float(weights),
        gradients_bytes=gradients,
        optimizer=train_settings.optimizer,
        optimizer_bytes=optimizer_bytes,
        activations=activations,
        batch_bytes_per_sample=batch_per_sample,
        micro_batch=1 if auto else int(train_settings.batch_size),
        grad_accum=train_settings.grad_accum,
        auto_batch=auto,
        notes=notes,
    )
    if auto:
        effective = int(train_settings.effective_batch)
        plan.micro_batch = largest_fitting_batch(plan, effective)
        plan.grad_accum = math.ceil(effective / plan.micro_batch) if plan.micro_batch else 0
        if plan.micro_batch and plan.effective_batch != effective:
            notes.append(f"effective batch {plan.effective_batch} (asked {effective}: not a multiple of the micro-batch)")
    else:
        room = largest_fitting_batch(plan, 4096)
        if room > plan.micro_batch:
            notes.append(f"the budget would allow a micro-batch of up to {room}")
    return plan


def _size(value: float) -> str:
    return f"{value / GB:.2f} GB" if value >= 0.1 * GB else f"{value / MB:.1f} MB"


def render_plan(plan: MemoryPlan, console: Console) -> None:
    device = plan.device
    title = (
        f"{plan.model_key} on {plan.profile}: {device.name or device.kind}, {device.memory_gb:g} GB, {plan.precision}"
    )
    params = Table(title=title, show_header=True)
    params.add_column("parameters")
    params.add_column("count", justify="right")
    for group, count in plan.param_groups.items():
        params.add_row(f"  {group}", f"{count:,}")
    params.add_row("total", f"{plan.params_total:,}")
    params.add_row("trainable", f"{plan.params_trainable:,}")
    console.print(params)

    memory = Table(show_header=True)
    memory.add_column("memory")
    memory.add_column("bytes", justify="right")
    memory.add_column("how")
    memory.add_row("weights", _size(plan.weights_bytes), "trainable fp32 + frozen as built")
    memory.add_row("gradients", _size(plan.gradients_bytes), "fp32, trainable parameters")
    for name, size in plan.optimizer_bytes.items():
        chosen = name == plan.optimizer
        memory.add_row(
            f"optimizer: {name}" + (" (chosen)" if chosen else ""),
            _size(size),
            "counted in total" if chosen else "alternative",
            style=None if chosen else "dim",
        )
    memory.add_row(
        "activations",
        _size(plan.activations.at(plan.micro_batch)),
        f"{_size(plan.activations.per_sample_bytes)}/sample + {_size(max(plan.activations.fixed_bytes, 0))} fixed",
    )
    memory.add_row("batch data", _size(plan.batch_bytes_per_sample * plan.micro_batch), f"micro-batch {plan.micro_batch}")
    memory.add_row("total", _size(plan.total_bytes()), "", style="bold")
    memory.add_row(
        "budget", _size(plan.budget_bytes), f"{device.memory_gb:g} GB - {device.reserve_gb:g} GB reserve"
    )
    console.print(memory)
    verdict = "[green]fits[/]" if plan.fits else "[red]does not fit[/]"
    batch = f"micro-batch {plan.micro_batch} x grad_accum {plan.grad_accum} = effective {plan.effective_batch}"
    console.print(f"{verdict}: {batch}" + (" (batch_size auto)" if plan.auto_batch else ""))
    console.print(f"activations: {plan.activations.method}", style="dim")
    for note in plan.notes:
        console.print(f"note: {note}", style="dim")
