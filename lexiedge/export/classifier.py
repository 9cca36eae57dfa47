"""An av-classification run's model as any exporter checks it: the trained PyTorch module, and the inputs to
verify an artifact on (the validation split, a shape sweep, calibration clips). Task-generic: every
exporter of the task (ONNX, ExecuTorch, ...) reads its source and its verification batches here; how a
format writes its graph is the exporter plugin's.

The graph takes what the task's contract says a batch holds, raw: ``waveform`` (B, S) 16 kHz mono,
``frames`` (B, T, 3, H, W) RGB in [0, 1], ``audio_mask`` and ``video_mask`` (B,); samples and frames
(and, where the format allows it, batch) are dynamic. It returns ``logits`` and ``probabilities``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lexiedge.cache import cache_dir
from lexiedge.errors import LexiedgeError
from lexiedge.export.errors import ExportError
from lexiedge.export.manifest import dynamic_axes, update_manifest
from lexiedge.rundir import WEIGHTS, find_checkpoint
from lexiedge_runtime.tasks import av_classification as av_task
from lexiedge_runtime.tasks.av_classification import (
    AUDIO_MASK,
    FRAMES,
    INPUT_NAMES,
    LABEL,
    VIDEO_MASK,
    WAVEFORM,
    ClassifierSpec,
    example_feeds,
    preprocessing_section,
)

if TYPE_CHECKING:
    import torch

    from lexiedge.api import DataSplits, ExportJob

TRACE_BATCH = 2  # >= 2 so that the tracer cannot specialise the batch axis to 1


@dataclass
class ClassifierSource:
    """The run's model as PyTorch, with what is needed to export and check it."""

    module: torch.nn.Module
    labels: list[str]
    checkpoint: Path
    example: tuple  # the trace inputs (waveform, frames, audio_mask, video_mask)
    model_settings: Any
    data_settings: Any
    fixed_tensors: set[str] = field(default_factory=set)  # buffers: constants, not learned weights
    job: ExportJob | None = None

    @property
    def num_classes(self) -> int:
        return len(self.labels)


def load_classifier(job: ExportJob) -> ClassifierSource:
    """Rebuild the run's architecture and load its best (else final) weights, strictly."""
    import torch
    from safetensors.torch import load_file

    entry = job.entry
    checkpoint = find_checkpoint(job.run_dir)
    if checkpoint is None:
        raise ExportError(f"{job.run_dir} has no checkpoint to export")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        built = job.model_plugin.build(entry.model.settings, job.profile.device, pretrained=False)
    module = built.module.cpu().float()
    state = load_file(checkpoint / WEIGHTS)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ExportError(
            f"{checkpoint / 'model.safetensors'} does not fit the architecture in {job.run_dir / 'profile.yaml'}: {first}"
        ) from None
    module.eval()
    example = job.model_plugin.example_batch(built, entry.model.settings, entry.data.settings, TRACE_BATCH)
    labels = list(built.extras.get("labels") or [])
    if not labels:
        with torch.no_grad():
            classes = module(*(example[name] for name in INPUT_NAMES)).shape[-1]
        labels = [f"class_{index}" for index in range(classes)]
    return ClassifierSource(
        module=module,
        labels=labels,
        checkpoint=checkpoint,
        example=tuple(example[name].cpu() for name in INPUT_NAMES),
        model_settings=entry.model.settings,
        data_settings=entry.data.settings,
        fixed_tensors={name for name, _ in module.named_buffers()},
        job=job,
    )


# --- inputs to check on ----------------------------------------------------------------------------


@dataclass
class Batch:
    feeds: dict[str, np.ndarray]
    labels: np.ndarray | None = None
    description: str = ""

    @property
    def shape(self) -> dict[str, int]:
        """Batch size, audio samples and video frames: the axes the graph must keep dynamic."""
        return input_shape(self.feeds[WAVEFORM], self.feeds[FRAMES])


def input_shape(waveform: Any, frames: Any) -> dict[str, int]:
    return {
        "batch": int(waveform.shape[0]),
        "samples": int(waveform.shape[1]),
        "frames": int(frames.shape[1]),
    }


_splits_cache: dict[tuple, DataSplits] = {}


def load_splits(source: ClassifierSource) -> DataSplits:
    """The run's dataset (the path recorded in run.json, or --data), loaded once per process."""
    from lexiedge.plugin import get_host

    job = source.job
    assert job is not None
    key = (str(job.run_dir.resolve()), str(job.data_path), repr(job.entry.data.settings))
    if key not in _splits_cache:
        data_plugin = get_host().datasets.get(job.entry.data.plugin)
        cache = cache_dir()
        try:
            _splits_cache[key] = data_plugin.load(
                job.entry.data.settings,
                job.data_path,
                built=_BuiltView(source.module),
                model_settings=source.model_settings,
                cache_dir=cache,
                console=job.console,
            )
        except LexiedgeError as exc:
            raise ExportError(
                f"cannot load the run's data to verify on its validation split ({exc}); pass --data PATH"
            ) from None
    return _splits_cache[key]


@dataclass
class _BuiltView:
    """What a dataset plugin may read from the built model (the module; no tokenizer for this task)."""

    module: Any
    tokenizer: Any = None
    extras: dict = field(default_factory=dict)


def _batches(dataset, collate, indices: list[int], batch_size: int, description: str) -> list[Batch]:
    batches = []
    for start in range(0, len(indices), batch_size):
        items = [dataset[i] for i in indices[start : start + batch_size]]
        collated = collate(items) if collate is not None else _stack(items)
        feeds = {
            name: np.ascontiguousarray(collated[name].numpy().astype(np.float32)) for name in INPUT_NAMES
        }
        labels = collated[LABEL].numpy() if LABEL in collated else None
        batches.append(Batch(feeds, labels, description))
    return batches


