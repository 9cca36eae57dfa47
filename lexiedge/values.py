"""Pure value types shared by the plugin contract (:mod:`lexiedge.api`) and the profiles.

A leaf module: it imports only pydantic and the standard library, so the contract and the profile
loader can both name these types without importing each other or the plugin host. Plugins import
them from :mod:`lexiedge.api` (and ``DeviceSpec`` also from :mod:`lexiedge.profile`), which re-export them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["DeviceSpec", "NoSettings", "PluginSettings", "derived_device_name"]


class PluginSettings(BaseModel):
    """Base of every plugin's settings: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


class NoSettings(PluginSettings):
    """For plugins without settings."""


class DeviceSpec(BaseModel):
    """The hardware budget a profile is written for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["cpu", "cuda"]
    memory_gb: float = Field(gt=0, description="memory the training may use (GPU memory for cuda)")
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    name: str = Field("", description="the hardware this budget describes, for humans")
    reserve_gb: float = Field(
        0.5, ge=0, description="kept free for the CUDA context, allocator fragmentation and the OS"
    )

    @model_validator(mode="before")
    @classmethod
    def _derive_name(cls, data: Any) -> Any:
        """No name (or an inherited one dropped as stale): say what the budget is, e.g. "cpu, 8 GB"."""
        if isinstance(data, dict) and not data.get("name") and data.get("kind") in ("cpu", "cuda"):
            data = {**data, "name": derived_device_name(data)}
        return data


def derived_device_name(device: dict[str, Any]) -> str:
    """A name from what a device section says: "CPU, 8 GB", "CUDA GPU, 4 GB"."""
    kind = {"cpu": "CPU", "cuda": "CUDA GPU"}.get(str(device.get("kind")), str(device.get("kind", "?")))
    memory = device.get("memory_gb")
    return kind + (f", {memory:g} GB" if isinstance(memory, (int, float)) and not isinstance(memory, bool) else "")
