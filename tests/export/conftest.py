"""Fixtures of the export tests: one trained run per model, built once per session through the commands a
user types, and their artifacts, each exported once (on first use) and shared by every test.

emotion-av: `lexiedge data synth-av` (real mp4 files, 15 actors) -> `lexiedge train --profile cpu`
as shipped (30 epochs; test UAR ~0.6, chance 0.125: int8 agreement is only worth checking on a run
that learned), on a larger split: 6 training actors, and 7 validation actors (112 clips, evaluated
every 4 epochs) because "top-1 agreement >= 99%" allows no flip at all below 100 clips, so on the
default one-actor split (16 clips) a single near-tie decides it (a logit margin of 0.016 was seen).
qwen-lora: `lexiedge train --profile cpu` (its base is the tiny Qwen2 pretrained here, so logits are
not flat and the shipped int4 threshold holds) for a few LoRA steps -> `lexiedge merge`.

Exports run in this process, so the classifier's trace and the loaded datasets are reused across
targets, as they are within one `lexiedge export` call.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cli_runner import lexiedge_ok
from export_helpers import AV_VARIANTS, LM_VARIANTS, SYNTH_ACTORS, TEST_ACTORS, TRAIN_ACTORS, VAL_ACTORS

_AV = "models.emotion-av"
AV_TRAIN = tuple(arg for value in (
    f"{_AV}.train.eval_every=48",
    f"{_AV}.data.split.train={TRAIN_ACTORS}", f"{_AV}.data.split.val={VAL_ACTORS}",
    f"{_AV}.data.split.test={TEST_ACTORS}",
) for arg in ("--set", value))
LM_TRAIN = ("--set", "models.qwen-lora.train.epochs=1", "--set", "models.qwen-lora.train.max_steps=12")


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """One torch thread here and in the subprocesses export starts (GenAI builder, ORT converter).

    On the shared 2-core machine two OpenMP threads spin against everyone else's: a 4-epoch cpu-profile
    training took 69.7 s wall with 2 threads and 10.7 s with 1 (measured side by side, load ~5).
    """
    import torch

    threads, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if env is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = env


@pytest.fixture(autouse=True)
def _single_thread_in_tests() -> Iterator[None]:
    with single_thread():
        yield


def lexiedge(*args: str) -> None:
    """Run `lexiedge ARGS` in-process (session fixtures cannot use the function-scoped `cli`)."""
    with single_thread():
        lexiedge_ok(*args)


@pytest.fixture(scope="session")
def export_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="session")
def av_run(export_root: Path) -> Path:
    synth = export_root / "synth-av"
    lexiedge("data", "synth-av", "--out", synth, "--actors", str(SYNTH_ACTORS))
    run = export_root / "run-av"
    lexiedge("train", "--profile", "cpu", "--model", "emotion-av", "--data", synth, "--out", run, *AV_TRAIN)
    return run


@pytest.fixture(scope="session")
def lm_run(export_root: Path) -> Path:
    run = export_root / "run-lm"
    lexiedge("train", "--profile", "cpu", "--model", "qwen-lora", "--out", run, *LM_TRAIN)
    lexiedge("merge", run)
    return run


@dataclass(frozen=True)
class Artifact:
    path: Path
    target: str
    run: Path

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.path / "manifest.json").read_text(encoding="utf-8"))


def _exporter(root: Path, model: str, run: Path, variants: dict) -> Callable[[str], Artifact]:
    done: dict[str, Artifact] = {}

    def get(variant: str) -> Artifact:
        if variant not in done:
            target, overrides = variants[variant]
            out = root / "artifacts" / model / variant
            sets = [arg for value in overrides for arg in ("--set", value)]
            lexiedge("export", "--run", run, "--target", target, "--out", out, *sets)
            done[variant] = Artifact(out, target, run)
        return done[variant]

    return get


@pytest.fixture(scope="session")
def av_artifact(export_root: Path, av_run: Path) -> Callable[[str], Artifact]:
    """``av_artifact(variant)``: the emotion-av artifact of one of AV_VARIANTS, exported on first use."""
    return _exporter(export_root, "emotion-av", av_run, AV_VARIANTS)


@pytest.fixture(scope="session")
def lm_artifact(export_root: Path, lm_run: Path) -> Callable[[str], Artifact]:
    """``lm_artifact(variant)``: the qwen-lora artifact of one of LM_VARIANTS, exported on first use."""
    return _exporter(export_root, "qwen-lora", lm_run, LM_VARIANTS)
