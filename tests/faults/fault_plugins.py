"""A tiny, real audio-visual classifier setup for the fault suite, and a script that runs lexiedge with it.

`fault-av` is a model plugin with emotion-av's forward signature that accepts any clip length and
frame count (statistics over samples and frames, then linear layers), with its own ONNX writer, so
the real `onnx` exporter exports and verifies it in about a second. `fault-clips` is a dataset plugin
of tones and coloured frames, one frequency and colour per class, whose settings carry what a
classifier artifact's manifest needs (sample rate, clip length, frames, image size); it decodes
``.npz`` files for `lexiedge infer`.

As a script, ``python fault_plugins.py ARGS...`` is ``lexiedge ARGS...`` in a fresh process with
these plugins registered beside the installed ones. Two environment variables stop that process
at a moment a test chooses (SIGSTOP: the test then kills or continues it):

* ``FAULT_STOP_IN_CHECKPOINT=STEP``: inside the write of checkpoint STEP, after its weights are on
  disk and before its checksums (a kill there is a kill during a checkpoint write);
* ``FAULT_STOP_AFTER_CHECKPOINT=STEP``: right after checkpoint STEP is in place.

``FAULT_ENOSPC_UNDER=DIR`` makes every write of a file under DIR fail with ENOSPC at its first byte
(the file is created, nothing lands in it): a full disk, where no small tmpfs can be mounted.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import yaml
from pydantic import Field
from torch import nn
from torch.utils.data import Dataset

from lexiedge.api import BuiltModel, DataSplits, DatasetPlugin, ModelPlugin, PluginSettings
from lexiedge.plugin import hookimpl

MODEL_KEY = "fault"
INPUTS = ("waveform", "frames", "audio_mask", "video_mask")


# --- the model --------------------------------------------------------------------------------------


class FaultAVSettings(PluginSettings):
    hidden: int = Field(8, ge=2)
    num_classes: int = Field(3, ge=2)
    image_size: int = Field(8, ge=2)


class FaultAV(nn.Module):
    """Mean and mean |x| of the waveform, the mean frame: any length, any frame count."""

    def __init__(self, hidden: int, num_classes: int, image_size: int) -> None:
        super().__init__()
        self.audio = nn.Linear(2, hidden)
        self.visual = nn.Linear(3 * image_size * image_size, hidden)
        self.head = nn.Linear(2 * hidden, num_classes)

    def forward(self, waveform, frames, audio_mask, video_mask):
        audio_stats = torch.stack([waveform.mean(dim=1), waveform.abs().mean(dim=1)], dim=-1)
        audio = torch.tanh(self.audio(audio_stats * 10)) * audio_mask[:, None]
        visual = torch.tanh(self.visual(frames.mean(dim=1).flatten(1))) * video_mask[:, None]
        return self.head(torch.cat([audio, visual], dim=-1))


class FaultAVPlugin(ModelPlugin):
    name = "fault-av"
    description = "fault suite: a tiny classifier with a dynamic-length ONNX graph"
    task = "av-classification"
    Settings = FaultAVSettings

    def build(self, settings, device, *, pretrained=True):
        torch.manual_seed(0)
        return BuiltModel(module=FaultAV(settings.hidden, settings.num_classes, settings.image_size))

    def example_batch(self, built, settings, data_settings, batch_size):
        samples = round(data_settings.clip_seconds * data_settings.sample_rate)
        size = settings.image_size
        return {
            "waveform": torch.rand(batch_size, samples) * 0.2 - 0.1,
            "frames": torch.rand(batch_size, data_settings.frames, 3, size, size),
            "audio_mask": torch.ones(batch_size),
            "video_mask": torch.ones(batch_size),
            "label": torch.zeros(batch_size, dtype=torch.long),
        }

    def export_onnx(self, module, path: Path, example: tuple, *, opset: int) -> Path:
        """The TorchScript exporter: a second where dynamo takes ten, and every axis named dynamic."""
        axes = {"waveform": {0: "batch", 1: "samples"}, "frames": {0: "batch", 1: "frames"},
                "audio_mask": {0: "batch"}, "video_mask": {0: "batch"}, "logits": {0: "batch"}}
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter, on purpose
            torch.onnx.export(module, tuple(example), str(path), input_names=list(INPUTS), output_names=["logits"],
                              dynamic_axes=axes, opset_version=opset, dynamo=False)
        return path


# --- the data ---------------------------------------------------------------------------------------


class FaultClipsSettings(PluginSettings):
    sample_rate: int = 1000
    clip_seconds: float = 0.5
    frames: int = 2
    image_size: int = 8
    modalities: list[str] = Field(default_factory=lambda: ["audio", "video"])
    num_classes: int = 3
    train: int = 48
    val: int = 24
    seed: int = 0


class ToneClips(Dataset):
    """Class k: a tone at 50 (k + 1) Hz with amplitude 0.1 (k + 1), frames of one colour per class, noise."""

    def __init__(self, settings: FaultClipsSettings, size: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        samples = round(settings.clip_seconds * settings.sample_rate)
        t = np.arange(samples) / settings.sample_rate
        self.labels = np.arange(size) % settings.num_classes
        size_px = settings.image_size
        self.waveform = np.stack([
            0.1 * (k + 1) * np.sin(2 * np.pi * 50 * (k + 1) * t) + 0.02 * rng.standard_normal(samples)
            for k in self.labels]).astype(np.float32)
        colours = rng.uniform(0, 1, (settings.num_classes, 3, 1, 1))
        self.frames = np.clip(
            colours[self.labels][:, None] + 0.1 * rng.standard_normal((size, settings.frames, 3, size_px, size_px)),
            0, 1).astype(np.float32)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            "waveform": torch.from_numpy(self.waveform[index]),
            "frames": torch.from_numpy(self.frames[index]),
            "audio_mask": torch.tensor(1.0),
            "video_mask": torch.tensor(1.0),
            "label": torch.tensor(int(self.labels[index])),
        }


class FaultClipsPlugin(DatasetPlugin):
    name = "fault-clips"
    description = "fault suite: tones and coloured frames, one per class"
    tasks = frozenset({"av-classification"})
    Settings = FaultClipsSettings

    def load(self, settings, source, *, built, model_settings, cache_dir, console):
        seed = settings.seed + (int(Path(source).read_text().strip() or 0) if source is not None else 0)
        return DataSplits(
            train=ToneClips(settings, settings.train, seed + 1),
            val=ToneClips(settings, settings.val, seed + 2) if settings.val else None,
            test=None,
            labels=[f"class-{k}" for k in range(settings.num_classes)],
            summary={"train": settings.train, "val": settings.val},
        )

    def decode_for_inference(self, settings, path: Path) -> dict:
        from lexiedge.errors import UsageError

        try:
            arrays = np.load(path)
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: cannot decode ({exc})") from None
        return {"waveform": arrays["waveform"], "frames": arrays["frames"], "sample_rate": int(arrays["sample_rate"])}


@hookimpl
def lexiedge_add_models(registry):
    registry.add(FaultAVPlugin)


@hookimpl
def lexiedge_add_datasets(registry):
    registry.add(FaultClipsPlugin)


# --- profiles and processes --------------------------------------------------------------------------


def write_profile(path: Path, **train: object) -> Path:
    """A one-model CPU profile: fault-av on fault-clips with the real classifier trainer and onnx exporter."""
    profile = {
        "name": "fault-test",
        "device": {"kind": "cpu", "memory_gb": 2, "precision": "fp32"},
        "models": {
            MODEL_KEY: {
                "model": {"plugin": "fault-av"},
                "data": {"plugin": "fault-clips"},
                "train": {"plugin": "classifier", "batch_size": 8, "epochs": 2, "lr": 0.05,
                          "checkpoint_every": 3, "keep_last": 3, **train},
                "export": {"targets": ["onnx"], "options": {"onnx": {"max_val_clips": 24}}},
            }
        },
    }
    path.write_text(yaml.safe_dump(profile, sort_keys=False), encoding="utf-8")
    return path


def use_fault_host() -> None:
    """This process's plugin host: the installed plugins plus fault-av and fault-clips."""
    from lexiedge.plugin import build_host, set_host

    set_host(build_host(sys.modules[__name__]))


