"""The contracts between the core and its plugins.

A plugin is a class with class attributes (``name``, ``description``, ``Settings``) and a few
methods; it is registered through a hook (see :mod:`lexiedge.hookspecs`). Generic code asks a
plugin through these methods and attributes and never checks for a concrete class.

Each plugin validates its own profile section: ``Settings`` is a pydantic model that forbids
unknown keys, so a misspelt key fails when the profile loads, naming the file and the key.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

# The value types live in a leaf module (no import of the profile or the host); plugins import them from here.
from lexiedge.values import DeviceSpec as DeviceSpec
from lexiedge.values import NoSettings as NoSettings
from lexiedge.values import PluginSettings as PluginSettings

# The search space's value types (a leaf module); plugins import them from here.
from lexiedge.tune.space import Choice as Choice
from lexiedge.tune.space import FloatRange as FloatRange
from lexiedge.tune.space import IntRange as IntRange
from lexiedge.tune.space import SearchParam as SearchParam

if TYPE_CHECKING:  # torch is heavy; the runtime and `lexiedge profiles` never need it
    from collections.abc import Callable, Iterable, Iterator, Sequence

    import torch
    from rich.console import Console
    from torch.utils.data import Dataset

    from lexiedge.profile import ModelEntry, Profile


class Plugin(ABC):
    """What every plugin kind has."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Settings: ClassVar[type[PluginSettings]] = NoSettings


# --- models -----------------------------------------------------------------------------------


#: ``BuiltModel.extras`` keys a model plugin may set (read by trainers, evaluators and data plugins):
#: the batch entries its module takes, in the order of its forward (default: its task's inputs)
MODEL_INPUTS = "inputs"
#: a model that normalises its features by speaker (enrollment): a function of waveforms (N, S) float32
#: -> (N, 2, F) each clip's per-feature mean and mean square over its frames; a data plugin with
#: enrollment clips gives every example its speaker's statistics from these (see lexiedge_ravdess.enrollment)
CLIP_STATISTICS = "clip_statistics"


@dataclass
class BuiltModel:
    """A model as its plugin built it: the module plus what it needs around it (tokenizer, labels, and the
    :data:`MODEL_INPUTS` / :data:`CLIP_STATISTICS` extras)."""

    module: torch.nn.Module
    tokenizer: Any | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BlockStack:
    """A run of repeated blocks whose sizes grow linearly with their number (a decoder's layers).

    The memory plan builds the model twice more with only ``measure_at`` of them, measures both, and
    extrapolates to ``depth``: planning a 24-layer model then costs what 1 and 2 layers cost. A stack
    whose blocks alternate kinds (conv, attention, conv, ...) counts in whole periods: measure at
    depths that hold whole periods, e.g. ``(2, 4)``.
    """

    name: str  # what ModelPlugin.build_with_depths reads, and the plan's report shows
    depth: int  # blocks in the model the settings build
    measure_at: tuple[int, int] = (1, 2)  # the two smaller depths the plan measures


