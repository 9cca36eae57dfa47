"""The LiteRT export targets of av-classification runs: ``litert`` (fp32) and ``litert-int8`` (dynamic-range
int8 on the fully-connected and convolution ops).

The artifact is ``model.tflite`` + ``manifest.json``. The graph has static shapes: batch 1 and the training
clip (``clip_seconds`` of audio, ``frames`` frames), stated in the manifest's ``runtime`` (``samples``,
``frames``); the runtime's runner fits other clip lengths to it as training did. The conversion runs
in the converter's own virtual environment (:mod:`lexiedge_litert.converter_env`, built on first use) as
a child process (:mod:`lexiedge_litert.child`): only files cross (a ``torch.export`` program in, the
``.tflite`` and a JSON report out). The artifact is then verified exactly as the other formats are
(:func:`~lexiedge.export.verify_classifier.check_classifier`, the shape sweep at the fixed length),
through the runtime's own LiteRT runner (:class:`lexiedge_runtime.litert_runner.TfliteProgram`), so what
was verified is what apps run.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from lexiedge_runtime.errors import first_line
from lexiedge_runtime.litert_runner import ENGINE, GRAPH, OUTPUT_NAMES, TfliteProgram, fit_clip
from lexiedge_runtime.tasks import av_classification as av_task
from lexiedge_runtime.tasks.av_classification import INPUT_NAMES, ClassifierSpec

from lexiedge import atomic
from lexiedge.api import ExporterPlugin, ExportJob, PluginSettings
from lexiedge.errors import NotAvailableError, UsageError
from lexiedge.export import ExportError
from lexiedge.export.classifier import (
    ClassifierSource,
    batch_one_signature,
    load_classifier,
    preprocessing,
    write_classifier_manifest,
)
from lexiedge.export.verify_classifier import check_classifier, classifier_thresholds
from lexiedge_litert import converter_env
from lexiedge_litert.settings import LitertInt8Settings, LitertSettings

INSTALL = "pip install 'lexiedge[litert]'"
CHILD = Path(__file__).with_name("child.py")
INT8_OPS = ["FULLY_CONNECTED", "CONV_2D"]  # not BATCH_MATMUL: the log-mel matmul fails at run time quantized


def require_litert(target: str) -> None:
    """Refuse in one line before any work when LiteRT's interpreter (what verifies the graph) is missing."""
    import importlib.util

    if importlib.util.find_spec("ai_edge_litert") is None:
        raise NotAvailableError(
            f"target {target!r} needs LiteRT's interpreter (ai-edge-litert, not installed): {INSTALL}"
        )


def fixed_signature(spec: ClassifierSpec, classes: int) -> dict[str, list[dict[str, Any]]]:
    """The manifest's ``signature``: the task's tensors at the graph's static shape."""
    fixed = {"samples": spec.clip_samples, "frames": spec.frame_count}
    return batch_one_signature(spec, classes, OUTPUT_NAMES, fixed)


