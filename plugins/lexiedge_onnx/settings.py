"""Settings of the ONNX exporters: the profile's ``models.<name>.export.options.<target>`` mappings.

One class per target. A field that only one task reads says so; thresholds are what verification
enforces (a failing export names the output, the number and the threshold), and their defaults are the
task specs' (``THRESHOLDS`` of :mod:`lexiedge_runtime.tasks.av_classification` and ``.causal_lm``, by
the exported graph's precision).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from lexiedge.export.settings import VerifySettings as CoreVerifySettings
from lexiedge_runtime.tasks.av_classification import THRESHOLDS as AV
from lexiedge_runtime.tasks.causal_lm import THRESHOLDS as LM


class VerifySettings(CoreVerifySettings):
    """The core's verification settings (:class:`lexiedge.export.settings.VerifySettings`) and the LLM's."""

    prompts: int = Field(4, ge=1, le=8, description="LLM: built-in tutor prompts of different lengths compared")
    new_tokens: int = Field(24, ge=1, description="LLM: greedy tokens generated per prompt and compared")


class OnnxSettings(VerifySettings):
    """`onnx`: fp32 graph; the classifier through torch.onnx, the LLM through ONNX Runtime GenAI's builder."""

    opset: int = Field(18, ge=17, description="classifier: ONNX opset of the torch export")
    atol: float = Field(
        AV["fp32"].atol, gt=0, description="max |difference| of logits allowed against PyTorch"
    )
    min_top1: float = Field(
        AV["fp32"].min_top1, ge=0, le=1,
        description="classifier: top-1 agreement with PyTorch on the decisive validation clips",
    )
    max_uar_drop: float = Field(
        AV["fp32"].max_uar_drop, ge=0, le=1, description="classifier: validation UAR lost against PyTorch"
    )
    min_token_agreement: float = Field(
        LM["fp32"].min_token_agreement, ge=0, le=1,
        description="LLM: greedy tokens equal to PyTorch's on the decisive steps",
    )
    optimize: bool = Field(
        False,
        description=(
            "classifier: save the graph with ONNX Runtime's fusions applied (lexiedge_onnx.optimize: LayerNorm, "
            "GELU, SkipLayerNorm as com.microsoft ops). Off by default: the fp32 graph stays plain ONNX for any "
            "runtime, and ORT applies the same fusions when it loads the graph"
        ),
    )


class OnnxInt8Settings(VerifySettings):
    """`onnx-int8`: ONNX Runtime int8 quantization."""

    mode: Literal["dynamic", "static"] = Field(
        "dynamic",
        description=(
            "classifier: dynamic = int8 weights, activations quantized at run time (MatMul/Gemm); "
            "static = also QDQ int8 convolutions with scales calibrated on the run's training clips"
        ),
    )
    static_op_types: list[str] = Field(
        default_factory=lambda: ["Conv"], description="classifier, mode static: op types given calibrated QDQ"
    )
    dynamic_op_types: list[str] = Field(
        default_factory=lambda: ["MatMul", "Gemm"], description="op types given dynamic int8 quantization"
    )
    exclude_modules: list[str] = Field(
        default_factory=list,
        description="classifier: module paths (e.g. audio.frontend) whose nodes stay fp32; fixed buffers always do",
    )
    per_channel: bool = Field(False, description="one scale per output channel (more accurate, slower on some CPUs)")
    optimize: bool = Field(
        True,
        description=(
            "classifier: ONNX Runtime graph optimisation and fusions before quantizing (lexiedge_onnx.optimize), "
            "so fewer fp32 nodes sit between int8 ones; false quantizes the traced graph as is"
        ),
    )
    calibration_clips: int = Field(32, ge=1, description="classifier, mode static: training clips for calibration")
    llm_method: Literal["weight-only", "dynamic"] = Field(
        "weight-only",
        description=(
            "LLM: weight-only = the GenAI builder's int8 MatMulNBits (GQA graph; fast); dynamic = ORT dynamic "
            "quantization (MatMulInteger) of the fp32 builder graph"
        ),
    )
    block_size: int = Field(32, ge=16, description="LLM weight-only: quantization block size")
    min_top1: float = Field(
        AV["int8"].min_top1,
        ge=0,
        le=1,
        description=(
            "classifier: top-1 agreement with fp32 PyTorch on the decisive validation clips (fp32 top-2 margin above "
            "twice the export's logit noise); near-ties are reported apart (lexiedge.export.agreement)"
        ),
    )
    max_uar_drop: float = Field(
        AV["int8"].max_uar_drop, ge=0, le=1,
        description="classifier: validation UAR lost against fp32 PyTorch",
    )
    min_token_agreement: float = Field(
        LM["int8"].min_token_agreement, ge=0, le=1,
        description="LLM: next-token agreement with fp32 PyTorch on the decisive greedy steps",
    )


