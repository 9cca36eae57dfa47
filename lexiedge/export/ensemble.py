"""Seed ensembles: 2-16 exported classifier artifacts combined into one artifact with one ONNX graph.

    lexiedge ensemble artifacts/seed0/onnx artifacts/seed1/onnx artifacts/seed2/onnx --out artifacts/ens3

Models trained from the same recipe with different seeds disagree on the clips that are hard for them;
the mean of their class probabilities is more accurate on unseen speakers than any one of them. Apps
should not have to know that: the combined graph takes the members' inputs (the same names) and
returns the task's outputs, so ``lexiedge_runtime.load``, runtime-js, `lexiedge infer`/`eval`/`bench`/
`serve` run it as they run one model. Each member's graph is kept whole under its own name prefix
(``onnx.compose.add_prefix``); the outputs are combined:

* ``probabilities``: the mean over members of their ``probabilities`` (each one the member's softmax);
* ``logits``: log of that mean, computed as log-mean-exp of the members' log-softmax (finite even where a
  member's probability underflows to 0), so softmax or argmax downstream give the ensemble's mean.

Members must be ``.onnx`` graphs of the same kind (all fp32 or all int8) for the same task, inputs,
labels and preprocessing; anything else is refused in one line before anything is written. The
result is verified like every export: the combined graph against the mean of the members' softmax,
each member run alone by the runtime, on the task's example inputs at several shapes; then the
artifact is written in a temporary folder beside ``--out`` and renamed into place
(:mod:`lexiedge.export.publish`). Speaker-normalised members (an ``enrollment`` section) are refused:
each member holds its own global statistics as overridable inputs of the same name, which one graph
input cannot feed.
"""

from __future__ import annotations

import copy
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lexiedge.errors import UsageError
from lexiedge.export.agreement import measure_agreement
from lexiedge.export.card import write_card
from lexiedge.export.errors import AgreementError, AtolError, ExportError, VerificationError
from lexiedge.export.manifest import file_table, library_versions, write_manifest
from lexiedge.export.publish import keep_rejected, publish, temp_dir_for
from lexiedge.runtime.artifact import open_artifact
from lexiedge.runtime.errors import ArtifactError, ManifestError
from lexiedge_runtime.tasks import av_classification as av_task
from lexiedge_runtime.tasks.av_classification import (
    AUDIO_MASK,
    FRAMES,
    LOGITS,
    PROBABILITIES,
    VIDEO_MASK,
    WAVEFORM,
    ClassifierSpec,
    example_feeds,
)
from lexiedge_runtime.tasks.schema import check_manifest_schema

if TYPE_CHECKING:
    import onnx

MIN_MEMBERS, MAX_MEMBERS = 2, 16
COMBINE_RULE = "mean of class probabilities"
COMBINABLE = "onnx and onnx-int8 artifacts of av-classification models (fp32 with fp32, int8 with int8)"
GRAPH = "model.onnx"
PREFIX = "member{index}_"  # each member's names in the combined graph: member0_..., member1_...
ENSEMBLE_NODES = "ensemble/"  # the names of the nodes that combine the members' outputs
EXTERNAL_DATA_ABOVE = 1_800_000_000  # bytes: protobuf cannot hold 2 GB; bigger graphs keep weights beside
# The combined graph runs the members' own ops on the same inputs, so it matches their mean to float
# rounding (a sum of N probabilities); int8 members too (the same quantized ops, the same scales).
MAX_PROBABILITY_DIFF = 1e-5
MIN_TOP1 = 1.0  # on decisive clips (see lexiedge.export.agreement): nothing may flip
VERIFY_SEED = 1234
VERIFY_THREADS = 1  # members and the ensemble reduce in the same order; kind to a shared machine

__all__ = ["COMBINE_RULE", "EnsembleResult", "Member", "combine_graphs", "ensemble", "read_members"]


