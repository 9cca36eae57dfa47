"""Every hook a lexiedge plugin may implement.

Hooks are called once per process when the plugin host is built (:func:`lexiedge.plugin.get_host`).
Registration hooks receive a typed :class:`~lexiedge.registry.Registry` and add plugin classes to it;
they return nothing, and every implementation is called (no ``firstresult``).

A plugin module marks its implementations with :data:`lexiedge.plugin.hookimpl` and is announced
in its distribution's ``[project.entry-points.lexiedge]`` table; the built-in plugins use the same path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import typer

    from lexiedge.api import DatasetPlugin, EvaluatorPlugin, ExporterPlugin, ModelPlugin, TrainerPlugin
    from lexiedge.registry import Registry

hookspec = pluggy.HookspecMarker("lexiedge")


@hookspec
def lexiedge_add_models(registry: Registry[ModelPlugin]) -> None:
    """Register model plugins (:class:`~lexiedge.api.ModelPlugin` subclasses) with ``registry.add``.

    A model plugin builds the trainable module named by ``models.<name>.model.plugin``.
    """


@hookspec
def lexiedge_add_datasets(registry: Registry[DatasetPlugin]) -> None:
    """Register dataset plugins (:class:`~lexiedge.api.DatasetPlugin` subclasses) with ``registry.add``.

    A dataset plugin turns ``--data PATH`` and ``models.<name>.data`` into train/val/test splits.
    """


@hookspec
def lexiedge_add_trainers(registry: Registry[TrainerPlugin]) -> None:
    """Register trainer plugins (:class:`~lexiedge.api.TrainerPlugin` subclasses) with ``registry.add``.

    A trainer plugin supplies the loss and metrics of a task and runs the shared training engine.
    """


@hookspec
def lexiedge_add_exporters(registry: Registry[ExporterPlugin]) -> None:
    """Register exporter plugins (:class:`~lexiedge.api.ExporterPlugin` subclasses) with ``registry.add``.

    An exporter plugin is an export target (``lexiedge export --target NAME``): it writes and
    verifies an artifact directory.
    """


@hookspec
def lexiedge_add_evaluators(registry: Registry[EvaluatorPlugin]) -> None:
    """Register evaluator plugins (:class:`~lexiedge.api.EvaluatorPlugin` subclasses) with ``registry.add``.

    An evaluator scores a task (``lexiedge eval``) from a run's weights and from its exported artifacts.
    """


@hookspec
def lexiedge_add_data_commands(app: typer.Typer) -> None:
    """Add subcommands to ``lexiedge data`` (e.g. a generator of synthetic data for a dataset plugin).

    Called when the CLI is built; implementations register commands on ``app`` with ``app.command``.
    """
