"""``lexiedge.runtime``: the toolkit's name for :mod:`lexiedge_runtime`, kept for existing code.

The runtime is its own distribution, ``lexiedge-runtime`` (``runtime/`` in this repository), which
apps install without the toolkit and import as ``lexiedge_runtime``. The toolkit depends on it, and
this package makes ``import lexiedge.runtime`` and ``from lexiedge.runtime.chat import ...`` give the
very same module objects (one class per error, one ``load``): each submodule that existed under this
name is registered as an alias, nothing is copied. New code imports ``lexiedge_runtime``.
"""

from __future__ import annotations

import sys

import lexiedge_runtime
from lexiedge_runtime import *  # noqa: F403  (the public API, as listed in lexiedge_runtime.__all__)
from lexiedge_runtime import (
    artifact,
    chat,
    classifier,
    devices,
    errors,
    generator,
    inputs,
    kv_cache,
    manifest,
)

__all__ = list(lexiedge_runtime.__all__)
__version__ = lexiedge_runtime.__version__
__path__: list[str] = []  # nothing is loaded from here: a submodule is one of the aliases below or nothing

for _module in (artifact, chat, classifier, devices, errors, generator, inputs, kv_cache, manifest):
    sys.modules[f"{__name__}.{_module.__name__.rsplit('.', 1)[1]}"] = _module
