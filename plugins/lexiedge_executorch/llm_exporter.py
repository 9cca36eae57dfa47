"""The ``executorch-int4`` target of causal-lm runs (qwen-lora): the merged model as an ExecuTorch program.

ExecuTorch's own LLM recipe builds it (:mod:`lexiedge_executorch.llm_lowering`: q8da4w, XNNPACK, the KV
cache inside the program); the tokenizer files and chat template go beside it, as for onnx-int4, so the
runtime tokenizes and renders prompts the same way for both engines.

Verified as the ONNX LLM targets are, against the merged fp32 PyTorch model, through the runtime's own
runner (:class:`lexiedge_runtime.executorch_runner.ExecutorchGenerator`), so what was verified is what apps
run: the teacher-forced KV-cache path (the prompt, then PyTorch's greedy tokens one at a time: logits and
next-token agreement on the decisive steps, :class:`lexiedge.export.verify_lm.Steps`) and whole greedy
generations (:func:`lexiedge.export.verify_lm.generation_report`). The program takes batch 1, so there is
no padded-batch check. Every number goes into the manifest before a threshold is enforced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from lexiedge_runtime.artifact import Artifact
from lexiedge_runtime.errors import first_line
from lexiedge_runtime.executorch_runner import ENGINE, GRAPH, ExecutorchGenerator, quiet_import
from lexiedge_runtime.tasks import causal_lm as lm_task
from lexiedge_runtime.tasks.causal_lm import LOGITS

from lexiedge.api import ExporterPlugin, ExportJob, PluginSettings
from lexiedge.errors import UsageError
from lexiedge.export import ExportError, VerificationError, read_manifest, update_manifest
from lexiedge.export.causal_lm import (
    LmSource,
    architecture,
    copy_tokenizer_files,
    lm_thresholds,
    load_lm_source,
    prompt_ids,
    tokenizer_files,
)
from lexiedge.export.errors import AtolError
from lexiedge.export.verify_lm import (
    Steps,
    enforce_lm,
    generation_report,
    reference_generation,
    reference_logits,
)
from lexiedge_executorch.exporters import require_executorch
from lexiedge_executorch.settings import ExecutorchInt4Settings

# the task's thresholds for int4 graphs (the int8 activations do not change the weights' error)
PRECISION = "int4"


class ExecutorchInt4Exporter(ExporterPlugin):
    name: ClassVar[str] = "executorch-int4"
    description: ClassVar[str] = (
        "ExecuTorch LLM program (.pte): q8da4w (int4 weights, int8 dynamic activations), XNNPACK, KV cache "
        "in the program; tokenizer and chat template beside it (extra [executorch])"
    )
    Settings: ClassVar[type[PluginSettings]] = ExecutorchInt4Settings
    tasks: ClassVar[frozenset[str]] = frozenset({lm_task.NAME})

    def export(self, job: ExportJob) -> Path:
        settings = job.settings
        assert isinstance(settings, ExecutorchInt4Settings)
        require_executorch(self.name)
        source = load_lm_source(job)
        config = source.config
        longest = int(config.get("max_position_embeddings") or settings.max_context)
        context = min(settings.max_context, longest)
        eos = source.eos_ids()
        bos = source.tokenizer.bos_token_id
        graph = job.out_dir / GRAPH
        with quiet_import():
            from lexiedge_executorch import llm_lowering
        with job.stage(f"ExecuTorch's LLM recipe: q8da4w (group {settings.group_size}), XNNPACK, "
                       f"KV cache of {context} tokens"):
            try:
                built = Path(job.out_dir) / "model.pte.partial"
                recipe = llm_lowering.export_q8da4w(
                    source.model_dir, built, max_context=context, group_size=settings.group_size,
                    embedding_bits=settings.embedding_bits, bos_id=bos, eos_ids=eos,
                )
                built.replace(graph)
            except llm_lowering.UnsupportedModelError as exc:
                raise UsageError(f"target {self.name!r}: {exc}") from None
            except Exception as exc:  # the recipe's errors run to pages; the first line says what failed
                raise ExportError(f"ExecuTorch could not lower {job.model_key}: {first_line(exc)}") from exc
        copy_tokenizer_files(source, job.out_dir)
        self._write_manifest(job, source, recipe, context, report=None)  # the runtime reads it to load
        thresholds = lm_thresholds(settings, PRECISION)
        report: dict[str, Any] = {"thresholds": thresholds.report()}
        try:
            with job.stage(f"verification against PyTorch ({settings.prompts} prompts, "
                           f"{settings.new_tokens} greedy tokens)"):
                report = verify_program(job.out_dir, source, self.name, prompts=settings.prompts,
                                        new_tokens=settings.new_tokens)
            report["thresholds"] = thresholds.report()
            enforce_lm(report, self.name, thresholds)
            report["passed"] = True
        except VerificationError as exc:
            report.update(passed=False, failure=exc.reason)
            raise
        finally:  # passed or rejected (not crashed): the artifact keeps every number measured
            if "passed" in report:
                self._write_manifest(job, source, recipe, context, report=report)
        return job.out_dir

    def _write_manifest(self, job: ExportJob, source: LmSource, recipe: dict[str, Any], context: int,
                        report: dict[str, Any] | None) -> None:
        artifact = job.out_dir
        template = lm_task.CHAT_TEMPLATE if (artifact / lm_task.CHAT_TEMPLATE).exists() else None
        update_manifest(
            artifact,
            architecture=architecture(source),
            tokenizer=lm_task.tokenizer_section(tokenizer_files(artifact), template, source.eos_ids()),
            preprocessing={
                "input": lm_task.INPUT_NOTE,
                "kv_cache": "inside the program: forward(tokens (1, n), input_pos (1,)) writes positions "
                "input_pos..input_pos+n-1 and returns the last position's logits (1, vocab)",
            },
            runtime={"engine": ENGINE, "graph": GRAPH, "backend": "XnnpackBackend", "batch": 1,
                     "context_length": context},
            model_files=[GRAPH],
            source={"merged_model": str(source.model_dir.resolve())},
            export={"tool": "executorch.examples.models.llama.export_llama_lib.export_llama",
                    "backend": "XNNPACK (extended ops)", "kv_cache": "in the program, custom SDPA op"},
            quantization={"tool": "torchao (ExecuTorch's LLM recipe, qmode 8da4w)",
                          "scheme": "q8da4w: int4 weights in groups, int8 dynamic per-token activations",
                          "group_size": recipe["group_size"], "embedding": recipe["embedding_quantize"],
                          "model_bytes": (artifact / GRAPH).stat().st_size},
            **({"verification": report} if report is not None else {}),
        )


def verify_program(artifact_dir: Path, source: LmSource, target: str, *, prompts: int,
                   new_tokens: int) -> dict[str, Any]:
    """The artifact through the runtime's ExecuTorch generator against the merged PyTorch model."""
    try:
        generator = ExecutorchGenerator(unfinished_artifact(artifact_dir), prefix_reuse=False)
    except Exception as exc:
        raise ExportError(f"the runtime cannot load the {target} program: {first_line(exc)}") from exc
    all_prompts = prompt_ids(source, prompts)
    generations = [reference_generation(source, prompt, new_tokens) for prompt in all_prompts]
    steps, first_pass = Steps(), 0.0
    for prompt, generated in zip(all_prompts, generations):
        full = np.array([prompt + generated], dtype=np.int64)
        reference = reference_logits(source, full, np.ones_like(full))[0]
        for step, logits in enumerate(generator.teacher_forced(prompt, generated[:-1])):
            position = len(prompt) - 1 + step
            if not np.isfinite(logits).all():
                raise AtolError(target, LOGITS,
                                f"non-finite logits at step {step} of a {len(prompt)}-token prompt")
            if step == 0:
                first_pass = max(first_pass, float(np.abs(logits - reference[position]).max()))
            steps.add(logits[None], reference[position][None], full[0, position + 1 : position + 2])
    agreement = steps.agreement()
    report: dict[str, Any] = {
        "reference": f"pytorch fp32 ({source.model_dir})",
        "runtime": "lexiedge_runtime ExecutorchGenerator (ExecuTorch pybindings, XNNPACK)",
        "prompts": prompts,
        "prompt_lengths": [len(p) for p in all_prompts],
        "batch_sizes": [1],
        "max_abs_diff": {"logits_first_pass": first_pass, "logits_kv_decode": steps.max_diff},
        "token_agreement": agreement.overall if agreement else None,
        "teacher_forced_steps": agreement.samples if agreement else 0,
        **(agreement.report() if agreement else {}),
    }

    def runtime_greedy(prompt: list[int], tokens: int) -> list[int]:
        return list(generator.generate_ids(prompt, tokens, temperature=0.0))

    report["generation"] = generation_report(
        "executorch", source, all_prompts, generations, new_tokens,
        agreement.tie_margin if agreement else 0.0, runtime_greedy,
    )
    return report


def unfinished_artifact(directory: Path) -> Artifact:
    """The artifact being written, as the runtime will see it once the export lists its files (the core
    hashes them after the exporter returns)."""
    manifest = read_manifest(directory)
    manifest["files"] = {path.name: {} for path in directory.iterdir() if path.is_file()}
    return Artifact(directory, manifest)
