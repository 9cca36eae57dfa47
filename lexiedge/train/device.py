"""Where and in what precision training runs, and how it is made repeatable.

The profile names the device it was written for; the machine decides what is there. A cuda
profile on a machine without CUDA trains on the CPU (one warning line), so every profile runs
everywhere, slowly. CPUs always train in fp32; on CUDA, fp16 uses a GradScaler (loss scaling keeps
small gradients from flushing to zero) and bf16 needs none (same exponent range as fp32).
"""

from __future__ import annotations

import contextlib
import random
import sys
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from lexiedge.plan import training_precision

if TYPE_CHECKING:
    from rich.console import Console

    from lexiedge.profile import DeviceSpec

Precision = Literal["fp32", "fp16", "bf16"]
AMP_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def select_device(spec: DeviceSpec, local_rank: int, console: Console | None) -> torch.device:
    """The profile's device kind if this machine has it, else the CPU (said once, in one line)."""
    if spec.kind == "cuda":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if console is not None:
            console.print(
                "[yellow]warning:[/] the profile asks for a CUDA GPU but this machine has none "
                "(or this torch is a CPU build); training on the CPU in fp32"
            )
    return torch.device("cpu")


def resolve_precision(requested: str, spec: DeviceSpec, device: torch.device, console: Console | None) -> Precision:
    """``auto`` follows the profile; the CPU always gets fp32; bf16 falls back to fp16 where unsupported."""
    if device.type != "cuda":
        return "fp32"
    precision = training_precision(spec, requested)
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        if console is not None:
            console.print("[yellow]warning:[/] this GPU has no bf16; training in fp16 with loss scaling")
        return "fp16"
    return precision  # type: ignore[return-value]


def autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager:
    """Mixed-precision forward passes on CUDA; a no-op in fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AMP_DTYPES[precision])


def make_grad_scaler(device: torch.device, precision: Precision) -> torch.amp.GradScaler | None:
    """fp16 gradients underflow without loss scaling; fp32 and bf16 need none."""
    if precision != "fp16":
        return None
    return torch.amp.GradScaler(device.type)


# --- repeatability ---------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed every generator a training step may draw from (model init, dropout, augmentation)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds every CUDA device too


def seed_worker(worker_id: int) -> None:
    """DataLoader worker init: numpy and random follow the worker's torch seed (itself from the loader's generator)."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


@contextlib.contextmanager
def deterministic_algorithms(device: torch.device):
    """Deterministic kernels on the CPU, where they cost little; restored afterwards.

    ``warn_only`` keeps an op without a deterministic kernel from failing the run. CUDA keeps its
    fast (non-deterministic) kernels: bitwise repeatability is promised on the CPU only.
    """
    if device.type != "cpu":
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)


def rng_state() -> dict:
    """Every generator's state, as tensors, lists and numbers (loads with ``weights_only=True``)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    python = state["python"]
    random.setstate((python["version"], tuple(int(v) for v in python["state"].tolist()), python["gauss"]))
    numpy = state["numpy"]
    np.random.set_state(
        (numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"], numpy["has_gauss"], numpy["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


# --- memory ---------------------------------------------------------------------------------------


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak tensor memory on the GPU since the last reset; on the CPU, the process's peak RSS so far."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource
    except ImportError:  # Windows: no peak, the current RSS is the best we have
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