class ModelPlugin(Plugin):
    """Builds a trainable model from the profile's ``models.<name>.model`` section.

    ``task`` says what the model does ("av-classification", "causal-lm"); datasets, trainers and
    exporters declare the tasks they serve, and the profile loader checks the pairing.
    """

    task: ClassVar[str]
    supports_merge: ClassVar[bool] = False

    @abstractmethod
    def build(self, settings: PluginSettings, device: DeviceSpec, *, pretrained: bool = True) -> BuiltModel:
        """Build the model for training.

        ``pretrained=False`` builds the same architecture with random weights and downloads
        nothing (the memory planner uses it: sizes do not depend on weight values).
        """

    @abstractmethod
    def example_batch(
        self, built: BuiltModel, settings: PluginSettings, data_settings: PluginSettings, batch_size: int
    ) -> dict[str, torch.Tensor]:
        """A batch shaped like a real training batch (inputs and targets), for memory planning."""

    def parameter_groups(self, module: torch.nn.Module) -> dict[str, int]:
        """Parameter counts per named part, for reports; default: per top-level child."""
        groups: dict[str, int] = {}
        for child_name, child in module.named_children():
            groups[child_name] = sum(p.numel() for p in child.parameters())
        return groups

    def block_stacks(self, settings: PluginSettings) -> list[BlockStack]:
        """The model's stacks of repeated blocks, for a fast and light memory plan (see :class:`BlockStack`).

        The default, none: the plan builds and measures the whole model, which is exact but costs a
        forward pass of the full model on the planning machine's CPU.
        """
        return []

    def build_with_depths(self, settings: PluginSettings, device: DeviceSpec, depths: dict[str, int]) -> BuiltModel:
        """``build(settings, device, pretrained=False)`` with each named stack cut to ``depths[name]`` blocks
        (names from :meth:`block_stacks`; only called when it returns some).

        Only the memory plan calls it, and it reads shapes and dtypes, never values: the weights may be
        left uninitialised (build on the ``meta`` device, then ``to_empty(device="cpu")``)."""
        raise NotImplementedError(f"model plugin {self.name!r} lists block stacks but cannot build with fewer blocks")

    def fit_to_data(self, built: BuiltModel, splits: DataSplits, console: Console) -> dict[str, Any] | None:
        """What the model measures on its training data before the first step of a new run (not on a
        resume: the checkpoint holds it), such as input normalisation statistics kept in buffers.

        Returns a JSON-able summary recorded in ``run.json`` (``fitted_to_data``); ``None``: nothing.
        """
        return None

    def search_space(self, entry: ModelEntry) -> list[SearchParam]:
        """What `lexiedge tune` searches for this model unless a ``--space`` file says otherwise.

        Each :class:`SearchParam` (:class:`FloatRange`, :class:`IntRange`, :class:`Choice`) names profile keys
        relative to ``models.<name>`` (``train.lr``, ``model.head.dropout``, ``data.clip_seconds``); ``entry``
        is the profile's validated model entry, so a range may follow its values (``lr / 10`` to ``lr * 10``).
        A key the profile's data or trainer plugin does not have is left out with a note, so a space may
        name the keys of the plugins the model usually trains with. Default: the shared engine's learning
        rate around the profile's and its weight decay.
        """
        lr = float(getattr(entry.train.settings, "lr", 1e-4))
        return [
            FloatRange.around("train.lr", lr),
            FloatRange("train.weight_decay", 1e-4, 0.1, log=True),
        ]

    def merge(self, run_dir: Path, out_dir: Path, console: Console) -> dict[str, Any]:
        """Merge a run's adapter into its base and save a self-contained model in ``out_dir``."""
        from lexiedge.errors import UsageError

        raise UsageError(f"model {self.name!r} has nothing to merge (merge is for adapter-trained models)")

    def export_onnx(self, module: torch.nn.Module, path: Path, example_inputs: Sequence[torch.Tensor], *,
                    opset: int) -> Path:
        """Write ``module`` (eval mode, CPU) as one self-contained ONNX graph at ``path`` with ``opset``, traced on
        ``example_inputs``, and return the path (what the `onnx` exporters of a classifier call). The model
        plugin owns the tracing: it knows which axes are dynamic and which ops export cleanly.

        The default says the model has no ONNX export; causal LMs are exported by their own builder.
        """
        from lexiedge.errors import NotAvailableError

        raise NotAvailableError(f"model plugin {self.name!r} has no ONNX export (implement ModelPlugin.export_onnx)")

    def manifest_sections(self, module: torch.nn.Module) -> dict[str, Any]:
        """Sections the artifacts of ``module`` add to ``manifest.json`` beside the task's: what an app
        needs to use the graph's extra inputs and outputs (emotion-av with ``feature_norm: speaker``:
        ``enrollment``, how to turn a speaker's clips into the profile the graph takes). Default: none."""
        return {}


