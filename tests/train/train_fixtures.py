"""A real, tiny classification setup for the engine tests, and a script that trains it.

`clusters` is a dataset plugin of separable Gaussian clusters shaped like emotion-av batches
(waveform, frames, masks, label), and `tiny-av` a model plugin with the emotion-av forward signature:
two linear branches, dropout (so resuming must restore the RNG), a linear head. Both serve the
"av-classification" task, so the real `classifier` trainer trains them through the real pipeline.

As a script (``python train_fixtures.py PROFILE RUN_DIR [--resume]``, also under torchrun) it
trains the profile's `tiny` model into RUN_DIR. With ``TINY_STOP_AFTER_CHECKPOINT=N:RUN_DIR`` set,
the data set stops its own process (SIGSTOP) once it has served N samples after the first checkpoint
of RUN_DIR appeared, so a test can SIGKILL it in the middle of an epoch at a point of its choosing.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
import yaml
from pydantic import Field
from torch import nn
from torch.utils.data import Dataset

from lexiedge.api import BuiltModel, DataSplits, DatasetPlugin, ModelPlugin, PluginSettings
from lexiedge.plugin import hookimpl

WAVE = 32
FRAMES = (2, 3, 4, 4)
MODEL_KEY = "tiny"


class TinyAVSettings(PluginSettings):
    hidden: int = Field(16, ge=2)
    num_classes: int = Field(4, ge=2)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)


class TinyAV(nn.Module):
    def __init__(self, hidden: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.audio = nn.Linear(WAVE, hidden)
        self.visual = nn.Linear(math.prod(FRAMES), hidden)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden, num_classes)

    def forward(self, waveform, frames, audio_mask, video_mask):
        audio = nn.functional.gelu(self.audio(waveform)) * audio_mask[:, None]
        visual = nn.functional.gelu(self.visual(frames.flatten(1))) * video_mask[:, None]
        return self.head(self.dropout(torch.cat([audio, visual], dim=-1)))


class TinyAVPlugin(ModelPlugin):
    name = "tiny-av"
    task = "av-classification"
    Settings = TinyAVSettings

    def build(self, settings, device, *, pretrained=True):
        return BuiltModel(module=TinyAV(settings.hidden, settings.num_classes, settings.dropout))

    def example_batch(self, built, settings, data_settings, batch_size):
        return {
            "waveform": torch.randn(batch_size, WAVE),
            "frames": torch.randn(batch_size, *FRAMES),
            "audio_mask": torch.ones(batch_size),
            "video_mask": torch.ones(batch_size),
            "label": torch.randint(0, settings.num_classes, (batch_size,)),
        }


class ClustersSettings(PluginSettings):
    train: int = 96
    val: int = 32
    test: int = 48
    num_classes: int = 4
    separation: float = 0.4  # scale of the class centres (noise 1): learnable in an epoch or two, not at init
    noise: float = 1.0
    seed: int = 0
    shuffle_train_labels: bool = False  # a set whose training labels say nothing about the inputs


class ClusterSet(Dataset):
    """Balanced samples around one random centre per class (in both modalities)."""

    def __init__(self, size: int, centres: tuple[torch.Tensor, torch.Tensor], noise: float, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        classes = centres[0].shape[0]
        self.labels = (torch.arange(size) % classes)[torch.randperm(size, generator=generator)]
        self.waveform = centres[0][self.labels] + noise * torch.randn(size, WAVE, generator=generator)
        self.frames = centres[1][self.labels] + noise * torch.randn(size, *FRAMES, generator=generator)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            "waveform": self.waveform[index],
            "frames": self.frames[index],
            "audio_mask": torch.tensor(1.0),
            "video_mask": torch.tensor(1.0),
            "label": self.labels[index],
        }


class StopAfterCheckpoint(Dataset):
    """Serves ``inner``; after the first checkpoint exists and ``after`` more samples, stops this process."""

    def __init__(self, inner: Dataset, checkpoints: Path, after: int) -> None:
        self.inner, self.checkpoints, self.after, self.served = inner, checkpoints, after, 0

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int):
        if self.checkpoints.is_dir() and any(p.name.startswith("step-") for p in self.checkpoints.iterdir()):
            self.served += 1
            if self.served > self.after:
                os.kill(os.getpid(), signal.SIGSTOP)
        return self.inner[index]


class ClustersPlugin(DatasetPlugin):
    name = "clusters"
    tasks = frozenset({"av-classification"})
    Settings = ClustersSettings

    def load(self, settings, source, *, built, model_settings, cache_dir, console):
        generator = torch.Generator().manual_seed(1000 + settings.seed)
        centres = (
            settings.separation * torch.randn(settings.num_classes, WAVE, generator=generator),
            settings.separation * torch.randn(settings.num_classes, *FRAMES, generator=generator),
        )
        train = ClusterSet(settings.train, centres, settings.noise, settings.seed + 1)
        if settings.shuffle_train_labels:
            train.labels = train.labels[torch.randperm(len(train.labels), generator=torch.Generator().manual_seed(7))]
        stop = os.environ.get("TINY_STOP_AFTER_CHECKPOINT")  # "SAMPLES:RUN_DIR"
        if stop:
            after, run_dir = stop.split(":", 1)
            train = StopAfterCheckpoint(train, Path(run_dir) / "checkpoints", int(after))
        return DataSplits(
            train=train,
            val=ClusterSet(settings.val, centres, settings.noise, settings.seed + 2) if settings.val else None,
            test=ClusterSet(settings.test, centres, settings.noise, settings.seed + 3) if settings.test else None,
            labels=[f"class-{index}" for index in range(settings.num_classes)],
            summary={"train": settings.train, "val": settings.val, "test": settings.test},
        )


@hookimpl
def lexiedge_add_models(registry):
    registry.add(TinyAVPlugin)


@hookimpl
def lexiedge_add_datasets(registry):
    registry.add(ClustersPlugin)


# --- profiles and runs ------------------------------------------------------------------------------


def read_meta(checkpoint: Path) -> dict:
    """A checkpoint's meta.json (step, epoch, position, ...), as the engine wrote it."""
    import json

    from lexiedge.train.checkpoint import META

    return json.loads((checkpoint / META).read_text(encoding="utf-8"))


