"""The ExecuTorch export targets of av-classification runs: ``executorch`` (fp32) and ``executorch-int8``
(PT2E static int8), both XNNPACK-delegated.

The artifact is ``model.pte`` + ``manifest.json``, verified exactly as the ONNX targets are (the core's
:func:`~lexiedge.export.verify_classifier.check_classifier`: the shape sweep and the validation clips
against the PyTorch model, the task's thresholds for the graph's precision, the task metric's delta in
the manifest), through the runtime's own ExecuTorch runner
(:class:`lexiedge_runtime.executorch_runner.PteProgram`), so what was verified is what apps run. The
program is lowered for one clip at a time (batch 1); the runner runs a batch clip by clip. Nothing here
imports torch or ExecuTorch until a target runs.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lexiedge_runtime.errors import first_line
from lexiedge_runtime.executorch_runner import ENGINE, GRAPH, OUTPUT_NAMES, PteProgram, quiet_import
from lexiedge_runtime.tasks import av_classification as av_task
from lexiedge_runtime.tasks.av_classification import (
    FRAMES,
    INPUT_NAMES,
    MIN_AUDIO_SECONDS,
    WAVEFORM,
    ClassifierSpec,
)

from lexiedge import atomic
from lexiedge.api import ExporterPlugin, ExportJob, PluginSettings
from lexiedge.errors import NotAvailableError, UsageError
from lexiedge.export import ExportError
from lexiedge.export.classifier import (
    ClassifierSource,
    batch_one_signature,
    calibration_batches,
    load_classifier,
    preprocessing,
    write_classifier_manifest,
)
from lexiedge.export.settings import VerifySettings
from lexiedge.export.verify_classifier import check_classifier, classifier_thresholds
from lexiedge_executorch.settings import ExecutorchInt8Settings, ExecutorchSettings

if TYPE_CHECKING:
    from lexiedge_executorch.lowering import AxisBounds

INSTALL = "pip install 'lexiedge[executorch]'"
# a clip at the length limit in another sample rate may resample to a few samples more
RESAMPLING_SLACK_SECONDS = 1.0


def require_executorch(target: str) -> None:
    """Refuse in one line before any work when ExecuTorch is not installed."""
    if importlib.util.find_spec("executorch") is None:
        raise NotAvailableError(f"target {target!r} needs ExecuTorch (not installed): {INSTALL}")


def axis_bounds(source: ClassifierSource) -> tuple[ClassifierSpec, list[AxisBounds]]:
    """The dynamic axes' ranges: every input the runtime accepts for this model (from MIN_AUDIO_SECONDS to
    ``preprocessing.max_input_seconds`` of audio, 1 to ``max_frames`` frames), since ExecuTorch plans its
    memory for the upper bound and refuses what lies outside."""
    from lexiedge_executorch.lowering import AxisBounds

    spec = ClassifierSpec.from_manifest(
        {"labels": source.labels, "preprocessing": preprocessing(source)}, "the run's preprocessing"
    )
    rate = spec.sample_rate
    shortest = round(MIN_AUDIO_SECONDS * rate) // 2  # a short clip resampled up may lose a sample or two
    longest = math.ceil((spec.max_input_seconds + RESAMPLING_SLACK_SECONDS) * rate)
    waveform, frames = INPUT_NAMES.index(WAVEFORM), INPUT_NAMES.index(FRAMES)
    return spec, [AxisBounds(waveform, 1, shortest, longest), AxisBounds(frames, 1, 1, spec.max_frames)]


def program_signature(spec: ClassifierSpec, classes: int) -> dict[str, list[dict[str, Any]]]:
    """The manifest's ``signature``: the task's tensors with the program's batch of 1, samples and frames
    dynamic (by name)."""
    return batch_one_signature(spec, classes, OUTPUT_NAMES)


class ExecutorchExporter(ExporterPlugin):
    name: ClassVar[str] = "executorch"
    description: ClassVar[str] = (
        "ExecuTorch program (.pte), fp32, XNNPACK-delegated; batch 1, dynamic samples and frames "
        "(extra [executorch])"
    )
    Settings: ClassVar[type[PluginSettings]] = ExecutorchSettings
    tasks: ClassVar[frozenset[str]] = frozenset({av_task.NAME})
    precision: ClassVar[str] = "fp32"  # the graph's precision: the task's thresholds for it

    def export(self, job: ExportJob) -> Path:
        settings = job.settings
        assert isinstance(settings, VerifySettings)
        require_executorch(self.name)
        source = load_classifier(job)
        if job.model_plugin.manifest_sections(source.module):
            raise UsageError(
                f"target {self.name!r} exports the task's four-input graph; {job.model_key} normalises "
                "by speaker (enrollment inputs and outputs): export it with --target onnx"
            )
        spec, bounds = axis_bounds(source)
        graph = job.out_dir / GRAPH
        program, quantization = self._lower(job, source, bounds, settings)
        atomic.write_bytes(graph, program)
        runner = PteProgram(graph)
        export = {
            "tool": "torch.export + executorch.exir.to_edge_transform_and_lower",
            "backend": "XNNPACK (XnnpackPartitioner)",
            "precision": self.precision,
            "batch": 1,
            "bounds": {"samples": [bounds[0].low, bounds[0].high], "frames": [bounds[1].low, bounds[1].high]},
        }
        extra = {"quantization": quantization} if quantization else {}

        def write_manifest(report: dict[str, Any]) -> None:
            write_classifier_manifest(
                job,
                source,
                signature=program_signature(spec, source.num_classes),
                model_files=[GRAPH],
                report=report,
                export=export,
                runtime={
                    "engine": ENGINE,
                    "graph": GRAPH,
                    "backend": "XnnpackBackend",
                    "batch": 1,
                    "runs": "clip by clip (the program takes batch 1)",
                },
                **extra,
            )

        thresholds = classifier_thresholds(settings, self.precision)
        check_classifier(job, source, runner, self.name, thresholds, settings.max_val_clips, write_manifest)
        return job.out_dir

    def _quantize(
        self,
        job: ExportJob,
        source: ClassifierSource,
        module: Any,
        example: tuple,
        shapes: tuple,
        settings: Any,
    ) -> tuple[Any, dict[str, Any] | None]:
        """The module the program is lowered from, and the manifest's ``quantization`` (fp32: none)."""
        return module, None

    def _lower(
        self, job: ExportJob, source: ClassifierSource, bounds: list[AxisBounds], settings: Any
    ) -> tuple[bytes, dict[str, Any] | None]:
        with quiet_import():
            from lexiedge_executorch import lowering

        example = tuple(tensor[:1] for tensor in source.example)  # the trace batch, its first clip
        module = lowering.WithProbabilities(lowering.exportable_copy(source.module)).eval()
        shapes = lowering.dynamic_shapes(example, bounds)
        module, quantization = self._quantize(job, source, module, example, shapes, settings)
        samples, frames = bounds
        with job.stage(
            f"torch.export (batch 1; samples {samples.low}..{samples.high}, "
            f"frames {frames.low}..{frames.high})"
        ):
            try:
                program = lowering.export_program(module, example, shapes)
            except Exception as exc:  # torch.export's errors run to pages; the first line says what failed
                first = first_line(exc)
                raise ExportError(f"torch.export could not export {job.model_key}: {first}") from exc
        with job.stage("lowering to XNNPACK (executorch)"):
            try:
                return lowering.lower_to_xnnpack(program), quantization
            except Exception as exc:
                first = first_line(exc)
                raise ExportError(f"ExecuTorch could not lower {job.model_key}: {first}") from exc


