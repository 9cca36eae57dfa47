"""What `lexiedge train --resume` may continue, decided before any training starts.

A resumed run trains what its run directory recorded: the profile in ``profile.yaml`` and the data
in ``run.json``. A resume that asks for something else (``--set ...lr=0.5``, another ``--data``, a
profile file edited since) is refused with every difference listed, old -> new, unless the user
passes ``--allow-changes``; then the run continues with the new settings, ``profile.yaml`` is
replaced by them and the change is recorded in ``run.json`` (``changes``) and ``metrics.jsonl``.

One change needs no permission: more epochs (``--set models.<m>.train.epochs=N`` with N above the
recorded count), because extending a run that ended too early is what resume is for. It is
recorded the same way. Resuming a run that already did all its work trains nothing and says so.

Only settings that change what training does are compared: the device budget and the model, data
and train sections with their defaults filled in. The export section and the profile's name and
description do not matter to training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lexiedge.errors import UsageError

if TYPE_CHECKING:
    from lexiedge.profile import Profile

DATA_KEY = "data"  # the key under which a change of --data is listed and recorded
# device fields that only describe the hardware for humans
_COSMETIC_DEVICE_KEYS = ("name",)


@dataclass(frozen=True)
class Change:
    """One setting a resume asks to change: its dotted key, the recorded value and the new one."""

    key: str
    old: Any
    new: Any

    def describe(self) -> str:
        return f"{self.key}: {self.old!r} -> {self.new!r}"


@dataclass(frozen=True)
class ResumePlan:
    """What a resume will do: the changes it applies (all allowed by now) and whether work is left."""

    changes: tuple[Change, ...]
    finished_at_step: int | None  # set when the run already did everything the (new) settings ask for

    @property
    def record(self) -> dict[str, list[Any]]:
        """The changes as run.json and metrics.jsonl record them: ``{key: [old, new]}``."""
        return {change.key: [change.old, change.new] for change in self.changes}


def training_settings(profile: Profile, model_key: str) -> dict[str, Any]:
    """Everything that decides what training does, defaults included, as ``{dotted key: value}``."""
    entry = profile.model(model_key)
    device = {k: v for k, v in profile.device.model_dump(mode="json").items() if k not in _COSMETIC_DEVICE_KEYS}
    nested: dict[str, Any] = {"device": device}
    for section in ("model", "data", "train"):
        chosen = getattr(entry, section)
        nested[f"models.{model_key}.{section}"] = {"plugin": chosen.plugin, **chosen.settings.model_dump(mode="json")}
    return _flatten(nested)


def compare(
    recorded: Profile, requested: Profile, model_key: str, recorded_data: str | None, requested_data: Path | None
) -> list[Change]:
    """Every training setting and the data path that differ between a run's record and a resume's request."""
    old, new = training_settings(recorded, model_key), training_settings(requested, model_key)
    missing = object()
    changes = [
        Change(key, old.get(key, missing), new.get(key, missing))
        for key in sorted(old.keys() | new.keys())
        if old.get(key, missing) != new.get(key, missing)
    ]
    changes = [Change(c.key, None if c.old is missing else c.old, None if c.new is missing else c.new) for c in changes]
    if requested_data is not None:  # no --data: the recorded data, which is no change
        wanted = str(Path(requested_data).resolve())
        if wanted != recorded_data:
            changes.append(Change(DATA_KEY, recorded_data, wanted))
    return changes


def plan_resume(
    run_dir: Path,
    model_key: str,
    changes: list[Change],
    run_info: dict[str, Any],
    requested: Profile,
    *,
    allow_changes: bool,
) -> ResumePlan:
    """Refuse changes that were not allowed (one line, each old -> new); say whether work is left."""
    epochs_key = f"models.{model_key}.train.epochs"
    needs_permission = [c for c in changes if not _is_extension(c, epochs_key)]
    if needs_permission and not allow_changes:
        listed = "; ".join(change.describe() for change in needs_permission)
        raise UsageError(
            f"{run_dir}: --resume asks for settings this run was not trained with: {listed}. Resume with the "
            "recorded ones (drop those --set/--data options, or restore the profile file), or pass "
            "--allow-changes to continue with the new ones (recorded in run.json)"
        )
    return ResumePlan(tuple(changes), _finished_step(run_info, requested, model_key))


def _is_extension(change: Change, epochs_key: str) -> bool:
    return change.key == epochs_key and isinstance(change.old, int) and isinstance(change.new, int) \
        and change.new > change.old


def _finished_step(run_info: dict[str, Any], requested: Profile, model_key: str) -> int | None:
    """The step a completed run ended at, if the requested settings leave it nothing to do."""
    if run_info.get("status") != "completed":
        return None
    step, epoch = run_info.get("step"), run_info.get("epoch")
    if not isinstance(step, int) or not isinstance(epoch, int):
        return None
    settings = requested.model(model_key).train.settings
    epochs, max_steps = getattr(settings, "epochs", None), getattr(settings, "max_steps", None)
    done_by_epochs = isinstance(epochs, int) and epoch >= epochs
    done_by_steps = isinstance(max_steps, int) and step >= max_steps
    return step if done_by_epochs or done_by_steps else None


def _flatten(nested: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, dotted))
        else:
            flat[dotted] = value
    return flat