def script_command(*args: str) -> list[str]:
    """``lexiedge ARGS`` as a fresh process with the fault plugins (see the module doc)."""
    return [sys.executable, str(Path(__file__).resolve()), *map(str, args)]


def process_env(**extra: str) -> dict[str, str]:
    """One thread: fault processes share the 2 CI cores with the test run."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
            "COLUMNS": "200", **extra}


def _stop_at_checkpoints() -> None:
    """Install the SIGSTOP points the environment asks for (see the module doc)."""
    from lexiedge.train import checkpoint as ckpt

    inside = os.environ.get("FAULT_STOP_IN_CHECKPOINT")
    after = os.environ.get("FAULT_STOP_AFTER_CHECKPOINT")
    if inside:
        real_write_checksums = ckpt.write_checksums

        def stop_inside(directory: Path, names: list[str]) -> None:
            if directory.name.startswith(f".tmp-{ckpt.step_dir_name(int(inside))}-"):
                os.kill(os.getpid(), signal.SIGSTOP)  # weights and state written, checksums not yet
            real_write_checksums(directory, names)

        ckpt.write_checksums = stop_inside
    if after:
        real_save = ckpt.save_checkpoint

        def stop_after(root, step, *args, **kwargs):
            path = real_save(root, step, *args, **kwargs)
            if step == int(after):
                os.kill(os.getpid(), signal.SIGSTOP)
            return path

        ckpt.save_checkpoint = stop_after


def _enospc_under(directory: str) -> None:
    """Writes of files under ``directory`` fail with ENOSPC at their first byte; the files are created.

    Python's own writers go through ``open`` (``onnx.save``, ``json``, ``write_text``); ``shutil``'s
    copies through ``os.sendfile``. Both are wrapped: the file is opened for real, then its first write
    raises the OSError a full disk raises.
    """
    import builtins
    import io

    root = os.path.realpath(directory)
    real_open, real_sendfile = builtins.open, os.sendfile

    def full(path: object) -> OSError:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    def under(path: object) -> bool:
        return isinstance(path, (str, os.PathLike)) and os.path.realpath(os.fspath(path)).startswith(root + os.sep)

    class FullDiskFile:
        def __init__(self, handle, path) -> None:
            self._handle, self._path = handle, path

        def write(self, data):
            raise full(self._path)

        def writelines(self, lines):
            raise full(self._path)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._handle.close()

        def __getattr__(self, name):
            return getattr(self._handle, name)

    def open_(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if under(file) and any(flag in mode for flag in "wax+"):
            return FullDiskFile(handle, file)
        return handle

    def sendfile(out_fd, in_fd, offset, count):
        if under(os.readlink(f"/proc/self/fd/{out_fd}")):
            raise full(os.readlink(f"/proc/self/fd/{out_fd}"))
        return real_sendfile(out_fd, in_fd, offset, count)

    builtins.open = io.open = open_
    os.sendfile = sendfile


if __name__ == "__main__":
    torch.set_num_threads(1)
    use_fault_host()
    _stop_at_checkpoints()
    if os.environ.get("FAULT_ENOSPC_UNDER"):
        _enospc_under(os.environ["FAULT_ENOSPC_UNDER"])
    from lexiedge.cli import main

    sys.exit(main(sys.argv[1:]))