class OnnxInt4Settings(VerifySettings):
    """`onnx-int4`: weight-only int4 (MatMulNBits) through ONNX Runtime GenAI's builder (LLM only)."""

    block_size: Literal[16, 32, 64, 128, 256] = Field(32, description="weights per int4 scale (smaller: more accurate)")
    accuracy_level: Literal[1, 2, 3, 4] = Field(
        4, description="MatMulNBits compute type on CPU: 4 = int8 activations (fastest), 1 = fp32"
    )
    quantize_lm_head: bool = Field(
        True, description="int4 LM head shared with the embeddings (tied weights: stored once); false keeps it fp32"
    )
    prune_lm_head: bool = Field(
        True,
        description=(
            "LM head on the last position only (logits [batch, 1, vocab]): a prefill of S prompt tokens "
            "computes one row of logits instead of S (the runtime reads only the last); false: logits at "
            "every position"
        ),
    )
    min_token_agreement: float = Field(
        LM["int4"].min_token_agreement, ge=0, le=1,
        description="next-token agreement with fp32 PyTorch on the decisive greedy steps",
    )
    benchmark_tokens: int = Field(32, ge=0, description="greedy tokens timed for the manifest's decode speed (0: off)")
    benchmark_prompt_tokens: int = Field(64, ge=1, description="prompt length of the decode-speed measurement")
    threads: int = Field(2, ge=1, description="intra-op threads of the decode-speed measurement")

    BUILDER_FIELDS: ClassVar[tuple[str, ...]] = (
        "block_size", "accuracy_level", "quantize_lm_head", "prune_lm_head")

    def builder_options(self) -> dict[str, Any]:
        """The settings that shape the graph: keyword arguments of
        :func:`lexiedge_onnx.genai.build_genai_model` (the export and bench/bench_tutor_latency.py pass
        the same ones)."""
        return {name: getattr(self, name) for name in self.BUILDER_FIELDS}


class OrtMobileSettings(VerifySettings):
    """`ort-mobile`: the ORT format (.ort) and the operator config of a reduced ONNX Runtime Mobile build."""

    source: Literal["onnx", "onnx-int8"] = Field(
        "onnx", description="which graph to convert: the fp32 export or the int8 one (dynamic mode)"
    )
    optimization_style: Literal["Fixed", "Runtime"] = Field(
        "Fixed", description="Fixed: optimized for CPU at conversion; Runtime: optimizations applied on device"
    )
    llm_precision: Literal["fp32", "int4"] = Field("int4", description="LLM: builder precision of the converted graph")
    atol: float | None = Field(
        None, description="max |logit difference| against PyTorch (default: 1e-4 for an fp32 source, unchecked for int8)"
    )
    min_top1: float | None = Field(
        None, ge=0, le=1, description="classifier, on decisive clips (default: 1.0 fp32 source, 0.99 int8)"
    )
    max_uar_drop: float | None = Field(
        None, ge=0, le=1, description="classifier: validation UAR lost (default: 0.01 fp32 source, 0.03 int8)"
    )
    min_token_agreement: float | None = Field(None, ge=0, le=1, description="LLM (default: 1.0 fp32, 0.8 int4)")
