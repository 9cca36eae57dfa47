"""Which execution provider runs an artifact, and the session options every session gets.

``device="auto"`` takes the fastest provider this onnxruntime build offers: TensorRT, then CUDA, then
the CPU. A device asked for by name must be available, or the error lists those that are. A GPU
provider is always followed by the CPU one, so nodes it does not implement still run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lexiedge_runtime.errors import DeviceNotAvailableError, InputValueError

if TYPE_CHECKING:
    import onnxruntime as ort

TENSORRT, CUDA, CPU = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"
DEVICE_PROVIDERS: dict[str, tuple[str, ...]] = {
    "tensorrt": (TENSORRT, CUDA, CPU),
    "cuda": (CUDA, CPU),
    "cpu": (CPU,),
}
AUTO_ORDER = ("tensorrt", "cuda", "cpu")
GPU_PROVIDERS = frozenset({TENSORRT, CUDA})
ProviderSpec = str | tuple[str, dict[str, Any]]


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def available_devices(providers: Sequence[str] | None = None) -> list[str]:
    """Device names (``tensorrt``, ``cuda``, ``cpu``) whose first provider this build offers."""
    offered = set(available_providers() if providers is None else providers)
    return [device for device in AUTO_ORDER if DEVICE_PROVIDERS[device][0] in offered]


def choose_providers(device: str = "auto", providers: Sequence[ProviderSpec] | None = None) -> list[ProviderSpec]:
    """The provider list for an ORT session: explicit ``providers`` win over ``device``."""
    offered = available_providers()
    if providers:
        missing = [_provider_name(p) for p in providers if _provider_name(p) not in offered]
        if missing:
            raise DeviceNotAvailableError(
                f"execution provider(s) {', '.join(missing)} not available in this onnxruntime build; "
                f"available: {', '.join(offered)}"
            )
        return list(providers)
    device = device.lower()
    if device == "auto":
        device = available_devices(offered)[0] if available_devices(offered) else "cpu"
    if device not in DEVICE_PROVIDERS:
        raise DeviceNotAvailableError(
            f"unknown device {device!r}; expected one of auto, {', '.join(AUTO_ORDER)}"
        )
    if DEVICE_PROVIDERS[device][0] not in offered:
        raise DeviceNotAvailableError(
            f"device {device!r} ({DEVICE_PROVIDERS[device][0]}) is not available in this onnxruntime build; "
            f"available devices: {', '.join(available_devices(offered)) or 'none'} "
            f"(GPU devices need the onnxruntime-gpu package and a GPU)"
        )
    return [p for p in DEVICE_PROVIDERS[device] if p in offered]


def session_options(threads: int | None) -> ort.SessionOptions:
    """Full graph optimisation; ``threads`` intra-op threads (None: ORT's default, one per core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        if threads < 1:
            raise InputValueError(f"threads must be a positive number of threads, got {threads}")
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


def check_providers_taken(session: ort.InferenceSession, wanted: Sequence[ProviderSpec]) -> None:
    """ORT falls back to the CPU silently when a GPU provider fails to initialise: refuse that instead."""
    first = _provider_name(wanted[0])
    if first != CPU and first not in session.get_providers():
        raise DeviceNotAvailableError(
            f"{first} is installed but could not start (no GPU visible, or its CUDA/TensorRT libraries are "
            f"missing); the session would run on {', '.join(session.get_providers())}"
        )


def _provider_name(spec: ProviderSpec) -> str:
    return spec if isinstance(spec, str) else spec[0]