class LitertExporter(ExporterPlugin):
    name: ClassVar[str] = "litert"
    description: ClassVar[str] = (
        "LiteRT flatbuffer (.tflite), fp32; batch 1 at the training clip length (static shapes); "
        "converted by "
        "litert-torch in a venv of its own, built on first use (extra [litert])"
    )
    Settings: ClassVar[type[PluginSettings]] = LitertSettings
    tasks: ClassVar[frozenset[str]] = frozenset({av_task.NAME})
    precision: ClassVar[str] = "fp32"

    def int8_op_types(self) -> list[str]:
        return []

    def keep_float_scope(self, job: ExportJob, source: ClassifierSource) -> str | None:
        """A regular expression over the .tflite ops' scopes (module names) that stay fp32; None: none."""
        return None

    def export(self, job: ExportJob) -> Path:
        settings = job.settings
        assert isinstance(settings, LitertSettings)
        require_litert(self.name)
        source = load_classifier(job)
        if job.model_plugin.manifest_sections(source.module):
            raise UsageError(
                f"target {self.name!r} exports the task's four-input graph; {job.model_key} normalises "
                "by speaker (enrollment inputs and outputs): export it with --target onnx"
            )
        spec = ClassifierSpec.from_manifest(
            {"labels": source.labels, "preprocessing": preprocessing(source)}, "the run's preprocessing"
        )
        samples, frames = spec.clip_samples, spec.frame_count
        python = converter_env.converter_python(lambda line: job.console.print(line, highlight=False))
        graph = job.out_dir / GRAPH
        report = self._convert(job, source, python, samples, frames, settings)
        runner = TfliteProgram(graph, samples=samples, frames=frames)
        export: dict[str, Any] = {
            "tool": "torch.export + litert_torch.convert",
            "converter": report["converter"],
            "precision": self.precision,
            "batch": 1,
            "fixed_shape": {"samples": samples, "frames": frames, "seconds": samples / spec.sample_rate},
            "ops": report["ops"],
        }
        seconds = f"{samples / spec.sample_rate:g} s"
        extra: dict[str, Any] = {
            "caveats": [
                f"fixed clip length: the graph takes {samples} samples ({seconds}) and {frames} frames; the "
                "runtime fits other clips to it as training did (the centre of longer audio, shorter audio "
                f"zero-padded at the end, frames picked evenly), so a longer recording is classified on its "
                f"centre {seconds}"
            ]
        }
        if "quantization" in report:
            extra["quantization"] = {
                **report["quantization"],
                "kept_float": getattr(settings, "keep_float", []),
            }

        def write_manifest(verification: dict[str, Any]) -> None:
            write_classifier_manifest(
                job,
                source,
                signature=fixed_signature(spec, source.num_classes),
                model_files=[GRAPH],
                report=verification,
                export=export,
                runtime={
                    "engine": ENGINE,
                    "graph": GRAPH,
                    "batch": 1,
                    "samples": samples,
                    "frames": frames,
                    "runs": "clip by clip; each clip fitted to the graph's fixed length: the centre "
                    "samples of longer audio, shorter audio zero-padded at the end, frames picked evenly "
                    "(as training did)",
                },
                **extra,
            )

        thresholds = classifier_thresholds(settings, self.precision)
        check_classifier(
            job,
            source,
            runner,
            self.name,
            thresholds,
            settings.max_val_clips,
            write_manifest,
            fixed_input=(samples, frames),
        )
        return job.out_dir

    def _convert(
        self,
        job: ExportJob,
        source: ClassifierSource,
        python: Path,
        samples: int,
        frames: int,
        settings: LitertSettings,
    ) -> dict[str, Any]:
        """torch.export here, litert-torch in the converter's venv; ``model.tflite`` lands in the artifact
        only once the child succeeded. Returns the child's report."""
        import torch

        from lexiedge_litert.graph import NamedOutputs

        example = fit_clip(
            {name: tensor[:1].numpy() for name, tensor in zip(INPUT_NAMES, source.example)},
            0,
            samples,
            frames,
        )
        module = NamedOutputs(source.module).eval()
        with tempfile.TemporaryDirectory(prefix=".litert-", dir=job.out_dir) as work:
            folder = Path(work)
            with job.stage(f"torch.export (batch 1, {samples} samples, {frames} frames: static shapes)"):
                try:
                    program = torch.export.export(
                        module,
                        args=(),
                        kwargs={name: torch.from_numpy(array) for name, array in example.items()},
                        strict=False,
                    )
                except (
                    Exception
                ) as exc:  # torch.export's errors run to pages; the first line says what failed
                    raise ExportError(
                        f"torch.export could not export {job.model_key}: {first_line(exc)}"
                    ) from exc
                torch.export.save(program, folder / "program.pt2")
            request = {
                "program": str(folder / "program.pt2"),
                "out": str(folder / GRAPH),
                "report": str(folder / "report.json"),
                "int8_op_types": self.int8_op_types(),
                "keep_float_scope": self.keep_float_scope(job, source),
            }
            (folder / "request.json").write_text(json.dumps(request))
            what = "conversion to LiteRT" + (" and dynamic-range int8" if request["int8_op_types"] else "")
            with job.stage(f"{what} (litert-torch, in {python.parent.parent})"):
                self._run_child(job, python, folder / "request.json", folder, settings.convert_timeout_s)
            report = json.loads((folder / "report.json").read_text())
            atomic.write_bytes(job.out_dir / GRAPH, (folder / GRAPH).read_bytes())
        return report

    def _run_child(self, job: ExportJob, python: Path, request: Path, folder: Path, timeout_s: int) -> None:
        log = folder / "child.log"
        try:
            with log.open("w") as handle:
                # -I: the child sees neither PYTHONPATH nor this folder's modules, only its venv
                done = subprocess.run(
                    [str(python), "-I", str(CHILD), str(request)],
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    timeout=timeout_s,
                    check=False,
                )
        except subprocess.TimeoutExpired:
            raise ExportError(
                f"the LiteRT converter did not finish {job.model_key} in {timeout_s} s "
                f"(models.{job.model_key}.export.options.{self.name}.convert_timeout_s)"
            ) from None
        if done.returncode != 0:
            lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
            raise ExportError(
                f"LiteRT could not convert {job.model_key}: "
                f"{lines[-1] if lines else f'exit {done.returncode}'}"
            )


class LitertInt8Exporter(LitertExporter):
    name: ClassVar[str] = "litert-int8"
    description: ClassVar[str] = (
        "LiteRT flatbuffer (.tflite), dynamic-range int8 on the fully-connected and convolution ops (int8 "
        "weights, float activations); static shapes as litert (extra [litert])"
    )
    Settings: ClassVar[type[PluginSettings]] = LitertInt8Settings
    precision: ClassVar[str] = "int8"

    def int8_op_types(self) -> list[str]:
        return list(INT8_OPS)

    def keep_float_scope(self, job: ExportJob, source: ClassifierSource) -> str | None:
        settings = job.settings
        assert isinstance(settings, LitertInt8Settings)
        present = {name for name, _ in source.module.named_modules()}
        unknown = [name for name in settings.keep_float if name not in present]
        if unknown:
            raise UsageError(
                f"models.{job.model_key}.export.options.{self.name}.keep_float names {', '.join(unknown)}, "
                f"not a module of {job.model_key}"
            )
        return scope_pattern(settings.keep_float)


def scope_pattern(module_paths: list[str]) -> str | None:
    """The .tflite op scopes of ``module_paths``: litert-torch names each op by its module stack, one
    ``<Class>_<attribute>`` segment per module, ``/`` between them (``..._audio/..._frontend``)."""
    if not module_paths:
        return None
    scopes = ["/".join(f"[^/;]*_{re.escape(part)}" for part in path.split(".")) for path in module_paths]
    return f"(?:{'|'.join(scopes)})(?=[/;]|$)"


EXPORTERS = (LitertExporter, LitertInt8Exporter)
