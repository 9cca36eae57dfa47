"""runtime-js refuses a bad manifest.json as the Python runtime does: the same error class, the same words.

Issue 31, item 7: a symlinked manifest gave an untyped `Error: link` in Node, and a manifest that is
not UTF-8 loaded there (decoded with replacement characters) while Python refused it. Each case is a
real copy of the fault suite's exported artifact with one thing changed; Python's `load` and Node's
`loadClassifier` (runtime-js, with onnxruntime-node) each try it, in this process and in a real Node.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lexiedge.runtime import ArtifactError, load

RUNTIME_JS = Path(__file__).resolve().parents[2] / "runtime-js"
NODE_SCRIPT = """
import * as ort from 'onnxruntime-node';
import { ArtifactError, loadClassifier } from './src/index.js';
const results = [];
for (const directory of JSON.parse(process.env.LEXIEDGE_ARTIFACTS)) {
  try {
    await loadClassifier(directory, { ort });
    results.push({ loaded: true });
  } catch (error) {
    results.push({ name: error.name, message: error.message, artifactError: error instanceof ArtifactError });
  }
}
console.log(JSON.stringify(results));
"""


def _symlinked(copy: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere-manifest.json"
    shutil.move(copy / "manifest.json", elsewhere)
    (copy / "manifest.json").symlink_to(elsewhere)


def _bytes_in_a_string(payload: bytes):
    """The real manifest with ``payload`` inside a string value (a description field the runtime ignores)."""
    def change(copy: Path, tmp_path: Path) -> None:
        (copy / "manifest.json").write_bytes(_with_note(copy / "manifest.json", payload))
    return change


def _with_note(manifest: Path, payload: bytes) -> bytes:
    body = manifest.read_bytes().rstrip()
    assert body.endswith(b"}")
    return body[:-1] + b', "note": "' + payload + b'"}\n'


def _directory(copy: Path, tmp_path: Path) -> None:
    (copy / "manifest.json").unlink()
    (copy / "manifest.json").mkdir()


CASES = {
    "a symbolic link": _symlinked,
    "a Latin-1 byte": _bytes_in_a_string(b"caf\xe9"),
    "a truncated sequence at the end": _bytes_in_a_string(b"\xe2\x82"),
    "an overlong slash": _bytes_in_a_string(b"\xc0\xaf"),
    "a UTF-16 surrogate": _bytes_in_a_string(b"\xed\xa0\x80"),
    "a code point above U+10FFFF": _bytes_in_a_string(b"\xf4\x90\x80\x80"),
    "a directory": _directory,
}


def _node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (Node.js >= 18 runs runtime-js)")
    if not (RUNTIME_JS / "node_modules" / "onnxruntime-node").is_dir():
        pytest.skip("runtime-js/node_modules is absent: run `npm ci --ignore-scripts` in runtime-js (.ci/run does)")
    return node


def test_node_refuses_a_bad_manifest_with_the_python_runtime_s_class_and_words(artifact, tmp_path):
    node = _node_or_skip()
    directories, expected = [], []
    for index, (case, change) in enumerate(CASES.items()):
        copy = tmp_path / f"case-{index}"
        shutil.copytree(artifact, copy)
        change(copy, tmp_path)
        with pytest.raises(ArtifactError) as refused:
            load(copy, "cpu")
        assert "\n" not in str(refused.value)
        directories.append(str(copy))
        expected.append({"case": case, "name": type(refused.value).__name__, "message": str(refused.value)})
    missing, a_file = tmp_path / "no-such-artifact", tmp_path / "a-file"
    a_file.write_text("not a folder")
    for case, path in (("a missing folder", missing), ("a file", a_file)):
        with pytest.raises(ArtifactError) as refused:
            load(path, "cpu")
        directories.append(str(path))
        expected.append({"case": case, "name": type(refused.value).__name__, "message": str(refused.value)})

    done = subprocess.run([node, "--input-type=module", "-e", NODE_SCRIPT], cwd=RUNTIME_JS, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "LEXIEDGE_ARTIFACTS": json.dumps(directories)})
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for want, got in zip(expected, results, strict=True):
        assert got.get("artifactError") is True, f"{want['case']}: Node gave {got}"
        assert (got["name"], got["message"]) == (want["name"], want["message"]), want["case"]


def test_python_names_the_first_byte_that_is_not_utf8(artifact_copy):
    changed = _with_note(artifact_copy / "manifest.json", b"caf\xe9")
    (artifact_copy / "manifest.json").write_bytes(changed)
    at = changed.index(b"\xe9")
    with pytest.raises(ArtifactError) as refused:
        load(artifact_copy, "cpu")
    assert str(refused.value) == (
        f"{artifact_copy}/manifest.json: unreadable manifest (not UTF-8 text at byte {at}); "
        "expected the UTF-8 JSON `lexiedge export` writes")
