"""The memory plan: what training a profile's model will hold in device memory, before training.

Parameters are counted on the real model, built by its plugin with random weights. Activations are
*measured*, not guessed: a forward pass and the trainer's loss run at micro-batch 1 and 2 under
``torch.autograd.graph.saved_tensors_hooks``, which sees every tensor autograd keeps for the
backward pass; their bytes (each storage counted once, parameters excluded) grow linearly with the
batch, so two points give the fixed part and the per-sample part. The pass runs on fake tensors
(torch's FakeTensorMode: every op computes its result's shape and dtype, no arithmetic), and on the
CPU for real only where a model's code needs values. With fp16/bf16 profiles it runs under CPU bf16
autocast, so saved tensors have the half-precision sizes a GPU run would keep.

A large model is never built whole: its plugin names its stacks of repeated blocks (a decoder's
layers), the plan measures the model with 1 and 2 of them, and every size, being linear in depth,
extrapolates exactly. Planning the 0.5B decoder then takes a second and little memory on a laptop.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from lexiedge.api import BuiltModel, ModelPlugin, TrainerPlugin
from lexiedge.profile import DeviceSpec, Profile

if TYPE_CHECKING:
    import torch

GB = 1024**3
MB = 1024**2
_MEASURED = "measured: bytes of the tensors autograd saves for backward (saved_tensors_hooks) in a forward + loss"
_IN_BATCH = "at micro-batch 1 and 2, extrapolated linearly in the batch"
FAKE_PASS = f"{_MEASURED} on fake tensors (shapes and dtypes, no arithmetic) {_IN_BATCH}"
REAL_PASS = f"{_MEASURED} on the CPU {_IN_BATCH}"

# Optimizer state bytes per trainable parameter.
OPTIMIZER_STATE_BYTES = {
    "adamw": 8.0,  # exp_avg + exp_avg_sq in fp32
    "adamw-8bit": 2.0 + 8.0 / 256,  # two uint8 states + fp32 absmax per 256-value block (bitsandbytes)
}


@dataclass
class ActivationProfile:
    fixed_bytes: float
    per_sample_bytes: float
    method: str = REAL_PASS

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
    progress: Callable[[str], None] = lambda line: None,
    *,
    fake: bool = True,
) -> tuple[ActivationProfile, float]:
    """Saved-for-backward bytes at batch 1 and 2, and the bytes of one sample's input batch.

    The pass runs on fake weights first (:func:`fake_weights`): every op computes only the shape and
    dtype of its result, so a 0.5B decoder's forward and loss cost milliseconds and no memory. The sizes
    are torch's shape rules', the real kernels' but for one: layer_norm's saved mean and rstd come out
    in the input's dtype (bf16 under autocast) where the CPU and CUDA kernels keep fp32, 2 bytes per
    normalised row (0.02% of the rtx3050-4gb emotion-av's activations). Code that needs values (a Python ``int`` of a
    tensor computed from the weights, an op with no shape rule) cannot run on fake tensors: then the
    same pass runs for real on the CPU (``fake=False``: only that). Either way the caller's model keeps
    its own weights, and the trainer's bookkeeping (running accuracy, token counts) happens on a copy.
    """
    def one_pass(method: str) -> tuple[ActivationProfile, float]:
        return _saved_tensor_bytes(
            built, model_plugin, copy.deepcopy(trainer), model_settings, data_settings, precision, method
        )

    if fake:
        try:
            with fake_weights(built.module):
                return one_pass(FAKE_PASS)
        except Exception as error:
            reason = f"{type(error).__name__}: {error}".splitlines()[0][:160]
            progress(f"  fake-tensor pass not possible ({reason}); measuring on the CPU instead")
    return one_pass(REAL_PASS)


@contextmanager
def fake_weights(module: torch.nn.Module) -> Iterator[None]:
    """Swap every parameter and buffer of ``module`` for a FakeTensor of the same shape, dtype and device.

    The batch stays real: a trainer's own arithmetic on its inputs (counting target tokens, say) still
    has values, while anything that touches a weight becomes fake. Tied weights stay tied; the real
    tensors are put back on exit.
    """
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    mode = FakeTensorMode(allow_non_fake_inputs=True)
    fakes: dict[int, torch.Tensor] = {}
    originals: list[tuple[dict[str, Any], str, Any]] = []

    def fake_of(tensor: torch.Tensor) -> torch.Tensor:
        if id(tensor) not in fakes:
            fake = mode.from_tensor(tensor)
            if isinstance(tensor, torch.nn.Parameter):
                fake = torch.nn.Parameter(fake, requires_grad=tensor.requires_grad)
            fakes[id(tensor)] = fake
        return fakes[id(tensor)]

    try:
        for submodule in module.modules():
            for slots in (submodule._parameters, submodule._buffers):
                for name, tensor in list(slots.items()):
                    if tensor is not None:
                        originals.append((slots, name, tensor))
                        slots[name] = fake_of(tensor)
        yield
    finally:
        for slots, name, tensor in originals:
            slots[name] = tensor


def _saved_tensor_bytes(
    built: BuiltModel,
    model_plugin: ModelPlugin,
    trainer: TrainerPlugin,
    model_settings: Any,
    data_settings: Any,
    precision: str,
    method: str,
) -> tuple[ActivationProfile, float]:
    """One forward + loss per micro-batch (1, then 2) under a saved_tensors hook that counts and drops.

    Only sizes are needed and backward never runs, so the hook keeps nothing: each saved tensor is
    counted and dropped, and the pass holds no more memory than one op's working set. A storage is
    counted once while it lives (a freed one whose address is reused is a new storage); parameters
    are not activations.
    """
    import torch
    from torch.multiprocessing.reductions import StorageWeakRef

    module = built.module
    module.train()
    parameter_storages = {p.untyped_storage()._cdata for p in module.parameters()}

    def saved_bytes(batch_size: int) -> tuple[float, float]:
        batch = model_plugin.example_batch(built, model_settings, data_settings, batch_size)
        batch_bytes = sum(t.numel() * t.element_size() for t in batch.values() if isinstance(t, torch.Tensor))
        live: dict[int, StorageWeakRef] = {}
        counted = [0]

        def pack(tensor: torch.Tensor) -> None:
            storage = tensor.untyped_storage()
            key = storage._cdata
            if key in parameter_storages:
                return None
            known = live.get(key)
            if known is None or known.expired():
                live[key] = StorageWeakRef(storage)
                counted[0] += storage.nbytes()
            return None

        def unpack(_: None) -> torch.Tensor:
            raise RuntimeError("the memory plan's pass keeps no tensors for backward")

        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision in ("fp16", "bf16"))
        with torch.autograd.graph.saved_tensors_hooks(pack, unpack), autocast:
            loss = trainer.loss(built, batch)
        del loss
        return float(counted[0]), float(batch_bytes)

    torch.manual_seed(0)
    one, batch_one = saved_bytes(1)
    two, batch_two = saved_bytes(2)
    per_sample = max(two - one, 0.0)
    return ActivationProfile(fixed_bytes=one - per_sample, per_sample_bytes=per_sample, method=method), batch_two - batch_one


def largest_fitting_batch(plan: MemoryPlan, limit: int) -> int:
    """The largest micro-batch <= limit whose total fits the budget (0 when none does)."""
    best = 0
    for batch in range(1, limit + 1):
        if plan.total_bytes(batch) <= plan.budget_bytes:
            best = batch
        else:
            break
    return best


@dataclass
class ModelSizes:
    """What the plan measures on one build of a model: every number that grows linearly with its depth."""

    params_total: float
    params_trainable: float
    param_groups: dict[str, float]
    weights_bytes: float
    activations_fixed: float
    activations_per_sample: float
    batch_bytes_per_sample: float

    def plus(self, other: ModelSizes, scale: float) -> ModelSizes:
        """``self + scale * other``, field by field (param groups by name)."""
        summed = {
            f.name: getattr(self, f.name) + scale * getattr(other, f.name) for f in fields(self) if f.name != "param_groups"
        }
        groups = {name: count + scale * other.param_groups.get(name, 0.0) for name, count in self.param_groups.items()}
        return ModelSizes(param_groups=groups, **summed)


def measure_sizes(
    built: BuiltModel,
    model_plugin: ModelPlugin,
    trainer: TrainerPlugin,
    entry: Any,
    precision: str,
    progress: Callable[[str], None] = lambda line: None,
) -> tuple[ModelSizes, str]:
    """Parameters, weight bytes and activations of one build (random weights), and how activations were measured."""
    module = built.module
    trainable = trainer.trainable_parameters(built)
    trainable_ids = {id(p) for p in trainable}
    mixed = precision in ("fp16", "bf16")
    # Trainable weights stay fp32 under autocast (the optimizer updates fp32 masters); frozen ones are
    # held in whatever dtype the plugin built them in.
    weights = sum(
        p.numel() * (4 if id(p) in trainable_ids and mixed else p.element_size()) for p in module.parameters()
    )
    activations, batch_per_sample = measure_activations(
        built, model_plugin, trainer, entry.model.settings, entry.data.settings, precision, progress
    )
    sizes = ModelSizes(
        params_total=float(sum(p.numel() for p in module.parameters())),
        params_trainable=float(sum(p.numel() for p in trainable)),
        param_groups={name: float(count) for name, count in model_plugin.parameter_groups(module).items()},
        weights_bytes=float(weights),
        activations_fixed=activations.fixed_bytes,
        activations_per_sample=activations.per_sample_bytes,
        batch_bytes_per_sample=batch_per_sample,
    )
    return sizes, activations.method


def model_sizes(
    model_plugin: ModelPlugin,
    trainer: TrainerPlugin,
    entry: Any,
    device: DeviceSpec,
    precision: str,
    progress: Callable[[str], None] = lambda line: None,
) -> tuple[ModelSizes, str]:
    """The sizes of the model ``entry`` builds, and how they were found.

    A model with stacks of repeated blocks (:meth:`ModelPlugin.block_stacks`) is measured with every
    stack at its smaller depth, then once per stack at its larger one; each size is linear in each
    stack's depth, so the differences extrapolate exactly to the full model. The full model is
    never built, so planning a 0.5B decoder costs what 1 and 2 of its layers cost.
    """
    settings = entry.model.settings
    stacks = [stack for stack in model_plugin.block_stacks(settings) if stack.depth > max(stack.measure_at)]
    methods: list[str] = []

    def measured(depths: dict[str, int] | None) -> ModelSizes:
        import torch

        torch.manual_seed(0)
        started = time.perf_counter()
        built = (
            model_plugin.build(settings, device, pretrained=False)
            if depths is None
            else model_plugin.build_with_depths(settings, device, depths)
        )
        sizes, method = measure_sizes(built, model_plugin, trainer, entry, precision, progress)
        methods.append(method)
        shape = "the whole model" if depths is None else ", ".join(f"{name} {depth}" for name, depth in depths.items())
        progress(f"  measured {shape} at micro-batch 1 and 2 ({time.perf_counter() - started:.1f} s)")
        return sizes

    def how() -> str:
        return methods[0] if len(set(methods)) == 1 else f"{REAL_PASS} (on fake tensors where they could run)"

    if not stacks:
        return measured(None), how()  # measured() runs first: how() reads what it recorded
    smaller = {stack.name: stack.measure_at[0] for stack in stacks}
    base = measured(smaller)
    sizes = base
    for stack in stacks:
        low, high = stack.measure_at
        deeper = measured({**smaller, stack.name: high})
        per_block = deeper.plus(base, -1.0)
        sizes = sizes.plus(per_block, (stack.depth - low) / (high - low))
    cut = "; ".join(f"{stack.name} {stack.measure_at[0]} and {stack.measure_at[1]} of {stack.depth}" for stack in stacks)
    return sizes, f"{how()}; built with fewer repeated blocks ({cut}) and extrapolated linearly in depth"


def plan_profile(profile: Profile, model_key: str, progress: Callable[[str], None] = lambda line: None) -> MemoryPlan:
    """Measure the model with random weights, and fit the batch to the budget; ``progress`` gets a line per build."""
    from lexiedge.plugin import get_host

    host = get_host()
    entry = profile.model(model_key)
    model_plugin = host.models.get(entry.model.plugin)
    trainer = host.trainers.get(entry.train.plugin)
    train_settings = entry.train.settings
    precision = training_precision(profile.device, getattr(train_settings, "precision", "auto"))
    progress(f"planning {model_key} ({entry.model.plugin}) on {profile.name}: building it with random weights")
    sizes, method = model_sizes(model_plugin, trainer, entry, profile.device, precision, progress)
    params_total = round(sizes.params_total)
    params_trainable = round(sizes.params_trainable)
    gradients = params_trainable * 4.0
    optimizer_bytes = {name: params_trainable * size for name, size in OPTIMIZER_STATE_BYTES.items()}
    notes: list[str] = []
    if params_trainable < params_total:
        optimizer_bytes["adamw (full fine-tune, for comparison)"] = params_total * OPTIMIZER_STATE_BYTES["adamw"]
        notes.append(f"only {params_trainable / params_total:.2%} of the parameters train (adapter)")
    auto = train_settings.batch_size == "auto"
    plan = MemoryPlan(
        profile=profile.name,
        model_key=model_key,
        model_plugin=entry.model.plugin,
        device=profile.device,
        precision=precision,
        params_total=params_total,
        params_trainable=params_trainable,
        param_groups={name: round(count) for name, count in sizes.param_groups.items()},
        weights_bytes=sizes.weights_bytes,
        gradients_bytes=gradients,
        optimizer=train_settings.optimizer,
        optimizer_bytes=optimizer_bytes,
        activations=ActivationProfile(sizes.activations_fixed, sizes.activations_per_sample, method),
        batch_bytes_per_sample=sizes.batch_bytes_per_sample,
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
