"""The search space of `lexiedge tune`: which profile keys a search varies, over which values.

A model plugin declares its default space (:meth:`lexiedge.api.ModelPlugin.search_space`) with the value
types below; a ``--space`` YAML file replaces it::

    space:                      # keys relative to models.<model> (the dotted --set keys), or in full
      train.lr: {low: 1.0e-4, high: 1.0e-2, log: true}
      train.batch_size: {choices: [4, 8, 16]}
      train.epochs: {low: 20, high: 80, step: 10}
      dropout:                  # one value set on several keys: a name of your choice and its keys
        keys: [model.audio.dropout, model.head.dropout]
        low: 0.0
        high: 0.3
    try_first:                  # optional, tried before the sampler's (Ray Tune's points_to_evaluate)
      - {train.lr: 1.0e-3, dropout: 0.1}

A range of integers (``low`` and ``high`` both whole numbers) is searched over integers, unless
``type: float`` says otherwise. Every value is checked against the profile the way `lexiedge train`
checks a ``--set`` before the search starts: a key the profile does not have, or a range end its plugin
refuses, is one line naming the key.

A leaf module (the standard library and PyYAML): the plugin contract imports these types.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from lexiedge.profile import PluginLookup

Scalar = bool | int | float | str | None
SECTIONS = ("model", "data", "train")  # the sections of models.<model> a search may vary
FIELDS = ("keys", "low", "high", "log", "step", "choices", "type")
TOP_LEVEL = ("space", "try_first")


class SpaceError(ValueError):
    """A search space that cannot be searched: the message says what was wrong (the caller says where)."""


@dataclass(frozen=True)
class SearchParam:
    """One searched value: its ``name`` (shown in reports, used in ``try_first``) and the profile keys it sets
    relative to ``models.<model>`` (default: the name itself, e.g. ``train.lr``)."""

    name: str
    keys: tuple[str, ...] = field(default=(), kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple(self.keys) or (self.name,))
        for key in self.keys:
            check_key(key)
        self._check()

    def _check(self) -> None:
        """Raise :class:`SpaceError` for a range that cannot be searched."""

    def contains(self, value: Any) -> bool:
        """Whether ``value`` lies in the space (a profile's own value, a ``try_first`` point)."""
        raise NotImplementedError

    def candidates(self) -> list[Scalar]:
        """Values checked against the profile before the search starts: the ends of a range, every choice."""
        raise NotImplementedError

    def suggest(self, trial: Any) -> Scalar:
        """The trial's value, from an ``optuna.Trial``."""
        raise NotImplementedError

    def as_yaml(self) -> dict[str, Any]:
        """The entry of a space file that declares this parameter."""
        raise NotImplementedError

    def _keys_yaml(self) -> dict[str, Any]:
        return {} if self.keys == (self.name,) else {"keys": list(self.keys)}


@dataclass(frozen=True)
class FloatRange(SearchParam):
    """A real value in ``[low, high]``; ``log``: uniform in log space (rates); ``step``: a grid on ``low``."""

    low: float
    high: float
    log: bool = False
    step: float | None = None

    @classmethod
    def around(cls, name: str, value: float, factor: float = 10.0, **options: Any) -> FloatRange:
        """``value / factor`` to ``value * factor`` in log space (a rate around a profile's), 3 digits."""
        return cls(name, _round(value / factor), _round(value * factor), log=True, **options)

    def _check(self) -> None:
        _check_range(self.low, self.high)
        if self.log and self.low <= 0:
            raise SpaceError(f"log: true needs low above 0, got {self.low:g}")
        if self.step is not None and (self.log or self.step <= 0 or self.step > self.high - self.low):
            raise SpaceError(
                f"step must be above 0 and at most high - low ({self.high - self.low:g}), without log; "
                f"got {self.step:g}"
            )

    def contains(self, value: Any) -> bool:
        return (
            _is_number(value)
            and self.low <= value <= self.high
            and (self.step is None or _on_grid(value, self.low, self.step))
        )

    def candidates(self) -> list[Scalar]:
        return [self.low, self.high]

    def suggest(self, trial: Any) -> Scalar:
        return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)

    def as_yaml(self) -> dict[str, Any]:
        entry: dict[str, Any] = {**self._keys_yaml(), "low": float(self.low), "high": float(self.high)}
        if _is_whole(self.low) and _is_whole(self.high):
            entry["type"] = "float"
        if self.log:
            entry["log"] = True
        if self.step is not None:
            entry["step"] = self.step
        return entry


