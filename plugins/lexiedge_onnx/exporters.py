"""The four ONNX export targets. Each serves a task through a method named in ``task_methods``.

Every method writes the model files into ``job.out_dir`` (a temporary directory the core renames
into place), runs verification, writes its part of ``manifest.json`` (the numbers included), and
only then enforces the thresholds, so a rejected artifact keeps its numbers. The classifier's source,
verification and manifest sections are the core's (:mod:`lexiedge.export.classifier`,
:mod:`lexiedge.export.verify_classifier`), shared with the other formats' exporters.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from lexiedge.api import ExporterPlugin, ExportJob, PluginSettings
from lexiedge.export import VerificationError, dynamic_axes, update_manifest
from lexiedge.export.causal_lm import lm_thresholds
from lexiedge.export.classifier import (
    ClassifierSource,
    calibration_batches,
    load_classifier,
    write_classifier_manifest,
)
from lexiedge.export.verify_classifier import check_classifier, classifier_thresholds
from lexiedge_onnx import causal_lm, classifier
from lexiedge_onnx.genai import MODEL_FILE, build_genai_model, decode_speed, genai_model_size, load_genai_model
from lexiedge_onnx.mobile import convert_to_ort, required_operators
from lexiedge_onnx.optimize import optimize_graph
from lexiedge_onnx.quantize import (
    count_quantized,
    nodes_to_keep_float,
    quantize_dynamic_int8,
    quantize_static_then_dynamic,
)
from lexiedge_onnx.runners import OrtRunner
from lexiedge_onnx.settings import OnnxInt4Settings, OnnxInt8Settings, OnnxSettings, OrtMobileSettings
from lexiedge_onnx.verify_lm import enforce_lm, verify_lm
from lexiedge_runtime.tasks import av_classification as av_task
from lexiedge_runtime.tasks import causal_lm as lm_task
from lexiedge_runtime.tasks.av_classification import WAVEFORM, ClassifierThresholds
from lexiedge_runtime.tasks.causal_lm import LmThresholds

CLASSIFICATION, CAUSAL_LM = av_task.NAME, lm_task.NAME


class _TaskExporter(ExporterPlugin):
    """Dispatches on the model's task (a class attribute table, never a check of the model's class).

    A target defines ``export_classifier`` and/or ``export_lm``; the tasks it serves (``tasks``) and the
    method of each (``task_methods``) follow from which it defines.
    """

    METHODS: ClassVar[dict[str, str]] = {CLASSIFICATION: "export_classifier", CAUSAL_LM: "export_lm"}
    task_methods: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.task_methods = {task: method for task, method in cls.METHODS.items() if hasattr(cls, method)}
        cls.tasks = frozenset(cls.task_methods)

    def export(self, job: ExportJob) -> Path:
        method = getattr(self, self.task_methods[job.model_plugin.task])
        method(job, job.settings)
        return job.out_dir


# --- classifier pieces ---------------------------------------------------------------------------


def classifier_fp32_graph(job: ExportJob, path: Path, opset: int = 18) -> ClassifierSource:
    """Load the run's classifier and write its fp32 graph (logits + probabilities) to ``path``."""
    source = load_classifier(job)
    with job.stage(f"tracing the fp32 graph (torch.onnx, opset {opset})"):
        classifier.export_graph(source, path, opset=opset)
    return source


def classifier_int8_graph(
    job: ExportJob, source: ClassifierSource, fp32: Path, out: Path, settings: OnnxInt8Settings,
    scratch: Path,
) -> dict[str, Any]:
    """Quantize ``fp32`` into ``out`` as the settings say; returns the manifest's quantization section.

    With ``settings.optimize`` the graph is optimised first (:mod:`lexiedge_onnx.optimize`). The nodes
    that stay fp32 are chosen on the traced graph (its name scopes say which module a node is in),
    plus any weightless or fixed-buffer node of the optimised graph.
    """
    keep_dynamic = nodes_to_keep_float(fp32, settings.dynamic_op_types, source.fixed_tensors, settings.exclude_modules)
    keep_static = nodes_to_keep_float(fp32, settings.static_op_types, source.fixed_tensors, settings.exclude_modules)
    section: dict[str, Any] = {
        "tool": "onnxruntime.quantization",
        "mode": settings.mode,
        "dynamic_op_types": settings.dynamic_op_types,
        "per_channel": settings.per_channel,
        "weight_type": "int8",
    }
    graph = fp32
    if settings.optimize:
        graph = scratch / "optimized.onnx"
        with job.stage("graph fusions (ONNX Runtime transformer optimizer)"):
            section["optimization"] = optimize_graph(fp32, graph)
        keep_dynamic = sorted(set(keep_dynamic) | set(
            nodes_to_keep_float(graph, settings.dynamic_op_types, source.fixed_tensors, [])))
        keep_static = sorted(set(keep_static) | set(
            nodes_to_keep_float(graph, settings.static_op_types, source.fixed_tensors, [])))
    if settings.mode == "dynamic":
        with job.stage("dynamic int8 quantization"):
            quantize_dynamic_int8(graph, out, op_types=settings.dynamic_op_types, exclude=keep_dynamic,
                                  per_channel=settings.per_channel)
        kept = keep_dynamic
    else:
        calibration = calibration_batches(source, settings.calibration_clips)
        with job.stage(f"calibration and static int8 quantization ({settings.calibration_clips} training clips)"):
            quantize_static_then_dynamic(
                graph, out, scratch,
                calibration=[batch.feeds for batch in calibration],
                static_op_types=settings.static_op_types, dynamic_op_types=settings.dynamic_op_types,
                exclude_static=keep_static, exclude_dynamic=keep_dynamic, per_channel=settings.per_channel,
            )
        kept = sorted(set(keep_dynamic) | set(keep_static))
        section.update(
            static_op_types=settings.static_op_types,
            static_format="QDQ (uint8 activations, int8 weights, MinMax calibration)",
            calibration_clips=sum(len(b.feeds[WAVEFORM]) for b in calibration),
            calibration_split="train",
        )
    section["kept_float_nodes"] = len(kept)
    section["quantized_nodes"] = count_quantized(out)
    return section