@dataclass(frozen=True)
class Member:
    """One artifact of the ensemble, checked by the runtime (manifest, verification, every file's hash)."""

    directory: Path
    manifest: dict[str, Any]

    @property
    def graph(self) -> Path:
        return self.directory / str((self.manifest.get("runtime") or {}).get("graph") or GRAPH)

    @property
    def precision(self) -> str:
        """ "int8" for a quantized graph (its manifest has a ``quantization`` section), else "fp32"."""
        return "int8" if self.manifest.get("quantization") else "fp32"

    @property
    def graph_sha256(self) -> str:
        return str(self.manifest["files"][self.graph.name]["sha256"])

    def describe(self) -> dict[str, Any]:
        """The manifest's ``ensemble.members`` entry: where it came from and which graph it was."""
        source = self.manifest.get("source") or {}
        training = source.get("training") or {}
        return {
            "artifact": str(self.directory.resolve()),
            "run": source.get("run"),
            "checkpoint": source.get("checkpoint"),
            "seed": training.get("seed"),
            "model": self.manifest.get("model"),
            "target": self.manifest.get("target"),
            "graph_sha256": self.graph_sha256,
            "graph_bytes": int(self.manifest["files"][self.graph.name]["bytes"]),
        }


@dataclass
class EnsembleResult:
    out_dir: Path
    manifest: dict[str, Any]

    @property
    def summary(self) -> str:
        return verification_line(self.manifest)


# --- checking the members ----------------------------------------------------------------------------


def read_members(paths: Sequence[Path], out: Path) -> list[Member]:
    """Every member opened and compared, and ``out`` checked, before anything is written; a UsageError
    (one line, exit 2) for the first problem."""
    if len(paths) < MIN_MEMBERS:
        raise UsageError(
            f"an ensemble needs {MIN_MEMBERS} to {MAX_MEMBERS} artifacts, got {len(paths)}: pass the "
            "artifact folders of models trained with different seeds"
        )
    if len(paths) > MAX_MEMBERS:
        raise UsageError(
            f"an ensemble of {len(paths)} artifacts is over the limit of {MAX_MEMBERS} (size and latency "
            "grow with every member): pass fewer"
        )
    _check_out(out, paths)
    members = [_open_member(path) for path in paths]
    _check_distinct(members)
    first = members[0]
    for member in members[1:]:
        _check_same(first, member)
    return members


def _open_member(path: Path) -> Member:
    try:
        artifact = open_artifact(path)  # manifest, passed verification, every file's sha256
    except ArtifactError as exc:
        raise UsageError(f"{exc}; `lexiedge ensemble` combines verified {COMBINABLE}") from None
    manifest = artifact.manifest
    member = Member(artifact.directory, manifest)
    task = manifest.get("task")
    runtime = manifest.get("runtime") or {}
    graph = str(runtime.get("graph") or "")
    if (
        task != av_task.NAME
        or runtime.get("engine", "onnxruntime") != "onnxruntime"
        or not graph.endswith(".onnx")
    ):
        what = f"target {manifest.get('target')}, task {task}, graph {graph or 'none'}"
        raise UsageError(
            f"{path} is not an .onnx classifier artifact ({what}): only {COMBINABLE} can be "
            "combined into one graph"
        )
    if manifest.get("enrollment"):
        raise UsageError(
            f"{path} is normalised by its speaker (an enrollment section): ensembles of speaker-normalised "
            "models are not supported (each member carries its own global statistics); combine models "
            "trained without feature_norm=speaker"
        )
    outputs = [str(value.get("name")) for value in (manifest.get("signature") or {}).get("outputs") or []]
    if not {LOGITS, PROBABILITIES} <= set(outputs):
        raise UsageError(
            f"{path}: its graph's outputs are {outputs}; an ensemble combines the {LOGITS!r} and "
            f"{PROBABILITIES!r} outputs every classifier export has: re-export it"
        )
    if graph not in (manifest.get("files") or {}):
        raise UsageError(f"{path}: its manifest does not list its graph {graph!r}; re-export it")
    return member