class ExecutorchInt8Exporter(ExecutorchExporter):
    name: ClassVar[str] = "executorch-int8"
    description: ClassVar[str] = (
        "ExecuTorch program (.pte), XNNPACK static int8 (PT2E); the log-mel front end and the modules "
        "kept_float stay fp32 (extra [executorch])"
    )
    Settings: ClassVar[type[PluginSettings]] = ExecutorchInt8Settings
    precision: ClassVar[str] = "int8"

    def _quantize(
        self,
        job: ExportJob,
        source: ClassifierSource,
        module: Any,
        example: tuple,
        shapes: tuple,
        settings: Any,
    ) -> tuple[Any, dict[str, Any] | None]:
        from lexiedge_executorch import lowering

        assert isinstance(settings, ExecutorchInt8Settings)
        wrapped = "classifier."  # WithProbabilities holds the model under this name
        present = {name for name, _ in source.module.named_modules()}
        unknown = [name for name in settings.keep_float if name not in present]
        if unknown:
            raise UsageError(
                f"models.{job.model_key}.export.options.{self.name}.keep_float names {', '.join(unknown)}, "
                f"not a module of {job.model_key}"
            )
        quantized = lowering.quantizable_modules(module, [wrapped + name for name in settings.keep_float])
        calibration = [
            tuple(torch_row(batch.feeds[name], row) for name in INPUT_NAMES)
            for batch in calibration_batches(source, settings.calibration_clips)
            for row in range(len(batch.feeds[WAVEFORM]))
        ]
        with job.stage(f"calibration and static int8 quantization (PT2E, {len(calibration)} training clips)"):
            try:
                converted = lowering.quantize_static_int8(
                    module, example, shapes, calibration, quantized, settings.activation_observer
                )
            except Exception as exc:
                first = first_line(exc)
                raise ExportError(f"PT2E quantization of {job.model_key} failed: {first}") from exc
        return converted, {
            "tool": "torchao.quantization.pt2e (prepare_pt2e, convert_pt2e) + XNNPACKQuantizer",
            "scheme": "static: per-channel symmetric int8 weights, int8 activations "
            f"({settings.activation_observer} calibration)",
            "quantized_modules": len(quantized),
            "kept_float": ["log-mel front end (functional ops)", *settings.keep_float],
            "calibration_clips": len(calibration),
            "calibration_split": "train",
        }


def torch_row(array: Any, row: int) -> Any:
    """One clip of a numpy batch as a torch tensor of batch 1 (what the program takes)."""
    import torch

    return torch.from_numpy(array[row : row + 1].copy())


EXPORTERS = (ExecutorchExporter, ExecutorchInt8Exporter)