# --- datasets ---------------------------------------------------------------------------------


@dataclass
class DataSplits:
    """What a dataset plugin hands a trainer."""

    train: Dataset
    val: Dataset | None
    test: Dataset | None
    collate: Any = None
    labels: list[str] | None = None
    summary: dict[str, Any] = field(default_factory=dict)


class DatasetPlugin(Plugin):
    """Reads the profile's ``models.<name>.data`` section and a data path into train/val/test splits."""

    tasks: ClassVar[frozenset[str]]

    @abstractmethod
    def load(
        self,
        settings: PluginSettings,
        source: Path | None,
        *,
        built: BuiltModel,
        model_settings: PluginSettings,
        cache_dir: Path,
        console: Console,
    ) -> DataSplits:
        """Load (and cache) the data at ``source``; ``None`` means the plugin's default data, if any."""

    def check_source(self, settings: PluginSettings, source: Path | None) -> None:
        """Cheap checks of the data at ``source`` before anything heavy is built (the trainer calls it before
        the model): a missing file, nothing usable in it. Raise a :class:`~lexiedge.errors.LexiedgeError`
        naming it; the default checks nothing (``load`` reports its own errors later)."""

    def decode_for_inference(self, settings: PluginSettings | dict[str, Any], path: Path) -> dict[str, Any]:
        """Decode one file exactly as training did, for `lexiedge infer`.

        ``settings`` are the artifact's ``preprocessing.data_settings`` (this plugin's settings, as
        exported). Returns the keyword arguments of the runtime's ``predict`` (numpy arrays, e.g.
        ``{"waveform": ..., "frames": ...}``; a stream the file lacks is left out). A file that cannot
        be read raises a :class:`~lexiedge.errors.LexiedgeError` naming it.
        """
        from lexiedge.errors import NotAvailableError

        raise NotAvailableError(f"data plugin {self.name!r} cannot read files for inference")

    def media_preprocessing(self, settings: PluginSettings | dict[str, Any]) -> dict[str, Any] | None:
        """How the runtime decodes a file as this plugin's evaluation data: the artifact's ``preprocessing.media``.

        The exporter records it, and the runtime's ``Classifier.predict_file`` (and `lexiedge infer`,
        `lexiedge serve`) decode with it, without this plugin: a
        :class:`lexiedge_runtime.media.spec.MediaSpec` ``.to_manifest()``. ``None`` (the default): the
        runtime cannot decode this plugin's files, and `lexiedge infer` asks :meth:`decode_for_inference`.
        """
        return None

    def groups(self, settings: PluginSettings, source: Path | None) -> list[int | str] | None:
        """The groups the examples at ``source`` come in that a split must never cut: the speakers.

        Speaker-grouped cross-validation (:mod:`lexiedge.crossval`: `lexiedge eval --folds K`, `lexiedge tune
        --folds K`) makes its folds of whole groups, so no speaker is on both sides of a fold. Return the
        ids of the groups present (RAVDESS: actor numbers; a generic set: its speaker or group column's
        values), found cheaply (names, an index file; no decoding). ``None`` (the default): the data has
        no groups, and ``--folds`` is refused. A missing or unusable ``source`` raises a
        :class:`~lexiedge.errors.LexiedgeError` naming it.
        """
        return None

    def fold_overrides(self, train: list[int | str], val: list[int | str], test: list[int | str]
                       ) -> dict[str, Any]:
        """The settings (keys of this plugin's ``models.<name>.data`` section) that make ``train``, ``val``
        and ``test`` groups (ids from :meth:`groups`; ``val`` may be empty) its three splits, deep-merged into
        the profile for one fold (RAVDESS: ``{"split": {"train": [...], "val": [...], "test": [...]}}``).
        Needed only by a plugin whose :meth:`groups` returns some."""
        from lexiedge.errors import NotAvailableError

        raise NotAvailableError(f"data plugin {self.name!r} declares groups but cannot split by them "
                                "(implement DatasetPlugin.fold_overrides)")

    def enrollment_overrides(self, enroll: str) -> dict[str, Any]:
        """The settings (keys of ``models.<name>.data``) that choose each speaker's enrollment clips, for
        `lexiedge eval --enroll ENROLL` (``"neutral"`` or a clip count): its splits then score the other clips
        and give a speaker-normalising model (:data:`CLIP_STATISTICS`) their statistics."""
        from lexiedge.errors import UsageError

        raise UsageError(f"data plugin {self.name!r} has no enrollment clips (--enroll)")

    def label_of(self, path: Path) -> str | None:
        """The label a file carries in its name or beside it (RAVDESS names encode the emotion), if any.

        `lexiedge infer` shows it next to the prediction; ``None`` (the default) when unknown.
        """
        return None

    def held_out_groups(self, settings: PluginSettings, source: Path | None) -> list[int | str]:
        """The groups (ids from :meth:`groups`) that ``settings`` keep for the final test (RAVDESS: the actors
        of ``data.split.test``; without a split, RAVDESS's test actors 21-24). `lexiedge tune --folds` makes its
        folds of the other groups only, so a search never trains or scores on them. Default: none."""
        return []