def _check_out(out: Path, paths: Sequence[Path]) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a new or empty folder for the ensemble artifact")
    if out.is_dir() and any(out.iterdir()):
        raise UsageError(
            f"--out {out} exists and is not empty; pass a new or empty folder (nothing was written)"
        )
    resolved = out.resolve()
    for path in paths:
        member = path.resolve()
        if resolved == member or member in resolved.parents:
            raise UsageError(f"--out {out} lies inside the member artifact {path}; pass a folder outside it")


def _check_distinct(members: list[Member]) -> None:
    seen: dict[str, Path] = {}
    for member in members:
        earlier = seen.get(member.graph_sha256)
        if earlier is not None:
            which = (
                f"{member.directory} is given twice"
                if earlier.resolve() == member.directory.resolve()
                else f"{member.directory} and {earlier} hold the same graph"
            )
            raise UsageError(
                f"{which} (sha256 {member.graph_sha256[:12]}...): an ensemble of copies predicts what one "
                "copy does; pass models trained with different seeds"
            )
        seen[member.graph_sha256] = member.directory


def _check_same(first: Member, other: Member) -> None:
    """Members must be interchangeable for an app: task, precision, inputs, labels, preprocessing."""
    a, b = first.manifest, other.manifest
    where = f"{other.directory} differs from {first.directory}"
    if first.precision != other.precision:
        raise UsageError(
            f"{where}: {other.precision} vs {first.precision} graphs; an ensemble mixes no precisions "
            "(combine fp32 members, or int8 members, of the same target)"
        )
    if a.get("labels") != b.get("labels"):
        raise UsageError(
            f"{where} in labels ({b.get('labels')} vs {a.get('labels')}): members must predict "
            "the same labels in the same order"
        )
    inputs_a, inputs_b = _input_contract(a), _input_contract(b)
    if inputs_a != inputs_b:
        raise UsageError(
            f"{where} in its graph inputs ({_show(inputs_b)} vs {_show(inputs_a)}): members must "
            "take the same input names, dtypes and ranks"
        )
    difference = _first_difference(a.get("preprocessing"), b.get("preprocessing"), "preprocessing")
    if difference is not None:
        raise UsageError(
            f"{where} in {difference}: members must read clips the same way (data plugin, data "
            "settings, sample rate, clip length, decoding)"
        )


