"""``train.compile``: torch.compile of the modules a task's loss runs, in place.

``nn.Module.compile`` compiles a module's call without wrapping it, so parameter names, state dicts,
checkpoints, peft adapters and DDP see the same module as in an eager run. The compile happens at the
first training step, which is when its cost shows. Evaluation runs the same modules eagerly
(:func:`evaluation_stance`): under ``no_grad`` they would compile a second graph, minutes for a large
model, to save seconds on a validation split evaluated a few times a run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

import torch
from rich.console import Console

from lexiedge.errors import LexiedgeError

# compilers inductor's CPU backend tries when CXX is unset
CPP_COMPILERS = ("g++", "clang++", "c++")


def check_cpp_compiler(device: torch.device) -> None:
    """On the CPU, inductor writes C++ and builds it: without a compiler the first step would fail deep in
    torch, so say it before training starts."""
    if device.type != "cpu":
        return
    wanted = os.environ.get("CXX")
    candidates = (wanted,) if wanted else CPP_COMPILERS
    if not any(shutil.which(name) for name in candidates):
        raise LexiedgeError(
            f"train.compile on the CPU needs a C++ compiler for torch.compile ({' or '.join(candidates)} on PATH"
            + (", from CXX" if wanted else "") + "); install one (apt-get install g++) or set train.compile false"
        )


def compile_in_place(modules: list[torch.nn.Module], device: torch.device, console: Console) -> None:
    check_cpp_compiler(device)
    for module in modules:
        module.compile()
    names = ", ".join(type(module).__name__ for module in modules)
    console.print(
        f"train.compile: {names} compiled with torch.compile; the first step includes compiling (minutes for "
        "a large model); evaluation runs eagerly",
        markup=False, highlight=False, soft_wrap=True,
    )


@contextlib.contextmanager
def evaluation_stance(compiled: bool) -> Iterator[None]:
    """Compiled modules run eagerly inside (``torch.compiler.set_stance("force_eager")``), compiling nothing."""
    if not compiled:
        yield
        return
    with torch.compiler.set_stance("force_eager"):
        yield
