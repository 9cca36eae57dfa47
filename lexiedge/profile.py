"""Hardware profiles: YAML files turned into validated, typed objects.

A profile is a device budget plus, per model, the plugins that fit it and their settings::

    name: rtx3050-4gb
    device: {kind: cuda, memory_gb: 4, precision: fp16}
    models:
      emotion-av:
        model: {plugin: emotion-av, audio: {dim: 128, ...}}
        data:  {plugin: ravdess, data_fraction: 0.5}
        train: {plugin: classifier, batch_size: 2, epochs: 50}
        export: {targets: [onnx, onnx-int8]}

Keys are addressed as ``models.<name>.<section>.<key>`` (``--set models.emotion-av.train.lr=3e-4``).
``extends: other`` inherits from another profile (a name in ``profiles/`` or a path relative to the file):
mappings merge key by key, everything else is replaced (and a
section that switches to another ``plugin`` replaces the inherited section whole). Each section is validated by its plugin's
``Settings`` model, so every error names the file, the key and what was expected.

The plugins are looked up on a host passed in (``load_profile(name, host=get_host())``): this module
imports no part of the plugin machinery (``plugin``, ``registry``, ``hookspecs``, ``api``), and loading
a profile scans no entry points unless its caller chose the installed plugins.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lexiedge.errors import ProfileError, UnknownPluginError

# Re-exported: `from lexiedge.profile import DeviceSpec` keeps working.
from lexiedge.values import DeviceSpec as DeviceSpec
from lexiedge.values import PluginSettings as PluginSettings
from lexiedge.values import derived_device_name as derived_device_name

SECTIONS = ("model", "data", "train")
SECTION_KINDS = {"model": "models", "data": "datasets", "train": "trainers"}
PROFILE_SUFFIXES = (".yaml", ".yml")
MAX_PROFILE_BYTES = 1 << 20  # a profile is a few KB; a bigger file is not one (and is not read whole)
# values once YAML's aliases are expanded: a profile holds hundreds, while nine anchors of nine
# aliases each stand for 9^9 (printing that as JSON took 2.6 GB)
MAX_YAML_VALUES = 100_000


def builtin_profiles_dir() -> Path:
    """Where the profiles shipped with lexiedge live (``$LEXIEDGE_PROFILES`` overrides)."""
    override = os.environ.get("LEXIEDGE_PROFILES")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "profiles"


class PluginClasses(Protocol):
    """The plugins of one kind, as the profile loader needs them (a :class:`lexiedge.registry.Registry`)."""

    def get_class(self, name: str) -> Any:
        """The plugin class called ``name`` (with ``Settings``, and ``task`` or ``tasks``); an unknown
        name raises :class:`~lexiedge.errors.UnknownPluginError`."""
        ...


class PluginLookup(Protocol):
    """Where a profile's plugins are looked up: a :class:`lexiedge.plugin.PluginHost` or a stand-in."""

    def registry(self, kind: str) -> PluginClasses:
        """The plugins of ``kind`` ("models", "datasets", "trainers", ...)."""
        ...