def _input_contract(manifest: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(name, dtype, rank) of each graph input, as the manifest's signature records them."""
    inputs = (manifest.get("signature") or {}).get("inputs") or []
    return [
        (str(value.get("name")), str(value.get("dtype")), len(value.get("shape") or [])) for value in inputs
    ]


def _show(contract: list[tuple[str, str, int]]) -> str:
    return ", ".join(f"{name} {dtype} rank {rank}" for name, dtype, rank in contract)


def _first_difference(a: Any, b: Any, key: str) -> str | None:
    """The first key path where two JSON values differ, with both values, or None when they are equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for name in sorted(set(a) | set(b)):
            found = _first_difference(a.get(name), b.get(name), f"{key}.{name}")
            if found is not None:
                return found
        return None
    return None if a == b else f"{key} ({b!r} vs {a!r})"


# --- the combined graph -------------------------------------------------------------------------------


def combine_graphs(models: Sequence[onnx.ModelProto]) -> onnx.ModelProto:
    """One graph: every member under its own prefix, reading the shared inputs, and the combined outputs.

    The members' intermediate shape annotations (``value_info``) are dropped: their symbolic dimension
    names are per graph and could clash; ONNX Runtime infers shapes again at load.
    """
    from onnx import TensorProto, compose, helper

    count = len(models)
    opsets = _combined_opsets(models)
    models = [_at_opset(model, opsets[""], index) for index, model in enumerate(models)]
    first = models[0].graph
    graph = helper.make_graph(
        [], "lexiedge_ensemble", inputs=[copy.deepcopy(value) for value in first.input], outputs=[]
    )
    functions: list[onnx.FunctionProto] = []
    for index, model in enumerate(models):
        prefixed = compose.add_prefix(model, PREFIX.format(index=index), rename_inputs=False)
        graph.node.extend(prefixed.graph.node)
        graph.initializer.extend(prefixed.graph.initializer)
        graph.sparse_initializer.extend(prefixed.graph.sparse_initializer)
        functions.extend(prefixed.functions)
    members = [PREFIX.format(index=index) for index in range(count)]
    node = _node_maker(graph)
    # probabilities: the mean of the members' softmax, summed then divided as numpy's mean does
    total = node("Sum", [f"{m}{PROBABILITIES}" for m in members], "probability_sum")
    count_name = f"{ENSEMBLE_NODES}members"
    graph.initializer.append(helper.make_tensor(count_name, TensorProto.FLOAT, [], [float(count)]))
    node("Div", [total, count_name], PROBABILITIES, output=PROBABILITIES)
    # logits: log(mean(p)) = max + log(sum(exp(log_softmax - max))) - log(N), finite for any logits
    log_softmax = [node("LogSoftmax", [f"{m}{LOGITS}"], f"{m}log_softmax", axis=-1) for m in members]
    peak = node("Max", log_softmax, "log_softmax_max")
    exps = [
        node("Exp", [node("Sub", [ls, peak], f"{m}shifted")], f"{m}exp")
        for m, ls in zip(members, log_softmax)
    ]
    log_sum = node("Log", [node("Sum", exps, "exp_sum")], "log_sum")
    log_count = f"{ENSEMBLE_NODES}log_members"
    graph.initializer.append(helper.make_tensor(log_count, TensorProto.FLOAT, [], [float(np.log(count))]))
    node("Sub", [node("Add", [peak, log_sum], "log_total")], LOGITS, output=LOGITS, extra=[log_count])
    outputs = {value.name: value for value in first.output}
    graph.output.extend(copy.deepcopy(outputs[name]) for name in (LOGITS, PROBABILITIES))
    combined = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(domain, version) for domain, version in sorted(opsets.items())],
        producer_name="lexiedge ensemble",
        functions=functions,
        doc_string=f"lexiedge seed ensemble of {count} members: {COMBINE_RULE}",
    )
    combined.ir_version = max(model.ir_version for model in models)
    # no onnx.checker: int8 members hold ONNX Runtime's fused ops (SimplifiedLayerNormalization in the
    # standard domain), which the checker does not know; ONNX Runtime, which runs it, loads and verifies it
    return combined


def _node_maker(graph: onnx.GraphProto):
    """``node(op, inputs, name, output=None, extra=(), **attributes)``: append one combining node to
    ``graph`` (named under :data:`ENSEMBLE_NODES`) and return its output's name."""
    from onnx import helper

    def node(
        op: str,
        inputs: list[str],
        name: str,
        *,
        output: str | None = None,
        extra: Sequence[str] = (),
        **attributes: Any,
    ) -> str:
        result = output or f"{ENSEMBLE_NODES}{name}"
        graph.node.append(
            helper.make_node(op, [*inputs, *extra], [result], name=f"{ENSEMBLE_NODES}{name}", **attributes)
        )
        return result

    return node


def _combined_opsets(models: Sequence[onnx.ModelProto]) -> dict[str, int]:
    """Each operator domain at the highest version a member imports ("" is the standard domain)."""
    opsets: dict[str, int] = {}
    for model in models:
        for entry in model.opset_import:
            domain = "" if entry.domain == "ai.onnx" else entry.domain
            opsets[domain] = max(opsets.get(domain, 0), entry.version)
    opsets.setdefault("", 13)
    return opsets


def _at_opset(model: onnx.ModelProto, version: int, index: int) -> onnx.ModelProto:
    """The member at the ensemble's standard opset: converted by ONNX's version converter when it is older."""
    current = next((e.version for e in model.opset_import if e.domain in ("", "ai.onnx")), version)
    if current == version:
        return model
    from onnx import version_converter

    try:
        return version_converter.convert_version(model, version)
    except Exception as exc:  # the converter's message names the op it cannot convert
        said = " ".join(str(exc).split())[:200]
        raise UsageError(
            f"member {index + 1} is at opset {current} and the others at {version}, and ONNX's version "
            f"converter cannot bring it there ({said}): export every member with the same opset"
        ) from None


def save_graph(model: onnx.ModelProto, directory: Path) -> list[str]:
    """Write the graph as ``model.onnx`` (weights beside it past protobuf's 2 GB); the files written."""
    import onnx

    path = directory / GRAPH
    if model.ByteSize() < EXTERNAL_DATA_ABOVE:
        onnx.save(model, str(path))
        return [GRAPH]
    data = f"{GRAPH}.data"
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=data)
    return [GRAPH, data]