def _check_classifier(job: ExportJob, source: ClassifierSource, graph: Path, target: str,
                      thresholds: ClassifierThresholds, max_val_clips: int, **extra: Any) -> None:
    runner = OrtRunner(graph)

    def write_manifest(report: dict[str, Any]) -> None:
        write_classifier_manifest(
            job, source, signature=runner.signature(), model_files=[graph.name], report=report,
            runtime={"engine": "onnxruntime", "graph": graph.name, "providers": ["CPUExecutionProvider"]},
            **extra,
        )

    check_classifier(job, source, runner, target, thresholds, max_val_clips, write_manifest)


# --- LLM pieces --------------------------------------------------------------------------------------


def _lm_manifest(job: ExportJob, source: causal_lm.LmSource, graph: Path, runner: OrtRunner,
                 report: dict[str, Any], **extra: Any) -> None:
    signature = runner.signature()
    artifact = job.out_dir
    update_manifest(
        artifact,
        signature=signature,
        dynamic_axes=dynamic_axes(signature),
        architecture=causal_lm.architecture(source),
        tokenizer=lm_task.tokenizer_section(
            causal_lm.tokenizer_files(artifact),
            lm_task.CHAT_TEMPLATE if (artifact / lm_task.CHAT_TEMPLATE).exists() else None, source.eos_ids()),
        preprocessing=lm_task.preprocessing_section(),
        runtime={"engine": "onnxruntime-genai", "config": "genai_config.json", "graph": graph.name,
                 "genai": causal_lm.genai_summary(artifact)},
        model_files=sorted(p.name for p in artifact.iterdir() if p.name.startswith(graph.name)),
        source={"merged_model": str(source.model_dir.resolve())},
        verification=report,
        **extra,
    )


def _check_lm(job: ExportJob, source: causal_lm.LmSource, graph: Path, target: str, thresholds: LmThresholds,
              settings: PluginSettings, *, last_logits_only: bool = False, **extra: Any) -> None:
    runner = OrtRunner(graph)
    head_size = source.config["hidden_size"] // source.config["num_attention_heads"]
    limits = thresholds.report()
    report: dict[str, Any] = {"thresholds": limits}
    try:
        with job.stage(f"verification against PyTorch ({settings.prompts} prompts, {settings.new_tokens} greedy tokens)"):
            report = verify_lm(runner, job.out_dir, source, target, prompts=settings.prompts,
                               new_tokens=settings.new_tokens, head_size=head_size,
                               last_logits_only=last_logits_only)
        report["thresholds"] = limits
        enforce_lm(report, target, thresholds)
        report["passed"] = True
    except VerificationError as exc:
        report.update(passed=False, failure=exc.reason)
        raise
    finally:  # passed or rejected (not crashed): the artifact keeps every number measured
        if "passed" in report:
            _lm_manifest(job, source, graph, runner, report, **extra)


def _build_lm(job: ExportJob, source: causal_lm.LmSource, out: Path, precision: str, cache: Path, *,
              what: str | None = None, **options: Any) -> None:
    """The merged model through ONNX Runtime GenAI's model builder into ``out``, shown as an export step."""
    with job.stage(f"building the {what or precision} graph (onnxruntime-genai model builder)"):
        build_genai_model(source.model_dir, out, precision=precision, cache_dir=cache, **options)


def _builder_section(precision: str, **options: Any) -> dict[str, Any]:
    return {"tool": "onnxruntime_genai.models.builder", "precision": precision, "execution_provider": "cpu", **options}