def write_profile(path: Path, train: dict | None = None, model: dict | None = None, data: dict | None = None,
                  device: dict | None = None) -> Path:
    """A one-model CPU profile training `tiny-av` on `clusters` with the `classifier` trainer."""
    profile = {
        "name": "tiny-test",
        "device": device or {"kind": "cpu", "memory_gb": 2, "precision": "fp32"},
        "models": {
            MODEL_KEY: {
                "model": {"plugin": "tiny-av", **(model or {})},
                "data": {"plugin": "clusters", **(data or {})},
                "train": {"plugin": "classifier", "batch_size": 8, "epochs": 3, "lr": 1e-2, **(train or {})},
            }
        },
    }
    path.write_text(yaml.safe_dump(profile, sort_keys=False), encoding="utf-8")
    return path


def use_test_host() -> None:
    """The process-wide plugin host: these fixtures plus the real classifier trainer (no other entry points)."""
    import lexiedge_classifier.plugin

    from lexiedge.plugin import build_host, set_host

    set_host(build_host(lexiedge_classifier.plugin, sys.modules[__name__], entry_points=False))


def train_run(profile_path: Path, run_dir: Path, *, resume: bool = False, overrides=()):
    """`lexiedge train --profile P --out RUN_DIR [--resume]`, through the real pipeline."""
    from rich.console import Console

    from lexiedge.training_runs import TrainRequest, train
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile

    profile = load_profile(profile_path, list(overrides), host=get_host())
    request = TrainRequest(profile=profile, model_keys=[MODEL_KEY], data={MODEL_KEY: None}, out=run_dir, resume=resume)
    (result,) = train(request, Console(stderr=True))
    return result


def subprocess_env(**extra: str) -> dict[str, str]:
    """One thread per process: two training processes share the 2 CI cores without thrashing."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}


def start_training(profile: Path, run_dir: Path, *flags: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """This file as a script (``PROFILE RUN_DIR [--resume]``) in a fresh Python process."""
    return subprocess.Popen(
        [sys.executable, __file__, str(profile), str(run_dir), *flags],
        env=env or subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 240) -> str:
    """Wait for a training subprocess; its output in the failure message."""
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"training subprocess failed ({process.returncode}):\n{output[-4000:]}"
    return output


if __name__ == "__main__":
    torch.set_num_threads(1)
    use_test_host()
    profile_arg, run_arg, *flags = sys.argv[1:]
    train_run(Path(profile_arg), Path(run_arg), resume="--resume" in flags)