# --- verification -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Inputs:
    feeds: dict[str, np.ndarray]
    description: str


def verification_inputs(manifest: dict[str, Any]) -> list[_Inputs]:
    """The task's example inputs (seeded) at the training clip's shape and at two others: batch 1 with
    shorter audio and one frame; batch 3 with longer audio, more frames, and a clip without audio and
    one without video (zeros and mask 0, as the data contract allows). Both graphs see the same arrays."""
    spec = ClassifierSpec.from_manifest(manifest, "the first member")
    rng = np.random.default_rng(VERIFY_SEED)
    shapes = [
        (4, spec.clip_samples, spec.frame_count),
        (1, max(int(spec.sample_rate * av_task.MIN_AUDIO_SECONDS) + 1, int(spec.clip_samples * 0.6)), 1),
        (3, int(spec.clip_samples * 1.45) + 123, min(spec.frame_count + 3, spec.max_frames)),
    ]
    batches = []
    for batch, samples, frames in shapes:
        feeds = example_feeds(rng, batch, samples, frames, spec.image_size, spec.channels)
        if batch >= 3:
            feeds[AUDIO_MASK][1], feeds[WAVEFORM][1] = 0.0, 0.0
            feeds[VIDEO_MASK][2], feeds[FRAMES][2] = 0.0, 0.0
        batches.append(_Inputs(feeds, f"batch {batch}, {samples} samples, {frames} frames"))
    return batches


