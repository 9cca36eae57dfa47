"""The shared training engine: one loop, used by every trainer plugin.

A trainer plugin implements :class:`TrainTask` (loss, metrics, what a checkpoint holds) and runs::

    from lexiedge.train import Engine, prepare

    def fit(self, job):
        built, splits = prepare(job)                  # model from job.model_plugin, data from job.data_plugin
        return Engine(job, job.entry.train.settings, built, splits, task=self).run()

The names below load on first use: importing ``lexiedge.train.settings`` (which every profile load
does) must not pull in torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lexiedge.train.engine import Engine, forward_backward
    from lexiedge.train.preparation import prepare
    from lexiedge.train.optim import Schedule, lr_at
    from lexiedge.cache import cache_dir
    from lexiedge.train.settings import EngineSettings
    from lexiedge.train.task import TrainTask

__all__ = ["Engine", "EngineSettings", "Schedule", "TrainTask", "cache_dir", "forward_backward", "lr_at", "prepare"]

_LAZY = {
    "Engine": "lexiedge.train.engine",
    "forward_backward": "lexiedge.train.engine",
    "prepare": "lexiedge.train.preparation",
    "Schedule": "lexiedge.train.optim",
    "lr_at": "lexiedge.train.optim",
    "cache_dir": "lexiedge.cache",
    "EngineSettings": "lexiedge.train.settings",
    "TrainTask": "lexiedge.train.task",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lexiedge.train' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