# --- trainers ---------------------------------------------------------------------------------


@dataclass
class TrainJob:
    """Everything a trainer needs for one run; built by :func:`lexiedge.training_runs.train`."""

    profile: Profile
    model_key: str
    entry: ModelEntry
    model_plugin: ModelPlugin
    data_plugin: DatasetPlugin
    data_path: Path | None
    run_dir: Path
    resume: bool
    console: Console
    #: called on rank 0 with each evaluation's history row (``epoch``, ``step``, ``val/<metric>``, ...) once
    #: it is recorded; it may raise :class:`StopTraining`. `lexiedge tune` reports to Optuna and prunes here.
    on_evaluate: Callable[[dict[str, Any]], None] | None = None
    #: False: the test split is never evaluated (a search's trials: what is tuned must not see it)
    evaluate_test: bool = True


class StopTraining(Exception):
    """Raised by :attr:`TrainJob.on_evaluate` to end a run early (a search pruning a trial that is clearly
    worse): the engine records the run as ``stopped`` with this message as the reason, then re-raises."""


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)


class TrainerPlugin(Plugin):
    """Trains a model, usually with the shared engine (:mod:`lexiedge.train`, then the plugin is also a
    :class:`TrainTask`); ``Settings`` extends EngineSettings."""

    tasks: ClassVar[frozenset[str]]

    @abstractmethod
    def loss(self, built: BuiltModel, batch: dict[str, Any]) -> torch.Tensor:
        """The training loss of one batch (the planner measures memory through it too)."""

    @abstractmethod
    def fit(self, job: TrainJob) -> TrainResult:
        """Train (or resume) and write the run directory."""

    def trainable_parameters(self, built: BuiltModel) -> list[torch.nn.Parameter]:
        """What the optimizer updates (and the planner counts): every parameter with ``requires_grad``."""
        return [p for p in built.module.parameters() if p.requires_grad]


MetricMode = Literal["max", "min"]