def verify_ensemble(graph: Path, members: Sequence[Member]) -> dict[str, Any]:
    """The combined graph against the mean of the members' softmax, each member run alone by the runtime
    (``lexiedge_runtime.load``, CPU); every number is returned, nothing is enforced here."""
    import onnxruntime as ort

    from lexiedge.runtime import load
    from lexiedge.runtime.devices import session_options

    runners = [load(member.directory, "cpu", threads=VERIFY_THREADS) for member in members]
    options = session_options(VERIFY_THREADS)
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # the runtime's one line: which file and why
        said = " ".join(str(exc).split())[:300]
        raise ExportError(f"ONNX Runtime cannot load the combined graph: {said}") from None
    outputs = [value.name for value in session.get_outputs()]
    batches = verification_inputs(members[0].manifest)
    prob_diff = logit_diff = 0.0
    reference_all, combined_all = [], []
    for batch in batches:
        member_probabilities = np.stack([runner.run(batch.feeds)[1] for runner in runners]).astype(np.float64)
        mean = member_probabilities.mean(axis=0)
        got = dict(zip(outputs, session.run(None, batch.feeds)))
        for name in (LOGITS, PROBABILITIES):
            if got[name].shape != mean.shape or not np.isfinite(got[name]).all():
                raise AtolError(
                    "ensemble",
                    name,
                    f"shape {got[name].shape} or non-finite values on "
                    f"{batch.description}; expected finite {mean.shape}",
                )
        with np.errstate(divide="ignore"):
            log_mean = np.log(mean)
        finite = np.isfinite(log_mean)  # a mean probability of exactly 0: log is -inf, the graph's is finite
        prob_diff = max(prob_diff, float(np.abs(got[PROBABILITIES] - mean).max()))
        logit_diff = max(logit_diff, float(np.abs(got[LOGITS] - log_mean)[finite].max()))
        reference_all.append(np.where(finite, log_mean, np.log(np.finfo(np.float32).tiny)))
        combined_all.append(got[LOGITS])
    agreement = measure_agreement(np.concatenate(reference_all), np.concatenate(combined_all))
    return {
        "reference": "the mean of the members' class probabilities, each member artifact run alone by the "
        "runtime (ONNX Runtime, CPU)",
        "inputs": "the task's seeded example inputs (lexiedge_runtime.tasks.av_classification.example_feeds)",
        "shapes": [batch.description for batch in batches],
        "thresholds": {
            "max_probability_diff": MAX_PROBABILITY_DIFF,
            "min_top1": MIN_TOP1,
            "min_top1_on": "decisive clips",
        },
        "clips": agreement.samples,
        "max_abs_diff": {PROBABILITIES: prob_diff, LOGITS: logit_diff},
        "logits_reference": "log of the members' mean probability",
        "top1_agreement": agreement.overall,
        **agreement.report(),
        "passed": None,
    }


def enforce(report: dict[str, Any]) -> None:
    diff = report["max_abs_diff"][PROBABILITIES]
    if diff > MAX_PROBABILITY_DIFF:
        raise AtolError(
            "ensemble",
            PROBABILITIES,
            f"max |difference| from the members' mean {diff:.3g} > "
            f"{MAX_PROBABILITY_DIFF:g} on {report['clips']} example clips",
        )
    decisive = report["decisive"]
    if decisive["agreement"] is not None and decisive["agreement"] < MIN_TOP1:
        raise AgreementError(
            "ensemble",
            PROBABILITIES,
            f"top-1 agreement with the members' mean "
            f"{decisive['agreement']:.2%} < {MIN_TOP1:.0%} on {decisive['samples']} decisive clips",
        )


def verification_line(manifest: dict[str, Any]) -> str:
    """One line: how many members, the size, and what verification measured."""
    report = manifest.get("verification") or {}
    section = manifest.get("ensemble") or {}
    diff = (report.get("max_abs_diff") or {}).get(PROBABILITIES)
    decisive, ties = report.get("decisive") or {}, report.get("near_ties") or {}
    from lexiedge.export.report import human_size

    numbers = (
        f"max |Δ probability| {diff:.2g} vs the members' mean, top-1 agreement "
        f"{report.get('top1_agreement', 0):.1%} on {report.get('clips')} example clips "
        f"({decisive.get('samples')} decisive, {ties.get('samples', 0)} near-ties, "
        f"{ties.get('flips', 0)} flipped)"
        if isinstance(diff, (int, float))
        else "no verification recorded"
    )
    return (
        f"ensemble of {section.get('count')} {section.get('precision')} members "
        f"({human_size(manifest.get('size_bytes') or 0)}): {numbers}"
    )


# --- the manifest -------------------------------------------------------------------------------------


