"""The ``causal-lm`` task: chat messages in, generated text out (a decoder with a KV cache).

Declared once here, read by every stage:

* the decoder's signature (:data:`INPUTS`, :data:`OUTPUTS`): ``input_ids`` and ``attention_mask``
  int64 (batch, sequence), one ``past_key_values.N.key/value`` per layer, float (batch, kv_heads,
  past, head_size); out ``logits`` float (batch, sequence, vocab) ((batch, 1, vocab) from a graph whose
  LM head is pruned to the last position, all GenAI reads) and ``present.N.key/value``. The
  per-layer names follow :data:`PAST_PREFIX` / :data:`PRESENT_PREFIX` (:func:`present_name`);
* the manifest section: ``architecture``, ``tokenizer`` (files, chat template, EOS ids) and the
  ``runtime.config`` ONNX Runtime GenAI reads (:data:`KV_CACHE_NOTE`, :data:`INPUT_NOTE` describe the
  ``preprocessing`` an app follows); its JSON Schema is :mod:`lexiedge_runtime.tasks.schema`'s;
* the example prompts verification and the bench use live with their tokenizers (the toolkit's
  ``lexiedge_onnx.causal_lm.VERIFY_PROMPTS``, the bench's ``PROMPT_TEXT``): text, not tensors;
* the default verification thresholds (:data:`THRESHOLDS`, by the precision of the exported graph);
* the task metric (:data:`METRIC`, BLEU of corrections) and the runners (:data:`RUNNERS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lexiedge_runtime.tasks.sections import Section, meta, required
from lexiedge_runtime.tasks.spec import RunnerEntry, TaskMetric, TaskSpec, TensorSpec, ort_label

NAME = "causal-lm"
INPUT_IDS, ATTENTION_MASK, LOGITS = "input_ids", "attention_mask", "logits"
PAST_PREFIX, PRESENT_PREFIX = "past_key_values.", "present."

INPUTS: tuple[TensorSpec, ...] = (
    TensorSpec(INPUT_IDS, "int64", ("batch", "sequence")),
    TensorSpec(ATTENTION_MASK, "int64", ("batch", "total_sequence")),
    TensorSpec(PAST_PREFIX + "{layer}.key", "float32", ("batch", None, "past_sequence", None)),
    TensorSpec(PAST_PREFIX + "{layer}.value", "float32", ("batch", None, "past_sequence", None)),
)
OUTPUTS: tuple[TensorSpec, ...] = (
    TensorSpec(LOGITS, "float32", ("batch", "sequence", None)),
    TensorSpec(PRESENT_PREFIX + "{layer}.key", "float32", ("batch", None, "total_sequence", None)),
    TensorSpec(PRESENT_PREFIX + "{layer}.value", "float32", ("batch", None, "total_sequence", None)),
)

INPUT_NOTE = "token ids from tokenizer.json after the chat template (add_generation_prompt)"
KV_CACHE_NOTE = (
    "past_key_values.N.key/value -> present.N.key/value, (batch, kv_heads, length, head_size); "
    "attention_mask covers past + new tokens"
)
CHAT_TEMPLATE = "chat_template.jinja"  # the artifact's template file, when the tokenizer has one


def present_name(past_name: str) -> str:
    """The output a decoder returns a ``past_key_values.N.*`` input's updated cache in."""
    return PRESENT_PREFIX + past_name.removeprefix(PAST_PREFIX)


@dataclass(frozen=True, kw_only=True)
class LmTokenizer(Section):
    """tokenizer: the files that tokenize prompts as in training, the chat template, the ids ending a turn."""

    files: list[str] | None = meta(omit_none=True)
    chat_template: str | None = meta()
    eos_token_ids: list[int] | int | None = meta(omit_none=True)


@dataclass(frozen=True, kw_only=True)
class LmArchitecture(Section):
    """architecture: the model's shape (the config's numbers); the runtime reads the vocabulary size."""

    vocab_size: int | None = meta(minimum=1)


@dataclass(frozen=True, kw_only=True)
class LmPreprocessing(Section):
    """preprocessing of a causal LM: what an app feeds the decoder, in words."""

    input: str = required()
    kv_cache: str = required()


@dataclass(frozen=True, kw_only=True)
class LmSection(Section):
    """The causal-lm part of manifest.json."""

    architecture: dict[str, Any] | None = meta(holds=LmArchitecture)
    tokenizer: LmTokenizer | None = meta()
    preprocessing: LmPreprocessing | None = meta()


def preprocessing_section() -> dict[str, Any]:
    """The manifest's ``preprocessing`` of a causal LM: what an app feeds the decoder."""
    return LmPreprocessing(input=INPUT_NOTE, kv_cache=KV_CACHE_NOTE).to_json()


def tokenizer_section(
    files: list[str], chat_template: str | None, eos_token_ids: list[int]
) -> dict[str, Any]:
    """The manifest's ``tokenizer``: its files, the chat template's file (None without one), the EOS ids."""
    return LmTokenizer(files=files, chat_template=chat_template, eos_token_ids=eos_token_ids).to_json()


@dataclass(frozen=True)
class LmThresholds:
    """What export verification enforces against the merged PyTorch model (every number is reported)."""

    atol: float | None  # on logits; None for quantized graphs (reported only)
    min_token_agreement: float  # on decisive teacher-forced steps
    identical_generation: bool  # fp32: every greedy generation must equal PyTorch's up to its first near-tie
    min_decisive_share: float = 0.2  # fewer decisive steps: the export's noise is as large as the decisions

    def report(self) -> dict[str, Any]:
        return {
            "atol": self.atol,
            "min_token_agreement": self.min_token_agreement,
            "min_token_agreement_on": "decisive steps",
            "identical_generation": self.identical_generation,
            "min_decisive_share": self.min_decisive_share,
        }


# by the precision of the exported graph: fp32 must generate what PyTorch does; quantized ones may part at
# near-ties, int4 more often than int8
THRESHOLDS: dict[str, LmThresholds] = {
    "fp32": LmThresholds(atol=1e-4, min_token_agreement=1.0, identical_generation=True),
    "int8": LmThresholds(atol=None, min_token_agreement=0.9, identical_generation=False),
    "int4": LmThresholds(atol=None, min_token_agreement=0.8, identical_generation=False),
}

METRIC = TaskMetric(
    "bleu",
    "max",
    "BLEU of the model's corrections against the references (`lexiedge eval`); "
    "training keeps the checkpoint of lowest validation loss",
)

RUNNERS = (
    RunnerEntry(
        "onnxruntime-genai",
        NAME,
        "lexiedge_runtime.generator:open_generator",
        ort_label,
        "ONNX Runtime GenAI generator (KV cache in ORT, greedy or top-p sampling; needs [llm])",
        ("onnxruntime_genai",),
    ),
    RunnerEntry(
        "executorch",
        NAME,
        "lexiedge_runtime.executorch_runner:open_executorch_generator",
        None,
        "ExecuTorch program model.pte (q8da4w, XNNPACK, KV cache in the program), greedy or top-p sampling "
        "(extra [executorch]; imports torch)",
        ("executorch.runtime",),
    ),
)

SPEC = TaskSpec(
    name=NAME,
    description="chat messages (or a prompt) in, generated text out",
    inputs=INPUTS,
    outputs=OUTPUTS,
    metric=METRIC,
    default_engine="onnxruntime-genai",
    generates=True,
    check_manifest=None,
    section=LmSection,
    thresholds=THRESHOLDS,
)