class TrainTask(ABC):
    """The task-specific half of training: what the shared engine (:class:`lexiedge.train.engine.Engine`)
    calls, knowing nothing about classification or language modelling. A trainer plugin usually is one
    (``class MyTrainer(TrainerPlugin, TrainTask)``, ``Engine(job, settings, built, splits, task=self)``).

    Required: :attr:`best_metric`, :meth:`loss`, :meth:`evaluate`, :meth:`checkpoint_state`,
    :meth:`load_checkpoint_state`. The other methods have defaults that do nothing special.
    """

    #: The metric that chooses ``checkpoints/best/``: a key of the evaluation results prefixed with
    #: the split (``"val/uar"``), and whether larger or smaller is better.
    best_metric: ClassVar[tuple[str, MetricMode]]
    #: True: an epoch's last micro-batch is trained even when it is smaller than the others (models without
    #: batch statistics, such as a causal LM: dropping it would skip up to micro_batch - 1 examples an
    #: epoch); False: it is dropped, since a batch of 1 breaks BatchNorm's statistics
    keeps_ragged_batch: ClassVar[bool] = False

    @abstractmethod
    def loss(self, built: BuiltModel, batch: dict[str, Any]) -> torch.Tensor:
        """The mean training loss of one micro-batch (already on the training device)."""

    @abstractmethod
    def evaluate(self, built: BuiltModel, loader: Iterable[dict[str, Any]], split: str) -> dict[str, Any]:
        """Metrics over a whole split: scalars (``loss``, ``uar``) and JSON-able extras (``confusion``).

        Called in eval mode under ``torch.no_grad()`` and the training autocast; ``loader`` yields
        batches already on the device. Keys come back unprefixed; the engine prefixes the split.
        """

    @abstractmethod
    def checkpoint_state(self, built: BuiltModel) -> dict[str, torch.Tensor]:
        """The tensors a checkpoint saves (all weights for full training, the adapter only for LoRA)."""

    @abstractmethod
    def load_checkpoint_state(self, built: BuiltModel, state: dict[str, torch.Tensor]) -> None:
        """Put tensors saved by :meth:`checkpoint_state` back into the model."""

    def trainable_parameters(self, built: BuiltModel) -> list[torch.nn.Parameter]:
        """What the optimizer updates; default: every parameter with ``requires_grad``."""
        return [p for p in built.module.parameters() if p.requires_grad]

    def compile_targets(self, built: BuiltModel) -> list[torch.nn.Module]:
        """The modules ``train.compile`` compiles in place (``nn.Module.compile``: parameter and state-dict
        names unchanged). They must be the modules :meth:`loss` calls; default: the whole model."""
        return [built.module]

    def train_metrics(self) -> dict[str, float]:
        """Metrics of the training batches seen since the last call (e.g. running accuracy collected in
        :meth:`loss`), then reset; stored as ``train/<key>`` beside the train loss the engine tracks.
        Under DDP, rank 0's share only. Default: none."""
        return {}

    def train_metrics_state(self) -> dict[str, Any]:
        """What :meth:`train_metrics` has gathered since the last evaluation, as plain data (tensors,
        numbers, lists) that a checkpoint keeps, so a run resumed in the middle of an evaluation window
        reports the whole window, as the uninterrupted run does. Default: nothing to keep (measured
        rates such as tokens/s start again at a resume)."""
        return {}

    def load_train_metrics_state(self, state: dict[str, Any]) -> None:  # noqa: B027 (optional: keeps nothing)
        """Put back what :meth:`train_metrics_state` returned (a checkpoint of an older version: ``{}``)."""

    def chance_level(self) -> float | None:
        """The value of :attr:`best_metric` that guessing scores (1/classes for UAR); with it the engine
        warns once when a run is still about there after ``learning_check`` of its epochs. Default: unknown."""
        return None

    def on_run_end(self, built: BuiltModel, run_dir: Path, splits: DataSplits,
                   history: list[dict[str, Any]]) -> dict[str, Any]:
        """Called once on rank 0 after training, after ``test_metrics.json`` was written, with ``built``
        holding the best weights (the final ones without a validation split); the dict is merged into
        the run's result metrics (plots, extra reports). Default: nothing."""
        return {}


# --- exporters --------------------------------------------------------------------------------