@dataclass(frozen=True)
class IntRange(SearchParam):
    """A whole number in ``[low, high]``, every ``step``-th from ``low``; ``log``: uniform in log space."""

    low: int
    high: int
    log: bool = False
    step: int = 1

    def _check(self) -> None:
        if not all(_is_whole(value) for value in (self.low, self.high, self.step)):
            raise SpaceError(
                f"low, high and step of an integer range must be whole numbers, got "
                f"{self.low!r}, {self.high!r}, {self.step!r}"
            )
        _check_range(self.low, self.high)
        if self.log and self.low < 1:
            raise SpaceError(f"log: true needs low of at least 1, got {self.low}")
        if self.step < 1 or self.step > self.high - self.low or (self.log and self.step != 1):
            raise SpaceError(
                f"step must be from 1 to high - low ({self.high - self.low}), and 1 with log; got {self.step}"
            )

    def contains(self, value: Any) -> bool:
        return _is_whole(value) and self.low <= value <= self.high and (value - self.low) % self.step == 0

    def candidates(self) -> list[Scalar]:
        return [int(self.low), int(self.high)]

    def suggest(self, trial: Any) -> Scalar:
        return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step), log=self.log)

    def as_yaml(self) -> dict[str, Any]:
        entry: dict[str, Any] = {**self._keys_yaml(), "low": int(self.low), "high": int(self.high)}
        if self.log:
            entry["log"] = True
        if self.step != 1:
            entry["step"] = int(self.step)
        return entry


@dataclass(frozen=True)
class Choice(SearchParam):
    """One of a few values (numbers, strings, booleans or null), in no order: batch sizes, clip lengths."""

    choices: tuple[Scalar, ...]

    def _check(self) -> None:
        object.__setattr__(self, "choices", tuple(self.choices))
        if not self.choices:
            raise SpaceError("choices is empty; list at least one value")
        bad = [value for value in self.choices if not isinstance(value, (bool, int, float, str, type(None)))]
        if bad:
            raise SpaceError(f"choices must be numbers, strings, booleans or null, got {bad[0]!r}")
        if len(set(map(repr, self.choices))) != len(self.choices):
            raise SpaceError(f"a choice is listed twice: {list(self.choices)}")

    def contains(self, value: Any) -> bool:
        return any(type(value) is type(choice) and value == choice for choice in self.choices) or (
            _is_number(value) and any(_is_number(choice) and value == choice for choice in self.choices)
        )

    def candidates(self) -> list[Scalar]:
        return list(self.choices)

    def suggest(self, trial: Any) -> Scalar:
        return trial.suggest_categorical(self.name, list(self.choices))

    def as_yaml(self) -> dict[str, Any]:
        return {**self._keys_yaml(), "choices": list(self.choices)}


@dataclass(frozen=True)
class SearchSpace:
    """The parameters a search varies, the points it tries first, and where they came from."""

    params: tuple[SearchParam, ...]
    try_first: tuple[dict[str, Scalar], ...] = ()
    source: str = ""  # "the emotion-av model's default space" or the --space file

    def __post_init__(self) -> None:
        if not self.params:
            raise SpaceError("the space has no parameters; declare at least one")
        names = [param.name for param in self.params]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise SpaceError(f"{repeated[0]}: declared twice")
        keys = [key for param in self.params for key in param.keys]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise SpaceError(f"{repeated[0]}: set by two parameters; each key may be searched once")
        for index, point in enumerate(self.try_first):
            for name, value in point.items():
                param = self.param(name)
                if param is None:
                    raise SpaceError(
                        f"try_first[{index}].{name}: not a parameter of the space ({', '.join(names)})"
                    )
                if not param.contains(value):
                    raise SpaceError(
                        f"try_first[{index}].{name}: {value!r} is outside the space ({_brief(param)})"
                    )

    def param(self, name: str) -> SearchParam | None:
        return next((param for param in self.params if param.name == name), None)

    def overrides(self, model_key: str, values: Mapping[str, Scalar]) -> list[str]:
        """The ``--set`` lines that put ``values`` (by parameter name) into a profile."""
        lines = []
        for param in self.params:
            if param.name in values:
                lines += [f"models.{model_key}.{key}={yaml_scalar(values[param.name])}" for key in param.keys]
        return lines

    def as_yaml(self) -> dict[str, Any]:
        """The space as a ``--space`` file says it."""
        document: dict[str, Any] = {"space": {param.name: param.as_yaml() for param in self.params}}
        if self.try_first:
            document["try_first"] = [dict(point) for point in self.try_first]
        return document

    def without(self, names: set[str]) -> SearchSpace:
        kept = tuple(param for param in self.params if param.name not in names)
        points = tuple({k: v for k, v in point.items() if k not in names} for point in self.try_first)
        return SearchSpace(kept, tuple(point for point in points if point), self.source)