# --- the targets ---------------------------------------------------------------------------------------


class OnnxExporter(_TaskExporter):
    name: ClassVar[str] = "onnx"
    description: ClassVar[str] = "fp32 ONNX (classifier: torch.onnx, dynamic axes; LLM: GenAI builder with KV cache)"
    Settings: ClassVar[type[PluginSettings]] = OnnxSettings

    def export_classifier(self, job: ExportJob, settings: OnnxSettings) -> None:
        graph = job.out_dir / MODEL_FILE
        extra: dict[str, Any] = {}
        if settings.optimize:
            with tempfile.TemporaryDirectory(prefix="lexiedge-onnx-") as scratch:
                traced = Path(scratch) / "traced.onnx"
                source = classifier_fp32_graph(job, traced, settings.opset)
                with job.stage("graph fusions (ONNX Runtime transformer optimizer)"):
                    extra["optimization"] = optimize_graph(traced, graph)
        else:
            source = classifier_fp32_graph(job, graph, settings.opset)
        thresholds = classifier_thresholds(settings, "fp32")
        export = {"tool": "torch.onnx.export (dynamo)", "opset": settings.opset, "optimized": settings.optimize}
        _check_classifier(job, source, graph, self.name, thresholds, settings.max_val_clips, export=export, **extra)

    def export_lm(self, job: ExportJob, settings: OnnxSettings) -> None:
        source = causal_lm.load_lm_source(job)
        with tempfile.TemporaryDirectory(prefix="lexiedge-genai-") as scratch:
            _build_lm(job, source, job.out_dir, "fp32", Path(scratch))
        causal_lm.copy_tokenizer_files(source, job.out_dir)
        thresholds = lm_thresholds(settings, "fp32")
        _check_lm(job, source, job.out_dir / MODEL_FILE, self.name, thresholds, settings,
                  export=_builder_section("fp32"))


class OnnxInt8Exporter(_TaskExporter):
    name: ClassVar[str] = "onnx-int8"
    description: ClassVar[str] = "int8 ONNX through ONNX Runtime quantization (dynamic MatMul/Gemm, static QDQ conv)"
    Settings: ClassVar[type[PluginSettings]] = OnnxInt8Settings

    def export_classifier(self, job: ExportJob, settings: OnnxInt8Settings) -> None:
        graph = job.out_dir / MODEL_FILE
        with tempfile.TemporaryDirectory(prefix="lexiedge-int8-") as scratch:
            fp32 = Path(scratch) / "fp32.onnx"
            source = classifier_fp32_graph(job, fp32)
            section = classifier_int8_graph(job, source, fp32, graph, settings, Path(scratch))
            section["fp32_bytes"] = fp32.stat().st_size
        thresholds = classifier_thresholds(settings, "int8")
        _check_classifier(job, source, graph, self.name, thresholds, settings.max_val_clips, quantization=section)

    def export_lm(self, job: ExportJob, settings: OnnxInt8Settings) -> None:
        source = causal_lm.load_lm_source(job)
        graph = job.out_dir / MODEL_FILE
        with tempfile.TemporaryDirectory(prefix="lexiedge-genai-") as scratch:
            if settings.llm_method == "weight-only":
                _build_lm(job, source, job.out_dir, "int8", Path(scratch), what="weight-only int8",
                          block_size=settings.block_size)
                section = _builder_section("int8", block_size=settings.block_size, method="weight-only MatMulNBits")
            else:
                fp32_dir = Path(scratch) / "fp32"
                _build_lm(job, source, fp32_dir, "fp32", Path(scratch) / "cache")
                with job.stage("dynamic int8 quantization"):
                    quantize_dynamic_int8(fp32_dir / MODEL_FILE, graph, op_types=settings.dynamic_op_types,
                                          exclude=[], per_channel=settings.per_channel)
                for path in fp32_dir.iterdir():
                    if not path.name.startswith(MODEL_FILE) and not (job.out_dir / path.name).exists():
                        shutil.copyfile(path, job.out_dir / path.name)
                section = _builder_section("fp32", method="onnxruntime dynamic int8 (MatMulInteger)",
                                           op_types=settings.dynamic_op_types)
        section["ops"] = causal_lm.op_counts(graph)
        causal_lm.copy_tokenizer_files(source, job.out_dir)
        thresholds = lm_thresholds(settings, "int8")
        _check_lm(job, source, graph, self.name, thresholds, settings, quantization=section)


