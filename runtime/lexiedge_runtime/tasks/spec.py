"""The types a task spec is made of: a tensor's signature, the task's metric, a runner's registration.

A task spec (:class:`TaskSpec`, one module per task beside this one) is the contract every stage
reads instead of restating it: the graph's inputs and outputs (names, dtypes, dynamic axes), the
manifest section's check, the default verification thresholds, the task metric, and how the
runtime runs an artifact of the task. optimum's ``OnnxConfig`` is the model: declared once, read by
export and by validation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lexiedge_runtime.errors import ArtifactError, DeviceNotAvailableError, InputValueError
from lexiedge_runtime.tasks.sections import Section

if TYPE_CHECKING:
    from lexiedge_runtime.devices import ProviderSpec

Axis = int | str | None  # a fixed size, a dynamic axis's name ("batch"), or None: a size the model fixes
ManifestCheck = Callable[[dict[str, Any], str], None]


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: its name, element type and axes (sizes, or names of dynamic axes)."""

    name: str
    dtype: str  # numpy's name: "float32", "int64"
    axes: tuple[Axis, ...]

    @property
    def dynamic_axes(self) -> dict[int, str]:
        """``{position: name}`` of the axes a graph must leave free."""
        return {index: axis for index, axis in enumerate(self.axes) if isinstance(axis, str)}


@dataclass(frozen=True)
class TaskMetric:
    """The number a task is judged by: trainers pick their best checkpoint by it, ``lexiedge eval`` ranks
    by it, export verification compares it before and after."""

    name: str  # "uar", "bleu"
    mode: str  # "max" or "min": which way is better
    description: str


@dataclass(frozen=True)
class LoadRequest:
    """What :func:`lexiedge_runtime.load` was asked for, handed to the runner's opener unchanged."""

    device: str = "auto"
    threads: int | None = None
    providers: Sequence[ProviderSpec] | None = None
    prefix_reuse: bool = True
    cache_tokens: int | None = None
    warm_prompt: Any = None

    def refuse_generation_options(self, directory: Any) -> None:
        """For a classifier's runner: ``cache_tokens`` and ``warm_prompt`` are text generation's options."""
        if self.cache_tokens is not None or self.warm_prompt is not None:
            raise InputValueError(
                f"{directory} is a classifier: cache_tokens and warm_prompt apply to text generation"
            )

    def require_cpu(self, directory: Any, engine: str, runs_on: str = "the CPU here") -> None:
        """For an engine that runs on the CPU only (LiteRT, ExecuTorch): no ONNX Runtime providers, and the
        device auto or cpu; each refusal is one line."""
        if self.providers:
            raise InputValueError(f"{directory} runs on {engine}: providers apply to ONNX Runtime artifacts")
        if self.device.lower() not in ("auto", "cpu"):
            raise DeviceNotAvailableError(
                f"device {self.device!r}: {engine} artifacts run on {runs_on}; expected auto or cpu"
            )


# (artifact, request) -> runner; the artifact is a checked lexiedge_runtime.artifact.Artifact (not imported
# here: the artifact module reads the task specs, so the specs name it only in words)
Opener = Callable[[Any, LoadRequest], Any]


@dataclass(frozen=True)
class RunnerEntry:
    """How artifacts of one ``engine`` (the manifest's ``runtime.engine``) and one task are run.

    ``opener`` is ``"module:function"``: a function ``(artifact, request) -> runner``, imported only
    when an artifact of this engine is opened (so registering an engine costs no import, and its
    libraries load only when used). ``bench_label`` names the runner in `lexiedge bench` for an
    artifact of a given target (``"ort-int8"`` for ``onnx-int8``); default: the engine's name,
    suffixed with the target when the two differ, or the target itself when it begins with the engine's
    name (``executorch-int8``). ``libraries`` are the engine's modules, which a
    benchmark imports before it times loading.
    """

    engine: str
    task: str
    opener: str
    bench_label: Callable[[str], str] | None = None
    description: str = ""
    libraries: tuple[str, ...] = ()

    def label(self, target: str) -> str:
        if self.bench_label is not None:
            return self.bench_label(target)
        if target in ("", self.engine):
            return self.engine
        # a target named after its engine ("executorch-int8") is its own label, not "executorch-executorch-int8"
        return target if target.startswith(f"{self.engine}-") else f"{self.engine}-{target}"

    def open(self, artifact: Any, request: LoadRequest) -> Any:
        return resolve(self.opener, f"the {self.engine} runner")(artifact, request)


@dataclass(frozen=True)
class TaskSpec:
    """Everything the stages share about one task; see the task modules (``av_classification``, ...).

    ``section`` is the task's typed manifest section (written through it, checked against its JSON
    Schema); ``check_manifest(manifest, where)`` refuses (:class:`~lexiedge_runtime.errors.ManifestError`)
    what a schema cannot say (values that must agree with each other); ``default_engine`` is the engine
    of artifacts written before manifests named theirs. ``generates`` marks a text-generation task
    (chat endpoints and ``--prompt``), as opposed to one that classifies inputs.
    """

    name: str
    description: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    metric: TaskMetric
    default_engine: str
    generates: bool
    check_manifest: ManifestCheck | None = None
    section: type[Section] | None = None  # the task's typed manifest section (its JSON Schema: tasks.schema)
    thresholds: Mapping[str, Any] = field(default_factory=dict)  # by the exported graph's precision

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(tensor.name for tensor in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(tensor.name for tensor in self.outputs)


def ort_label(target: str) -> str:
    """`lexiedge bench`'s name of an ONNX Runtime artifact: onnx -> ort, onnx-int8 -> ort-int8, ort-mobile."""
    if target == "onnx":
        return "ort"
    if target.startswith("onnx-"):
        return "ort-" + target.removeprefix("onnx-")
    return target if target.startswith("ort-") else f"ort-{target}"


def resolve(reference: str, what: str) -> Any:
    """The object a ``"module:attribute"`` reference names (an entry point's syntax), or an ArtifactError."""
    import importlib

    module_name, _, attribute = reference.partition(":")
    try:
        value: Any = importlib.import_module(module_name)
        for part in attribute.split(".") if attribute else []:
            value = getattr(value, part)
    except (ImportError, AttributeError) as exc:
        raise ArtifactError(f"{what} ({reference}) cannot be imported: {exc}") from None
    return value