# --- reading a space file ------------------------------------------------------------------------


def read_space_file(path: Path, model_key: str) -> SearchSpace:
    """The space a ``--space`` YAML file declares; any problem is a :class:`SpaceError` naming the key."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpaceError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SpaceError(f"{path} is a directory; pass a YAML file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise SpaceError(f"{path}: {where}invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpaceError(f"{path}: cannot read: {exc}") from None
    if not isinstance(document, dict) or "space" not in document:
        raise SpaceError(f"{path}: expected a mapping with a `space:` section (and optionally `try_first:`)")
    unknown = [key for key in document if key not in TOP_LEVEL]
    if unknown:
        raise SpaceError(f"{path}: {unknown[0]}: unknown section; a space file has {' and '.join(TOP_LEVEL)}")
    entries = document["space"]
    if not isinstance(entries, dict) or not entries:
        raise SpaceError(
            f"{path}: space: expected a mapping of keys to ranges, e.g. train.lr: {{low: 1.0e-4, "
            "high: 1.0e-2, log: true}"
        )
    params = []
    for raw_name, entry in entries.items():
        name = relative_key(str(raw_name), model_key)
        try:
            params.append(param_from_yaml(name, entry, model_key))
        except SpaceError as exc:
            raise SpaceError(f"{path}: {name}: {exc}") from None
    points = document.get("try_first") or []
    if not isinstance(points, list) or not all(isinstance(point, dict) for point in points):
        raise SpaceError(f"{path}: try_first: expected a list of mappings, e.g. - {{train.lr: 1.0e-3}}")
    try_first = tuple({relative_key(str(k), model_key): v for k, v in point.items()} for point in points)
    try:
        return SearchSpace(tuple(params), try_first, source=str(path))
    except SpaceError as exc:
        raise SpaceError(f"{path}: {exc}") from None


def param_from_yaml(name: str, entry: Any, model_key: str) -> SearchParam:
    """One ``space:`` entry: ``{low, high[, log, step, type]}`` or ``{choices}``, with optional ``keys``."""
    if not isinstance(entry, dict):
        raise SpaceError(
            f"expected a mapping such as {{low: 0.0, high: 0.3}} or {{choices: [4, 8]}}, got {entry!r}"
        )
    unknown = [key for key in entry if key not in FIELDS]
    if unknown:
        raise SpaceError(f"{unknown[0]}: unknown field; a parameter has {', '.join(FIELDS)}")
    keys = entry.get("keys")
    if keys is not None and (
        not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys)
    ):
        raise SpaceError(f"keys: expected a list of dotted keys, e.g. [model.head.dropout], got {keys!r}")
    keys = tuple(relative_key(key, model_key) for key in keys or ())
    kind = entry.get("type")
    if kind not in (None, "float", "int", "choice"):
        raise SpaceError(f"type: expected float, int or choice, got {kind!r}")
    if "choices" in entry or kind == "choice":
        extra = [key for key in ("low", "high", "log", "step") if key in entry]
        if extra or not isinstance(entry.get("choices"), list):
            raise SpaceError("a choice has `choices: [...]` and no low, high, log or step")
        return Choice(name, tuple(entry["choices"]), keys=keys)
    missing = [key for key in ("low", "high") if key not in entry]
    if missing:
        raise SpaceError(f"{missing[0]}: required (a range has low and high; a choice has choices)")
    low, high, log, step = entry["low"], entry["high"], entry.get("log", False), entry.get("step")
    if not all(_is_number(value) for value in (low, high)) or (step is not None and not _is_number(step)):
        raise SpaceError(f"low, high and step must be numbers, got {low!r}, {high!r}, {step!r}")
    if not isinstance(log, bool):
        raise SpaceError(f"log: expected true or false, got {log!r}")
    whole = _is_whole(low) and _is_whole(high) and (step is None or _is_whole(step))
    if kind == "int" or (kind is None and whole and isinstance(low, int) and isinstance(high, int)):
        return IntRange(name, low, high, log=log, step=1 if step is None else step, keys=keys)
    return FloatRange(
        name, float(low), float(high), log=log, step=None if step is None else float(step), keys=keys
    )


def relative_key(key: str, model_key: str) -> str:
    """``models.<model>.train.lr`` -> ``train.lr``; a key already relative is kept."""
    prefix = f"models.{model_key}."
    return key[len(prefix) :] if key.startswith(prefix) else key


def check_key(key: str) -> None:
    """A key a search may set: under the model, data or train section, not a plugin choice."""
    parts = key.split(".")
    if len(parts) < 2 or parts[0] not in SECTIONS or any(not part for part in parts):
        raise SpaceError(
            f"{key!r} is not a profile key of the model; keys are relative to models.<model> and "
            f"start with {', '.join(p + '.' for p in SECTIONS)} (e.g. train.lr, model.head.dropout)"
        )
    if parts[-1] == "plugin" and len(parts) == 2:
        raise SpaceError(f"{key}: a search varies a plugin's settings, not which plugin runs")


# --- checking a space against a profile ----------------------------------------------------------


def check_against_profile(
    space: SearchSpace,
    profile: str | Path,
    sets: Sequence[str],
    model_key: str,
    host: PluginLookup,
    *,
    declared: bool,
) -> tuple[SearchSpace, list[str]]:
    """Load the profile with each end of each range (each choice), as `lexiedge train --set` would.

    A key the profile's plugins do not have is an error naming it, or, in a plugin's ``declared`` default
    space (the profile may pair the model with another data or trainer plugin), left out with a note.
    Returns the space searched and the notes.
    """
    from lexiedge.errors import ProfileError
    from lexiedge.profile import load_profile

    dropped: set[str] = set()
    notes = []
    for param in space.params:
        for value in param.candidates():
            lines = space.overrides(model_key, {param.name: value})
            try:
                load_profile(profile, [*sets, *lines], host=host)
            except ProfileError as exc:
                unknown = exc.problem.startswith("unknown key") or exc.problem.startswith("unknown section")
                key = (exc.key or "").removeprefix(f"models.{model_key}.") or param.name
                if unknown and declared:
                    dropped.add(param.name)
                    notes.append(
                        f"{param.name}: left out of the default space: the profile's plugins have no {key}"
                    )
                    break
                if unknown:
                    raise SpaceError(
                        f"{param.name}: unknown key {key} (the profile's plugins do not have it; "
                        "`lexiedge profiles show` lists the keys)"
                    ) from None
                raise SpaceError(
                    f"{param.name}: {yaml_scalar(value)} is refused for {key}: {exc.problem}"
                ) from None
    return (space.without(dropped) if dropped else space), notes


# --- values --------------------------------------------------------------------------------------


def yaml_scalar(value: Scalar) -> str:
    """``value`` as the right side of a ``--set`` line that reads back as the same value.

    PyYAML reads ``1e-05`` as a string (YAML 1.1 wants a dot), so floats are written ``1.0e-05``.
    """
    if isinstance(value, float) and math.isfinite(value):
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        if e and "." not in mantissa:
            text = f"{mantissa}.0e{exponent}"
        return text
    return yaml.safe_dump(value, default_flow_style=True).splitlines()[0]


def _brief(param: SearchParam) -> str:
    entry = param.as_yaml()
    entry.pop("keys", None)
    return ", ".join(f"{key} {value}" for key, value in entry.items())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_whole(value: Any) -> bool:
    return _is_number(value) and float(value).is_integer()


def _check_range(low: float, high: float) -> None:
    if not (_is_number(low) and _is_number(high)):
        raise SpaceError(f"low and high must be finite numbers, got {low!r} and {high!r}")
    if low >= high:
        raise SpaceError(f"low ({low:g}) must be below high ({high:g}); a single value belongs in --set")


def _round(value: float) -> float:
    return float(f"{value:.3g}")


def _on_grid(value: float, low: float, step: float) -> bool:
    steps = (value - low) / step
    return abs(steps - round(steps)) < 1e-9