class OnnxInt4Exporter(_TaskExporter):
    name: ClassVar[str] = "onnx-int4"
    description: ClassVar[str] = "weight-only int4 LLM (MatMulNBits, int4 tied LM head/embeddings) via the GenAI builder"
    Settings: ClassVar[type[PluginSettings]] = OnnxInt4Settings

    def export_lm(self, job: ExportJob, settings: OnnxInt4Settings) -> None:
        source = causal_lm.load_lm_source(job)
        graph = job.out_dir / MODEL_FILE
        with tempfile.TemporaryDirectory(prefix="lexiedge-genai-") as scratch:
            _build_lm(job, source, job.out_dir, "int4", Path(scratch), **settings.builder_options())
        causal_lm.copy_tokenizer_files(source, job.out_dir)
        section = _builder_section("int4", block_size=settings.block_size, accuracy_level=settings.accuracy_level,
                                   lm_head="int4, shared with the embeddings" if settings.quantize_lm_head else "fp32",
                                   lm_head_positions="last" if settings.prune_lm_head else "all",
                                   ops=causal_lm.op_counts(graph), model_bytes=genai_model_size(job.out_dir))
        extra: dict[str, Any] = {"quantization": section}
        if settings.benchmark_tokens:
            model = load_genai_model(job.out_dir, threads=settings.threads)
            prompt = causal_lm.prompt_ids(source, 1)[0]
            prompt = (prompt * (settings.benchmark_prompt_tokens // len(prompt) + 1))[: settings.benchmark_prompt_tokens]
            with job.stage(f"decode speed ({settings.benchmark_tokens} tokens)"):
                speed = decode_speed(model, prompt, settings.benchmark_tokens)
            extra["decode_speed"] = {**speed, "threads": settings.threads, "runtime": "onnxruntime-genai, greedy, CPU"}
            del model
        thresholds = lm_thresholds(settings, "int4")
        _check_lm(job, source, graph, self.name, thresholds, settings,
                  last_logits_only=settings.prune_lm_head, **extra)


class OrtMobileExporter(_TaskExporter):
    name: ClassVar[str] = "ort-mobile"
    description: ClassVar[str] = "ORT format (.ort) + required-operators config for a reduced ONNX Runtime Mobile build"
    Settings: ClassVar[type[PluginSettings]] = OrtMobileSettings

    def export_classifier(self, job: ExportJob, settings: OrtMobileSettings) -> None:
        quantized = settings.source == "onnx-int8"
        with tempfile.TemporaryDirectory(prefix="lexiedge-ort-") as scratch:
            onnx_path = Path(scratch) / MODEL_FILE
            if quantized:
                fp32 = Path(scratch) / "fp32.onnx"
                source = classifier_fp32_graph(job, fp32)
                int8_settings = OnnxInt8Settings.model_validate(job.entry.export.options.get("onnx-int8") or {})
                classifier_int8_graph(job, source, fp32, onnx_path, int8_settings, Path(scratch))
            else:
                source = classifier_fp32_graph(job, onnx_path)
            with job.stage("ORT Mobile conversion (.ort and its required operators)"):
                ort_path, config = convert_to_ort(onnx_path, job.out_dir, optimization_style=settings.optimization_style)
        thresholds = classifier_thresholds(settings, "int8" if quantized else "fp32")
        _check_classifier(job, source, ort_path, self.name, thresholds, settings.max_val_clips,
                          mobile=self._mobile_section(settings, config))

    def export_lm(self, job: ExportJob, settings: OrtMobileSettings) -> None:
        source = causal_lm.load_lm_source(job)
        precision = settings.llm_precision
        with tempfile.TemporaryDirectory(prefix="lexiedge-ort-") as scratch:
            built = Path(scratch) / "built"
            _build_lm(job, source, built, precision, Path(scratch) / "cache")
            with job.stage("ORT Mobile conversion (.ort and its required operators)"):
                ort_path, config = convert_to_ort(built / MODEL_FILE, job.out_dir,
                                                  optimization_style=settings.optimization_style)
            for path in built.iterdir():
                if not path.name.startswith(MODEL_FILE):
                    shutil.copyfile(path, job.out_dir / path.name)
        causal_lm.set_genai_model_file(job.out_dir, ort_path.name)
        causal_lm.copy_tokenizer_files(source, job.out_dir)
        thresholds = lm_thresholds(settings, precision)
        _check_lm(job, source, ort_path, self.name, thresholds, settings,
                  mobile=self._mobile_section(settings, config), export=_builder_section(precision))

    @staticmethod
    def _mobile_section(settings: OrtMobileSettings, config: Path) -> dict[str, Any]:
        return {
            "format": "ORT (flatbuffers)",
            "source_graph": settings.source,
            "optimization_style": settings.optimization_style,
            "required_operators_config": config.name,
            "required_operators": required_operators(config),
            "reduced_build": f"./build.sh --minimal_build --include_ops_by_config {config.name}",
        }


EXPORTERS = (OnnxExporter, OnnxInt8Exporter, OnnxInt4Exporter, OrtMobileExporter)
