"""The plugin host: pluggy underneath, a typed façade on top.

Plugins are found through the ``lexiedge`` entry-point group, built-in and third-party alike::

    # pyproject.toml of a plugin distribution
    [project.entry-points.lexiedge]
    my-model = "my_package.lexiedge_plugin"   # a module with @hookimpl functions

Core code asks the :class:`PluginHost` (``host.models.get("emotion-av")``) and never calls
``pm.hook.*`` itself.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from functools import lru_cache

import pluggy

from lexiedge import hookspecs
from lexiedge.api import DatasetPlugin, EvaluatorPlugin, ExporterPlugin, ModelPlugin, TrainerPlugin
from lexiedge.registry import Registry

NAME = "lexiedge"
ENTRY_POINT_GROUP = "lexiedge"
hookimpl = pluggy.HookimplMarker(NAME)

PLUGIN_KINDS = ("models", "datasets", "trainers", "exporters", "evaluators")


@dataclass
class PluginHost:
    """The registries of every plugin kind, filled by the installed plugins' hooks."""

    manager: pluggy.PluginManager
    models: Registry[ModelPlugin]
    datasets: Registry[DatasetPlugin]
    trainers: Registry[TrainerPlugin]
    exporters: Registry[ExporterPlugin]
    evaluators: Registry[EvaluatorPlugin]
    # entry points that failed to import: name -> "module: error" (shown by `lexiedge plugins`)
    broken: dict[str, str] = field(default_factory=dict)
    # top-level module of a plugin -> "distribution version" that installed it
    distributions: dict[str, str] = field(default_factory=dict)

    def registry(self, kind: str) -> Registry:
        if kind not in PLUGIN_KINDS:
            raise KeyError(f"unknown plugin kind {kind!r}; kinds: {', '.join(PLUGIN_KINDS)}")
        return getattr(self, kind)

    def distribution_of(self, kind: str, name: str) -> str:
        """The installed distribution that provides a plugin (for `lexiedge plugins`)."""
        module = self.registry(kind).origin(name).split(".")[0]
        return self.distributions.get(module, module)

    def add_data_commands(self, app) -> None:  # typer.Typer; untyped to keep typer out of imports
        self.manager.hook.lexiedge_add_data_commands(app=app)


def build_host(*extra_plugins: object, entry_points: bool = True) -> PluginHost:
    """A new host with the entry-point plugins (and ``extra_plugins``, e.g. in tests) registered."""
    manager = pluggy.PluginManager(NAME)
    manager.add_hookspecs(hookspecs)
    broken: dict[str, str] = {}
    distributions: dict[str, str] = {}
    if entry_points:
        _load_entry_points(manager, broken, distributions)
    for plugin in extra_plugins:
        manager.register(plugin)
    host = PluginHost(
        manager=manager,
        models=Registry("model", ModelPlugin),
        datasets=Registry("dataset", DatasetPlugin),
        trainers=Registry("trainer", TrainerPlugin),
        exporters=Registry("exporter", ExporterPlugin),
        evaluators=Registry("evaluator", EvaluatorPlugin),
        broken=broken,
        distributions=distributions,
    )
    manager.hook.lexiedge_add_models(registry=host.models)
    manager.hook.lexiedge_add_datasets(registry=host.datasets)
    manager.hook.lexiedge_add_trainers(registry=host.trainers)
    manager.hook.lexiedge_add_exporters(registry=host.exporters)
    manager.hook.lexiedge_add_evaluators(registry=host.evaluators)
    return host


def _load_entry_points(manager: pluggy.PluginManager, broken: dict[str, str], distributions: dict[str, str]) -> None:
    """Register every ``lexiedge`` entry point; one that fails to import is reported, not fatal.

    A broken third-party plugin must not take the whole CLI down with it; `lexiedge plugins` lists it
    with its error, and using one of its names fails with the list of the names that did load.
    """
    for dist in importlib.metadata.distributions():
        for entry_point in dist.entry_points:
            if entry_point.group != ENTRY_POINT_GROUP or manager.get_plugin(entry_point.name) is not None:
                continue
            if manager.is_blocked(entry_point.name):
                continue
            try:
                plugin = entry_point.load()
            except Exception as exc:  # any import-time failure of someone else's code
                broken[entry_point.name] = f"{entry_point.value}: {type(exc).__name__}: {exc}"
                continue
            manager.register(plugin, name=entry_point.name)
            module = entry_point.value.split(":")[0].split(".")[0]
            distributions[module] = f"{dist.metadata['Name']} {dist.version}"


_override: PluginHost | None = None


@lru_cache(maxsize=1)
def _installed_host() -> PluginHost:
    return build_host()


def get_host() -> PluginHost:
    """The process-wide host: every installed plugin (or the host set by :func:`set_host`)."""
    return _override if _override is not None else _installed_host()


def set_host(host: PluginHost | None) -> None:
    """Use ``host`` instead of the installed plugins (tests, embedding apps); ``None`` restores them."""
    global _override
    _override = host