class ExportSection(BaseModel):
    """`models.<name>.export`: the targets `lexiedge export --profile P` builds and their settings.

    Targets are exporter plugins; they are looked up (and their settings validated) when exporting,
    so a profile stays loadable on an install without the exporter plugins.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    targets: list[str] = Field(default_factory=list)
    options: dict[str, dict[str, Any]] = Field(default_factory=dict, description="settings per target")


@dataclass(frozen=True)
class Section:
    """One plugin choice: its name and its validated settings."""

    plugin: str
    settings: PluginSettings


@dataclass(frozen=True)
class ModelEntry:
    model: Section
    data: Section
    train: Section
    export: ExportSection
    task: str  # the model plugin's task, recorded when the profile was validated


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    source: str
    device: DeviceSpec
    models: dict[str, ModelEntry]
    raw: dict[str, Any] = field(repr=False)

    def model(self, key: str) -> ModelEntry:
        try:
            return self.models[key]
        except KeyError:
            known = ", ".join(sorted(self.models)) or "none"
            raise ProfileError(self.source, "models", f"no model {key!r} in this profile; it has: {known}") from None

    def to_yaml(self) -> str:
        """The resolved profile (after `extends` and `--set`), as written into every run directory."""
        return yaml.safe_dump(self.raw, sort_keys=False)


# --- finding and reading files ---------------------------------------------------------------


def list_profiles() -> list[Path]:
    directory = builtin_profiles_dir()
    return sorted(p for p in directory.iterdir() if p.suffix in PROFILE_SUFFIXES) if directory.is_dir() else []


def resolve_profile_path(name_or_path: str | os.PathLike[str], relative_to: Path | None = None) -> Path:
    """A profile name from ``profiles/`` or a path to a YAML file."""
    text = os.fspath(name_or_path)
    candidate = Path(text).expanduser()
    if relative_to is not None and not candidate.is_absolute():
        sibling = relative_to / candidate
        if sibling.is_file():
            return sibling
    if candidate.is_file():
        return candidate
    if candidate.suffix not in PROFILE_SUFFIXES and os.sep not in text:
        for suffix in PROFILE_SUFFIXES:
            builtin = builtin_profiles_dir() / f"{text}{suffix}"
            if builtin.is_file():
                return builtin
    known = ", ".join(p.stem for p in list_profiles()) or "none"
    raise ProfileError(text, None, f"no such profile file or built-in profile; built-in profiles: {known}")


class YamlTooLargeError(yaml.YAMLError):
    """YAML whose aliases expand past :data:`MAX_YAML_VALUES` values, or that refers to itself."""


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` with its aliases bounded: every YAML a profile is made of is read through here.

    Aliases cost nothing to load (each names the same object again), but whatever walks the result
    (JSON output, a deep copy that is printed, validation of an ``Any`` field) expands them; a
    document expanding to more than :data:`MAX_YAML_VALUES` values, or holding an alias inside
    its own anchor, is refused before anything is built.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _count_expanded(node, {}, set())
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _count_expanded(node: yaml.Node, counted: dict[int, int], open_nodes: set[int]) -> int:
    """Values under ``node`` with every alias expanded (a shared node is counted once per use, computed once)."""
    key = id(node)
    if key in counted:
        return counted[key]
    if key in open_nodes:
        raise YamlTooLargeError("an alias refers to the anchor it sits in (a recursive structure)")
    open_nodes.add(key)
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [item for pair in node.value for item in pair]
    try:
        total = 1 + sum(_count_expanded(child, counted, open_nodes) for child in children)
    except RecursionError:
        raise YamlTooLargeError("nested too deeply") from None
    open_nodes.discard(key)
    if total > MAX_YAML_VALUES:
        raise YamlTooLargeError(f"its aliases expand to over {MAX_YAML_VALUES:,} values; a profile holds hundreds")
    counted[key] = total
    return total


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_PROFILE_BYTES + 1)
        if len(raw) > MAX_PROFILE_BYTES:
            raise ProfileError(str(path), None, f"over {MAX_PROFILE_BYTES >> 20} MiB; a profile is a few KB of YAML")
        data = load_yaml(raw.decode("utf-8"))
    except YamlTooLargeError as exc:
        raise ProfileError(str(path), None, f"refused: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ProfileError(str(path), None, f"{where}invalid YAML: {problem}") from None
    except UnicodeDecodeError as exc:
        raise ProfileError(str(path), None, f"not UTF-8 text (byte {exc.start}); save the profile as UTF-8 YAML") from None
    except OSError as exc:
        raise ProfileError(str(path), None, f"cannot read: {exc.strerror}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProfileError(str(path), None, f"expected a mapping at the top level, got {type(data).__name__}")
    return data


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; any other value (lists included) replaces the base's.

    A section that names another ``plugin`` than the base's replaces it whole: the base's settings
    belong to the other plugin and would be unknown keys to the new one.
    """
    merged = copy.deepcopy(base)
    for key, value in override.items():
        base_value = merged.get(key)
        switches_plugin = (
            isinstance(value, dict) and isinstance(base_value, dict)
            and "plugin" in value and value["plugin"] != base_value.get("plugin")
        )
        if isinstance(value, dict) and isinstance(base_value, dict) and not switches_plugin:
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read_with_extends(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in chain:
        loop = " -> ".join(p.name for p in (*chain, path))
        raise ProfileError(str(chain[-1]), "extends", f"the extends chain loops: {loop}")
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent:
        raise ProfileError(str(path), "extends", f"expected a profile name or path, got {parent!r}")
    try:
        parent_path = resolve_profile_path(parent, relative_to=path.parent)
    except ProfileError as exc:
        raise ProfileError(str(path), "extends", f"{parent!r}: {exc.problem}") from None
    parent_data = _read_with_extends(parent_path, (*chain, path))
    merged = deep_merge(parent_data, data)
    if "name" not in data:  # a child is not its parent: runs/<name>/ and `export --profile` must not mix them up
        merged["name"] = path.stem
    return _without_stale_device_name(parent_data, merged, data.get("device"))


# What a device's name describes: a profile that changes either without naming the device anew does not
# inherit the old name (a cpu child of rtx3050-4gb is no "NVIDIA GeForce RTX 3050"): it gets a derived one.
_NAMED_BY = ("kind", "memory_gb")


def _without_stale_device_name(before: dict[str, Any], after: dict[str, Any], changed: Any) -> dict[str, Any]:
    """``after`` with the inherited ``device.name`` replaced by a derived one when ``changed`` (the child's
    device section or the --set keys) alters the kind or memory without setting a name itself."""
    old, new = before.get("device"), after.get("device")
    if not isinstance(old, dict) or not isinstance(new, dict) or not isinstance(changed, dict) or "name" in changed:
        return after
    if "name" in old and any(key in changed and new.get(key) != old.get(key) for key in _NAMED_BY):
        after = {**after, "device": {**new, "name": derived_device_name(new)}}
    return after


# --- --set overrides ---------------------------------------------------------------------------


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a", "b", "c"], value); the value is read as YAML (``4``, ``[1, 2]``, ``null``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ProfileError("--set", text, "expected KEY=VALUE with a dotted key, e.g. models.emotion-av.train.lr=3e-4")
    parts = [part.strip() for part in key.strip().split(".")]
    if any(not part for part in parts):
        raise ProfileError("--set", key, "empty part in the dotted key")
    try:
        parsed = load_yaml(value) if value.strip() else ""
    except YamlTooLargeError as exc:
        raise ProfileError("--set", key, f"refused: {exc}") from None
    except yaml.YAMLError:
        parsed = value
    return parts, parsed


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    result = copy.deepcopy(data)
    for text in overrides:
        parts, value = parse_override(text)
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                prefix = ".".join(parts[: depth + 1])
                raise ProfileError("--set", text, f"{prefix} is a {type(child).__name__}, not a mapping")
            node = child
        node[parts[-1]] = value
    return result


# --- validation --------------------------------------------------------------------------------


def _describe_validation_error(error: ValidationError, prefix: str) -> tuple[str, str]:
    """The first problem as (dotted key, what was expected); union members are folded into one line."""
    errors = error.errors()
    first = errors[0]
    location = [str(part) for part in first["loc"]]
    messages = [first["msg"].rstrip(".")]
    # `int | Literal["auto"]` reports one error per member, located at key.<member type>
    siblings = [e for e in errors[1:] if [str(p) for p in e["loc"]][:-1] == location[:-1] and len(location) > 1]
    if siblings:
        location = location[:-1]
        messages += [e["msg"].rstrip(".") for e in siblings]
    key = ".".join(part for part in (prefix, ".".join(location)) if part)
    kind = first["type"]
    if kind == "extra_forbidden":
        return key, "unknown key (check the spelling; `lexiedge profiles show` prints the valid keys)"
    if kind == "missing":
        return key, "required key is missing"
    got = first.get("input")
    got_text = f", got {got!r}" if got is not None and not isinstance(got, dict) else ""
    return key, " or ".join(messages) + got_text


def _section_plugin(host: PluginLookup, source: str, key: str, kind: str, raw: Any) -> tuple[str, Any]:
    """The section's plugin name and class (its settings are validated once every section's plugin is known
    and serves the model's task: a swapped plugin is named as such, not as its predecessor's keys)."""
    if not isinstance(raw, dict):
        raise ProfileError(source, key, f"expected a mapping with a `plugin` key, got {type(raw).__name__}")
    plugin_name = raw.get("plugin")
    if not isinstance(plugin_name, str):
        raise ProfileError(source, f"{key}.plugin", "required: the name of a plugin (see `lexiedge plugins`)")
    try:
        return plugin_name, host.registry(kind).get_class(plugin_name)
    except UnknownPluginError as exc:
        raise ProfileError(source, f"{key}.plugin", str(exc)) from None


def _validate_section(source: str, key: str, plugin_name: str, plugin_class: Any, raw: dict[str, Any]) -> Section:
    settings = {name: value for name, value in raw.items() if name != "plugin"}
    try:
        validated = plugin_class.Settings.model_validate(settings)
    except ValidationError as exc:
        bad_key, problem = _describe_validation_error(exc, key)
        raise ProfileError(source, bad_key, problem) from None
    return Section(plugin=plugin_name, settings=validated)


class _ProfileShape(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    device: DeviceSpec
    models: dict[str, dict[str, Any]] = Field(min_length=1)


def validate_profile(data: dict[str, Any], source: str, *, host: PluginLookup) -> Profile:
    """The profile ``data`` (read from ``source``) checked against the plugins of ``host``."""
    try:
        shape = _ProfileShape.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(source, *_describe_validation_error(exc, "")) from None
    models: dict[str, ModelEntry] = {}
    for model_key, raw_entry in shape.models.items():
        prefix = f"models.{model_key}"
        if not isinstance(raw_entry, dict):
            raise ProfileError(source, prefix, "expected a mapping with model, data, train and export sections")
        unknown = sorted(set(raw_entry) - {*SECTIONS, "export"})
        if unknown:
            raise ProfileError(source, f"{prefix}.{unknown[0]}", "unknown section; sections: model, data, train, export")
        plugins = {}
        for section in SECTIONS:
            if section not in raw_entry:
                raise ProfileError(source, f"{prefix}.{section}", "required section is missing")
            plugins[section] = _section_plugin(
                host, source, f"{prefix}.{section}", SECTION_KINDS[section], raw_entry[section]
            )
        _check_tasks(source, prefix, plugins)
        sections = {
            section: _validate_section(source, f"{prefix}.{section}", *plugins[section], raw_entry[section])
            for section in SECTIONS
        }
        try:
            export = ExportSection.model_validate(raw_entry.get("export") or {})
        except ValidationError as exc:
            raise ProfileError(source, *_describe_validation_error(exc, f"{prefix}.export")) from None
        models[model_key] = ModelEntry(export=export, task=plugins["model"][1].task, **sections)
    return Profile(
        name=shape.name, description=shape.description, source=source, device=shape.device, models=models, raw=data
    )


def _check_tasks(source: str, prefix: str, plugins: dict[str, tuple[str, Any]]) -> None:
    """The data and trainer plugins (``plugins``: name and class, by section) must serve the model's task."""
    model_name, model_class = plugins["model"]
    task = model_class.task
    for section in ("data", "train"):
        plugin_name, plugin_class = plugins[section]
        tasks = plugin_class.tasks
        if task not in tasks:
            raise ProfileError(
                source,
                f"{prefix}.{section}.plugin",
                f"{plugin_name!r} serves {', '.join(sorted(tasks))}, but model {model_name!r} is {task!r}",
            )


def load_profile(
    name_or_path: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = (), *, host: PluginLookup
) -> Profile:
    """Load, inherit, override and validate a profile (a name in ``profiles/`` or a YAML path).

    ``host`` has the plugins the sections name; a front end passes ``lexiedge.plugin.get_host()``.
    """
    path = resolve_profile_path(name_or_path)
    data = _read_with_extends(path)
    overridden = apply_overrides(data, list(overrides))
    device_set: dict[str, Any] = {}  # what --set gave device.*: a new kind or memory drops the inherited name
    for text in overrides:
        parts, value = parse_override(text)
        if parts[0] == "device" and len(parts) == 2:
            device_set[parts[1]] = value
        elif parts == ["device"] and isinstance(value, dict):
            device_set.update(value)
    overridden = _without_stale_device_name(data, overridden, device_set)
    return validate_profile(overridden, str(path), host=host)