def ensemble_manifest(
    members: Sequence[Member], directory: Path, graph_files: list[str], report: dict[str, Any]
) -> dict[str, Any]:
    """The first member's manifest with the ensemble's graph, files, size, source, verification and an
    ``ensemble`` section; the keys apps and tools read (task, labels, signature, preprocessing, runtime)
    are the members' own, which :func:`read_members` found identical."""
    from lexiedge import __version__

    first = members[0].manifest
    manifest = copy.deepcopy(first)
    for key in (
        "quantization",
        "export",
        "optimization",
        "source",
        "verification",
        "files",
        "model_files",
        "size_bytes",
        "versions",
        "created",
        "lexiedge_version",
    ):
        manifest.pop(key, None)
    files = file_table(directory)
    described = [member.describe() for member in members]
    seeds = [entry["seed"] for entry in described]
    manifest.update(
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        lexiedge_version=__version__,
        runtime={**(first.get("runtime") or {}), "graph": GRAPH},
        ensemble={
            "count": len(members),
            "precision": members[0].precision,
            "combine": COMBINE_RULE,
            "outputs": {
                PROBABILITIES: "the mean over members of their softmax",
                LOGITS: "log of that mean (log-mean-exp of the members' log-softmax)",
            },
            "graph": f"each member's graph whole, its names prefixed {PREFIX.format(index='<i>')}",
            "members": described,
        },
        export={"tool": "lexiedge ensemble (onnx.compose.add_prefix)", "members_export": first.get("export")},
        source={
            "note": f"A seed ensemble of {len(members)} models"
            + (f" (seeds {', '.join(map(str, seeds))})" if all(s is not None for s in seeds) else "")
            + f", combined by the {COMBINE_RULE}; each member's run is listed under ensemble.members",
            "profile": (first.get("source") or {}).get("profile"),
            "training": {
                key: value
                for key, value in ((first.get("source") or {}).get("training") or {}).items()
                if key != "seed"
            },
        },
        caveats=[
            f"a seed ensemble of {len(members)} members: {len(members)} times one model's size and about "
            f"{len(members)} times its latency, for the {COMBINE_RULE}",
            *[str(note) for note in first.get("caveats") or []],
        ],
        verification=report,
        size_bytes=sum(files[name]["bytes"] for name in graph_files),
        model_files=graph_files,
        versions=library_versions(),
        files=files,
    )
    if members[0].precision == "int8":  # the card's caveat reads it; the members' own numbers stay with them
        manifest["quantization"] = {
            "tool": (first.get("quantization") or {}).get("tool"),
            "weight_type": "int8",
            "members": "each member as its own export quantized it",
        }
    try:
        check_manifest_schema(manifest, "ensemble")
    except ManifestError as exc:
        raise ExportError(f"{exc}; the ensemble's manifest would not load in the runtime") from None
    return manifest


# --- the command ----------------------------------------------------------------------------------------


def ensemble(paths: Sequence[Path], out: Path) -> EnsembleResult:
    """Check, combine, verify, then publish ``out`` (a temp folder beside it, renamed into place)."""
    import onnx

    members = read_members(paths, out)
    tmp = temp_dir_for(out)
    try:
        combined = combine_graphs([onnx.load(str(member.graph)) for member in members])
        graph_files = save_graph(combined, tmp)
        del combined
        report: dict[str, Any] = {}
        try:
            report = verify_ensemble(tmp / GRAPH, members)
            enforce(report)
            report["passed"] = True
        except VerificationError as exc:
            report.update(passed=False, failure=exc.reason)
            raise
        finally:
            if "passed" in report:  # passed or rejected: the artifact keeps every number measured
                manifest = ensemble_manifest(members, tmp, graph_files, report)
                write_manifest(tmp, manifest)
                write_card(tmp, manifest)
        _check_loads(tmp)
    except VerificationError as exc:
        exc.saved_path = keep_rejected(tmp, out)
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing half-written stays
        raise
    publish(tmp, out)
    return EnsembleResult(out, manifest)


def _check_loads(directory: Path) -> None:
    """The runtime opens the finished artifact as an app would (manifest, hashes, graph inputs, labels)."""
    from lexiedge.runtime import load

    try:
        load(directory, "cpu", threads=VERIFY_THREADS)
    except ArtifactError as exc:
        raise ExportError(f"the runtime refuses the combined artifact: {exc}") from None
