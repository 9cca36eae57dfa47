"""One manifest schema for both runtimes: generated from the task specs, applied alike in Python and JS.

runtime-js reads ``src/manifest.schema.js``, which ``python -m lexiedge_runtime.tasks`` generates from the
typed sections (:mod:`lexiedge_runtime.tasks.schema`); the file must be what the generator writes now.
Then real manifests (the suite's small emotion and tutor artifacts) and broken copies of them go through
the Python checker and runtime-js's ``schemaProblem``: both accept the same ones and refuse the others at
the same key.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

from test_runtime_js import RUNTIME_JS, node_or_skip

from lexiedge_runtime.errors import ManifestError
from lexiedge_runtime.tasks.schema import check_manifest_schema, javascript_module

SCHEMA_MODULE = RUNTIME_JS / "src" / "manifest.schema.js"


def test_runtime_js_reads_the_schema_the_task_specs_generate() -> None:
    assert SCHEMA_MODULE.read_text(encoding="utf-8") == javascript_module(), (
        "runtime-js/src/manifest.schema.js is stale: regenerate it with "
        "`python -m lexiedge_runtime.tasks runtime-js/src/manifest.schema.js`"
    )


def _set(manifest: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(manifest)
    *parents, last = path.split(".")
    target = changed
    for key in parents:
        target = target[key]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return changed


_DELETE = object()
# (manifest kind, key, new value, the key the refusal names; None: still valid)
CASES = [
    ("av", "verification.failure", "a note", None),
    ("av", "export", {"anything": "an exporter adds"}, None),
    ("av", "labels", [], "labels"),
    ("av", "preprocessing.data_settings.sample_rate", 16000.5, "preprocessing.data_settings.sample_rate"),
    ("av", "preprocessing.data_settings.frames", _DELETE, "preprocessing.data_settings.frames"),
    ("av", "preprocessing.feeds.waveform.sample_rate", "16k", "preprocessing.feeds.waveform.sample_rate"),
    ("av", "preprocessing.feeds.version", 2, "preprocessing.feeds.version"),
    ("av", "preprocessing.feeds.modalities", ["audio", "smell"], "preprocessing.feeds.modalities[1]"),
    ("av", "preprocessing.media.face_crop", "yes", "preprocessing.media.face_crop"),
    ("av", "preprocessing.media.decoded_seconds", 0, "preprocessing.media.decoded_seconds"),
    ("av", "size_bytes", -1, "size_bytes"),
    ("av", "verification.passed", "true", "verification.passed"),
    ("av", "signature.inputs", [{"dtype": "float32"}], "signature.inputs[0].name"),
    ("av", "files", {}, "files"),
    ("lm", "tokenizer.chat_template", None, None),
    ("lm", "tokenizer.eos_token_ids", 7, None),
    ("lm", "tokenizer.eos_token_ids", ["7"], "tokenizer.eos_token_ids[0]"),  # the list shape got furthest
    ("lm", "architecture.vocab_size", 0, "architecture.vocab_size"),
    ("lm", "preprocessing.kv_cache", _DELETE, "preprocessing.kv_cache"),
    ("lm", "runtime.engine", "", "runtime.engine"),
]


def _python_verdict(manifest: dict[str, Any]) -> str | None:
    try:
        check_manifest_schema(manifest, "case")
    except ManifestError as exc:
        return exc.key
    return None


def test_python_and_runtime_js_refuse_the_same_manifests_at_the_same_key(
    small_av_artifact: Path, small_lm_artifact: Path, tmp_path: Path
) -> None:
    node = node_or_skip()
    real = {
        kind: json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        for kind, path in (("av", small_av_artifact), ("lm", small_lm_artifact))
    }
    manifests = {f"{kind} as exported": manifest for kind, manifest in real.items()}
    expected = {name: None for name in manifests}
    for kind, key, value, refused_at in CASES:
        name = f"{kind} {key} = {'(deleted)' if value is _DELETE else json.dumps(value)}"
        manifests[name] = _set(real[kind], key, value)
        expected[name] = refused_at

    python = {name: _python_verdict(manifest) for name, manifest in manifests.items()}
    assert python == expected

    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps(manifests), encoding="utf-8")
    script = (
        "import { readFileSync } from 'node:fs';\n"
        f"import {{ schemaProblem }} from '{(RUNTIME_JS / 'src' / 'schema.js').as_uri()}';\n"
        "const cases = JSON.parse(readFileSync(process.argv[1], 'utf8'));\n"
        "const verdicts = Object.fromEntries(Object.entries(cases).map(([name, manifest]) => {\n"
        "  const problem = schemaProblem(manifest);\n"
        "  return [name, problem ? problem[0] : null];\n"
        "}));\n"
        "console.log(JSON.stringify(verdicts));\n"
    )
    ran = subprocess.run(
        [node, "--input-type=module", "-e", script, str(cases)], capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == python
