"""An artifact's model card: ``README.md`` in the artifact folder, rendered from its ``manifest.json`` alone.

What it is, the task and labels, how it was trained (profile, data, epochs, seed), how it was verified
and its numbers, the inputs, how to run it (Python, JavaScript, Android/iOS where the format is made for
them) and the caveats the manifest implies. :func:`render_card` reads nothing but the manifest, so the
card can always be re-rendered from it and says nothing the manifest does not (tests re-render and
compare). ``lexiedge export`` writes it after the manifest, in the artifact's temporary folder, so it is
published with the rest (:mod:`lexiedge.export.publish`). It is documentation, not a model file: the
manifest's ``files`` table does not list it (editing it breaks nothing) and the runtimes ignore it.

A new format adds at most one line here: its engine's sentence in :data:`ON_DEVICE` (where phones run
it); everything else comes from its manifest and the runtime's runner registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lexiedge import atomic
from lexiedge.export.report import human_size

CARD = "README.md"

# engine (the manifest's runtime.engine) -> how an Android or iOS app runs its artifacts; an engine not
# listed gets no mobile section
ON_DEVICE: dict[str, str] = {
    "onnxruntime": "ONNX Runtime Mobile: Android `com.microsoft.onnxruntime:onnxruntime-android`, iOS the "
    "`onnxruntime-objc` or `onnxruntime-c` pod (the `ort-mobile` target's `model.ort` is the smallest form; "
    "see docs/formats.md)",
    "onnxruntime-genai": "ONNX Runtime GenAI built for the phone (Android/iOS), which keeps the KV cache "
    "itself; "
    "copy every file listed below and render `chat_template.jinja` in the app",
    "executorch": "ExecuTorch's runtime with its XNNPACK backend linked (Android: the `executorch-android` "
    "AAR; iOS: the ExecuTorch Swift package); load `model.pte` with `Module`",
    "litert": "LiteRT's interpreter (Android: the `com.google.ai.edge.litert:litert` package; iOS: its "
    "Swift or C API); call `model.tflite`'s signature by the input names above, one clip per call",
}


def render_card(manifest: dict[str, Any]) -> str:
    """The model card's markdown, from the manifest only (same manifest, same text)."""
    sections = [
        _header(manifest),
        _task(manifest),
        _training(manifest),
        _ensemble(manifest),
        _verification(manifest),
        _inputs(manifest),
        _usage(manifest),
        _caveats(manifest),
        _files(manifest),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def write_card(directory: Path, manifest: dict[str, Any]) -> Path:
    """Write ``README.md`` beside the manifest (atomically: a temporary name, then a rename)."""
    return atomic.write_text(directory / CARD, render_card(manifest))


# --- sections ----------------------------------------------------------------------------------------


def _header(m: dict[str, Any]) -> str:
    runtime = m.get("runtime") or {}
    engine = runtime.get("engine") or "onnxruntime"
    graph = runtime.get("graph") or ", ".join(m.get("model_files") or [])
    size = human_size(m["size_bytes"]) if isinstance(m.get("size_bytes"), int) else "unknown size"
    ensemble = m.get("ensemble") or {}
    kind = f"seed ensemble of {ensemble.get('count')} members" if ensemble else "artifact"
    return (
        f"# {m.get('model', '?')}: `{m.get('target', '?')}` {kind}\n\n"
        f"A model for `{m.get('task', '?')}`, exported by lexiedge {m.get('lexiedge_version', '?')} on "
        f"{m.get('created', '?')}: `{graph}` ({size}) for the `{engine}` engine. "
        "This card is generated from `manifest.json` at export; the manifest is the contract."
    )


def _task(m: dict[str, Any]) -> str:
    from lexiedge_runtime.tasks import find_task

    spec = find_task(str(m.get("task")))
    lines = [
        "## Task",
        "",
        f"{m.get('task')}: {spec.description if spec else 'a task this runtime does not know'}.",
    ]
    labels = m.get("labels")
    if labels:
        lines += [
            "",
            f"Labels, in output order ({len(labels)}): " + ", ".join(f"`{label}`" for label in labels) + ".",
        ]
    tokenizer = m.get("tokenizer")
    if isinstance(tokenizer, dict) and tokenizer:
        lines += [
            "",
            "Tokenizer: "
            + ", ".join(
                f"{key} `{value}`" for key, value in tokenizer.items() if isinstance(value, (str, int, float))
            )
            + ".",
        ]
    return "\n".join(lines)


def _training(m: dict[str, Any]) -> str:
    source = m.get("source") or {}
    lines = ["## Training", ""]
    if source.get("note"):
        lines.append(f"{source['note']}.")
    if source.get("profile"):
        lines.append(
            f"- profile: `{source['profile']}` (model plugin `{m.get('model_plugin', m.get('model'))}`)"
        )
    training = source.get("training") or {}
    data = (m.get("preprocessing") or {}).get("data_plugin")
    data = training.get("data_plugin") or data
    if training.get("data") or data:
        lines.append(
            "- data: "
            + " ".join(
                filter(
                    None,
                    [
                        f"`{training['data']}`" if training.get("data") else "",
                        f"(data plugin `{data}`)" if data else "",
                    ],
                )
            )
        )
    for key, what in (
        ("trainer", "trainer"),
        ("epochs", "epochs"),
        ("max_steps", "at most steps"),
        ("seed", "seed"),
    ):
        if training.get(key) is not None:
            lines.append(f"- {what}: {training[key]}")
    if source.get("run"):
        lines.append(f"- run: `{source['run']}`, checkpoint `{source.get('checkpoint') or '-'}`")
    if source.get("merged_model"):
        lines.append(f"- merged model: `{source['merged_model']}`")
    return "\n".join(lines) if len(lines) > 2 else ""


def _ensemble(m: dict[str, Any]) -> str:
    """An ensemble's members (`lexiedge ensemble`): one graph runs them all on the same inputs."""
    section = m.get("ensemble") or {}
    members = section.get("members") or []
    if not members:
        return ""
    lines = [
        "## Ensemble",
        "",
        f"{len(members)} members in one graph, each reading the same inputs; outputs combined by the "
        f"{section.get('combine', '?')} (`logits` is the log of that mean).",
        "",
        "| member | seed | run | graph sha256 |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {index} | {entry.get('seed', '-')} | `{entry.get('run') or '-'}` | "
        f"`{str(entry.get('graph_sha256'))[:16]}...` |"
        for index, entry in enumerate(members, 1)
    ]
    return "\n".join(lines)


def _verification(m: dict[str, Any]) -> str:
    report = m.get("verification") or {}
    if not report:
        return ("## Verification\n\nNone recorded: the runtime refuses this artifact unless told to load it "
                "unverified.")
    passed = report.get("passed")
    verdict = (
        "passed"
        if passed is True
        else ("FAILED: " + str(report.get("failure", "")) if passed is False else "not recorded")
    )
    lines = ["## Verification", "", f"Against {report.get('reference', 'the source model')}: **{verdict}**."]
    numbers = report.get("validation", report)  # classifiers report per split; LLMs at the top
    rows = []
    for name, value in sorted((numbers.get("max_abs_diff") or {}).items()):
        if isinstance(value, (int, float)):
            rows.append((f"max \\|{name} difference\\|", f"{value:.3g}"))
    sweep = (report.get("shape_sweep") or {}).get("max_abs_diff") or {}
    if isinstance(sweep.get("logits"), (int, float)):
        rows.append(("max \\|logits difference\\|, shape sweep", f"{sweep['logits']:.3g}"))
    if isinstance(numbers.get("top1_agreement"), (int, float)):
        rows.append(("top-1 agreement, all samples", f"{numbers['top1_agreement']:.1%}"))
    decisive, ties = numbers.get("decisive") or {}, numbers.get("near_ties") or {}
    if isinstance(decisive.get("agreement"), (int, float)):
        rows.append(
            (
                "agreement on decisive samples",
                f"{decisive['agreement']:.1%} of {decisive.get('samples')} "
                f"({ties.get('samples', 0)} near-ties, {ties.get('flips', 0)} flipped)",
            )
        )
    metric = numbers.get("task_metric") or {}
    if isinstance(metric.get("artifact"), (int, float)):
        rows.append(
            (
                f"{str(metric.get('name', 'metric')).upper()} PyTorch -> artifact (delta)",
                f"{metric['pytorch']:.4f} -> {metric['artifact']:.4f} ({metric.get('delta', 0.0):+.4f})",
            )
        )
    if isinstance(numbers.get("clips"), int):
        rows.append(("validation clips", str(numbers["clips"])))
    if rows:
        lines += ["", "| check | value |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]
    thresholds = report.get("thresholds") or {}
    shown = ", ".join(f"{key} {value}" for key, value in thresholds.items() if value is not None)
    if shown:
        lines += ["", f"Thresholds: {shown}."]
    return "\n".join(lines)


def _inputs(m: dict[str, Any]) -> str:
    signature = m.get("signature") or {}
    if not signature.get("inputs"):
        return ""
    lines = ["## Inputs and outputs", "", "| | name | dtype | shape |", "|---|---|---|---|"]
    for kind in ("inputs", "outputs"):
        for value in signature.get(kind) or []:
            shape = ", ".join(str(dim) for dim in value.get("shape", []))
            lines.append(f"| {kind[:-1]} | `{value.get('name')}` | {value.get('dtype')} | [{shape}] |")
    data = (m.get("preprocessing") or {}).get("data_settings") or {}
    if data.get("sample_rate") and data.get("clip_seconds"):
        lines += [
            "",
            f"Trained on {data['clip_seconds']} s clips at {data['sample_rate']} Hz"
            + (
                f", {data['frames']} face frames of {data['image_size']}x{data['image_size']}"
                if data.get("frames")
                else ""
            )
            + "; the graph computes its own features (raw samples, "
            "[0, 1] pixels in). `preprocessing` in the manifest states the decoding exactly.",
        ]
    return "\n".join(lines)


def _usage(m: dict[str, Any]) -> str:
    runtime = m.get("runtime") or {}
    engine = str(runtime.get("engine") or "onnxruntime")
    task = str(m.get("task"))
    extra = _runtime_extra(m)
    install = f'pip install "lexiedge-runtime[{extra}]"' if extra else "pip install lexiedge-runtime"
    if task == "causal-lm":
        call = (
            'model = lexiedge_runtime.load("path/to/this/folder", threads=4)\n'
            'print(model.generate([{"role": "user", "content": "Correct: She go to school."}]).text)'
        )
    else:
        call = (
            'model = lexiedge_runtime.load("path/to/this/folder", "cpu")\n'
            'print(model.predict_file("clip.mp4").label)  # files need the [media] extra'
        )
    lines = [
        "## Run it",
        "",
        "Python:",
        "",
        "```python",
        f"# {install}",
        "import lexiedge_runtime",
        call,
        "```",
    ]
    graph = str(runtime.get("graph") or "")
    if engine == "onnxruntime" and task == "av-classification" and graph.endswith(".onnx"):
        lines += [
            "",
            "JavaScript (runtime-js, onnxruntime-web in a browser or onnxruntime-node):",
            "",
            "```js",
            "import { loadClassifier } from 'lexiedge-runtime-js';",
            "const model = await loadClassifier('path/or/url/of/this/folder', { ort });",
            "const result = await model.predict({ waveform, sampleRate: 16000 });",
            "```",
        ]
    else:
        lines += ["", "JavaScript: runtime-js runs `.onnx` classifier artifacts only, not this one."]
    if engine in ON_DEVICE:
        lines += ["", f"Android / iOS: {ON_DEVICE[engine]}."]
    infer = '--prompt "Correct: She go to school."' if task == "causal-lm" else "clip.mp4"
    lines += [
        "",
        f"Command line: `lexiedge infer <this folder> {infer}`, `lexiedge serve <this folder>`, "
        "`lexiedge bench --all-formats <this folder>`.",
    ]
    return "\n".join(lines)


def _runtime_extra(m: dict[str, Any]) -> str | None:
    """The lexiedge-runtime extra this artifact's runner needs (from the runner registry), if any."""
    from lexiedge_runtime.errors import ArtifactError
    from lexiedge_runtime.extras import extra_for_modules
    from lexiedge_runtime.tasks import runner_for

    try:
        entry = runner_for(m)
    except ArtifactError:
        return None
    return extra_for_modules(entry.libraries)


def _caveats(m: dict[str, Any]) -> str:
    from lexiedge.caveats import tiny_lm_note

    notes = [str(note) for note in m.get("caveats") or []]  # an exporter's own, word for word
    thresholds = (m.get("verification") or {}).get("thresholds") or {}
    if thresholds.get("min_top1") == 0 or thresholds.get("min_decisive_share") == 0:
        notes.append(
            "verified with relaxed agreement thresholds (a test or demo export): its numbers above "
            "are what was measured, not what a release requires"
        )
    quantization = m.get("quantization") or {}
    if quantization:
        kept = quantization.get("kept_float") or (m.get("settings") or {}).get("exclude_modules")
        what = quantization.get("scheme") or quantization.get("weight_type") or quantization.get("precision")
        notes.append(
            f"quantized ({what or 'see the manifest'}; {quantization.get('tool', '?')})"
            + (f"; kept in float: {', '.join(map(str, kept))}" if kept else "")
            + ": outputs differ from the fp32 model by the numbers above"
        )
    export = m.get("export") or {}
    if export.get("batch") == 1:
        notes.append("one clip per call (batch 1); the runtime runs a batch clip by clip")
    bounds = export.get("bounds")
    if isinstance(bounds, dict) and bounds:
        notes.append(
            "input sizes within "
            + ", ".join(
                f"{k} {v[0]}..{v[1]}" if isinstance(v, list) else f"{k} {v}" for k, v in bounds.items()
            )
            + " (the program refuses others)"
        )
    if m.get("enrollment"):
        notes.append(
            "normalised by its speaker: feed a speaker profile (`calibrate`) for the verified behaviour"
        )
    tiny = tiny_lm_note(m)
    if tiny:
        notes.append(tiny.removeprefix("note: "))
    if not notes:
        return ""
    return "\n".join(["## Caveats", "", *(f"- {note}" for note in notes)])


def _files(m: dict[str, Any]) -> str:
    files = m.get("files") or {}
    if not files:
        return ""
    lines = ["## Files", "", "| file | bytes | sha256 |", "|---|---:|---|"]
    lines += [
        f"| `{name}` | {entry.get('bytes')} | `{str(entry.get('sha256'))[:16]}...` |"
        for name, entry in sorted(files.items())
    ]
    lines += ["", "The runtime checks every sha256 above before loading (this README is not listed)."]
    return "\n".join(lines)