def _stack(items: list[dict]) -> dict:
    import torch

    return {key: torch.stack([torch.as_tensor(item[key]) for item in items]) for key in items[0]}


def validation_batches(source: ClassifierSource, limit: int, batch_size: int = 16) -> list[Batch]:
    splits = load_splits(source)
    dataset = splits.val if splits.val is not None and len(splits.val) else splits.test
    if dataset is None or not len(dataset):
        raise ExportError("the run's data has no validation (or test) clips to verify the export on")
    count = min(limit, len(dataset))
    return _batches(dataset, splits.collate, list(range(count)), batch_size, "validation split")


def calibration_batches(source: ClassifierSource, count: int, batch_size: int = 8) -> list[Batch]:
    """Training clips spread over the split (every k-th), so calibration sees every class and actor."""
    splits = load_splits(source)
    dataset = splits.train
    step = max(1, len(dataset) // count)
    indices = list(range(0, len(dataset), step))[:count]
    return _batches(dataset, splits.collate, indices, batch_size, "calibration clips")


def sweep_batches(source: ClassifierSource, fixed: tuple[int, int] | None = None) -> list[Batch]:
    """Inputs at shapes the trace never saw: batch 1 and 3, shorter and longer audio, 1 and T+3 frames.

    The batch of 3 also has a clip without audio and a clip without video (masks 0, zeros), as
    the data contract allows. ``fixed`` (samples, frames): a graph of static shapes (LiteRT), swept at
    that length only (batch 1 and 3, the missing modalities); its runner fits other lengths to it.
    """
    waveform, frames, _, _ = source.example
    samples, count, size = waveform.shape[1], frames.shape[1], frames.shape[-1]
    rng = np.random.default_rng(1234)
    shapes = [(1, max(2000, int(samples * 0.6)), 1), (3, int(samples * 1.45) + 123, count + 3)]
    if fixed is not None:
        shapes = [(1, *fixed), (3, *fixed)]
    batches = []
    for batch, length, frame_count in shapes:
        feeds = example_feeds(rng, batch, length, frame_count, size)
        if batch >= 3:
            feeds[AUDIO_MASK][1], feeds[WAVEFORM][1] = 0.0, 0.0
            feeds[VIDEO_MASK][2], feeds[FRAMES][2] = 0.0, 0.0
        description = f"batch {batch}, {length} samples, {frame_count} frames"
        batches.append(Batch(feeds, None, description))
    return batches


def reference_logits(source: ClassifierSource, feeds: dict[str, np.ndarray]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return source.module(*(torch.from_numpy(feeds[name]) for name in INPUT_NAMES)).float().numpy()


def preprocessing(source: ClassifierSource) -> dict[str, Any]:
    """The manifest's ``preprocessing``, written by the task spec: the data settings the model was trained
    with (its clip settings included) and how the runtime decodes files as the run's evaluation data."""
    data = source.data_settings.model_dump(mode="json") if hasattr(source.data_settings, "model_dump") else {}
    data_plugin = source.job.entry.data.plugin if source.job else None
    media = None
    if data_plugin is not None:  # how the runtime decodes files as this run's evaluation data (predict_file)
        from lexiedge.plugin import get_host

        media = get_host().datasets.get(data_plugin).media_preprocessing(source.data_settings)
    return preprocessing_section(list(source.labels), data, data_plugin, media)


def write_classifier_manifest(
    job: ExportJob,
    source: ClassifierSource,
    *,
    signature: dict[str, list[dict[str, Any]]],
    runtime: dict[str, Any],
    model_files: list[str],
    report: dict[str, Any],
    **extra: Any,
) -> None:
    """The sections every classifier artifact's manifest has, whatever its format: ``signature`` (the
    format's runtime's view of the graph), ``runtime`` (its ``engine`` picks the runner), the labels,
    ``preprocessing``, the verification report and the model plugin's own sections; ``extra`` adds the
    format's (``export``, ``quantization``, ...)."""
    update_manifest(
        job.out_dir,
        signature=signature,
        dynamic_axes=dynamic_axes(signature),
        labels=source.labels,
        preprocessing=preprocessing(source),
        runtime=runtime,
        model_files=model_files,
        source={"checkpoint_file": str(source.checkpoint / WEIGHTS)},
        verification=report,
        **job.model_plugin.manifest_sections(source.module),
        **extra,
    )


def batch_one_signature(
    spec: ClassifierSpec, classes: int, outputs: Sequence[str], fixed: Mapping[str, int] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The manifest's ``signature`` of a program that takes one clip at a time (ExecuTorch, LiteRT): the
    task's tensors (the ``outputs`` named) with batch 1; the axes in ``fixed`` at those sizes (a static
    graph), the other named axes by name (dynamic); unnamed axes at the image size (inputs) or the label
    count (outputs)."""
    sizes: dict[str, int] = {"batch": 1, **(fixed or {})}

    def describe(tensors: Sequence[Any], unnamed: int) -> list[dict[str, Any]]:
        return [
            {
                "name": tensor.name,
                "dtype": tensor.dtype,
                "shape": [unnamed if axis is None else sizes.get(axis, axis) for axis in tensor.axes],
            }
            for tensor in tensors
        ]

    kept = [tensor for tensor in av_task.OUTPUTS if tensor.name in outputs]
    return {"inputs": describe(av_task.INPUTS, spec.image_size), "outputs": describe(kept, classes)}