@dataclass
class ExportJob:
    """One export: the source run, the target's settings and where the artifact goes."""

    profile: Profile
    model_key: str
    entry: ModelEntry
    model_plugin: ModelPlugin
    run_dir: Path
    out_dir: Path
    settings: PluginSettings
    console: Console
    data_path: Path | None = None  # the data the run trained on (run.json), or export's --data: to verify on
    target: str = ""  # the target name the user asked for (one exporter class may serve several)

    @contextlib.contextmanager
    def stage(self, what: str) -> Iterator[None]:
        """One step of the export (tracing, fusions, calibration, quantization, verification, conversion):
        a line when it starts and one with its time when it ends, so a long export is never silent. Plain
        lines, no spinner, on a terminal too: a step may show its own progress bar (a dataset decoding
        clips for verification), and rich allows one live display at a time."""
        started = time.perf_counter()
        self.console.print(f"  {what} ...", markup=False, highlight=False)
        yield
        self.console.print(f"  [green]done[/] {what} ({time.perf_counter() - started:.1f} s)", highlight=False)


class ExporterPlugin(Plugin):
    """Turns a run into a verified artifact directory with ``manifest.json``."""

    tasks: ClassVar[frozenset[str]]

    @abstractmethod
    def export(self, job: ExportJob) -> Path:
        """Write and verify the artifact in ``job.out_dir``; return it."""


# --- evaluators -------------------------------------------------------------------------------


@dataclass
class EvalRequest:
    """What `lexiedge eval` asks of an evaluator for one run or artifact."""

    path: Path  # a run directory or an artifact directory
    data: Path | None  # --data; None: the data the run recorded (or the evaluator's default)
    split: str  # "test", "val", "train" (classifiers) or the data set's own split name ("test", "dev")
    out_dir: Path  # where this target's files (plots, per-sample results) go
    console: Console
    limit: int | None = None  # evaluate only the first N samples (quick checks)
    enroll: str | None = None  # --enroll: the speakers' enrollment clips (DatasetPlugin.enrollment_overrides)


@dataclass
class EvalResult:
    """One row of `lexiedge eval`'s table: the task's scalar scores, and everything else it measured."""

    name: str  # how the row is labelled: "pytorch (checkpoints/best)", "onnx-int8", ...
    kind: str  # "run" or "artifact"
    metrics: dict[str, float]  # the table's columns, the same keys for a run and for its artifacts
    details: dict[str, Any] = field(default_factory=dict)  # per-class recall, confusion, per-sample results
    files: dict[str, str] = field(default_factory=dict)  # what was written, by role (confusion_png, ...)


class EvaluatorPlugin(Plugin):
    """Scores a task on labelled data, from a run's PyTorch weights and from any exported artifact.

    Both paths of one evaluator return the same metric keys, so a run and its artifacts line up in
    one table and the task-metric cost of each export is visible. An evaluator serves the ``tasks``
    of the models it knows; `lexiedge eval` picks it by the run's or the manifest's task.
    """

    tasks: ClassVar[frozenset[str]]
    #: the metric the table sorts its reader's eye to (shown first)
    primary_metric: ClassVar[str]

    @abstractmethod
    def evaluate_run(self, request: EvalRequest) -> EvalResult:
        """Score the run's best (else final) weights in PyTorch."""

    @abstractmethod
    def evaluate_artifact(self, request: EvalRequest) -> EvalResult:
        """Score an artifact through :mod:`lexiedge.runtime`, as an app would run it."""

    def evaluate_ensemble(self, request: EvalRequest, members: Sequence[EnsembleMember]) -> list[EvalResult]:
        """Score ``members`` (runs and/or artifacts) each, and their ensemble: one row per member, then the
        ensemble's (``request.path`` is unused; ``request.out_dir`` takes every row's files). Evaluators of
        tasks that cannot be combined keep this refusal."""
        from lexiedge.errors import UsageError

        raise UsageError(f"the {self.name!r} evaluator cannot combine models into an ensemble; evaluate "
                         "each path on its own (without --ensemble)")


@dataclass(frozen=True)
class EnsembleMember:
    """One model of an ensemble `lexiedge eval --ensemble` scores."""

    path: Path
    kind: str  # "run" (PyTorch weights) or "artifact" (through the runtime)
