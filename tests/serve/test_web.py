"""What `lexiedge serve` adds for the demo page: the page, the JavaScript runtime, a classifier's files.

Against the suite's real server (conftest.py: an API key, the tutor and the emotion artifacts). The
page itself runs in Chromium in tests/browser/.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from lexiedge_runtime import read_manifest
from lexiedge_runtime.serve.cli import main as serve_main
from lexiedge_runtime.serve.web import NOT_INSTALLED, ORT_ENTRY, find_web_runtime
from serve_helpers import request

REPO = Path(__file__).resolve().parents[2]
ORT_INSTALLED = (REPO / "runtime-js" / "node_modules" / "onnxruntime-web" / "dist" / ORT_ENTRY).is_file()


def test_the_page_and_its_code_need_no_key(server):
    page = request(server, "GET", "/", key=None)
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert b'src="/web/app.js"' in page.body
    for path, kind in (("/web/app.js", "text/javascript"), ("/web/style.css", "text/css")):
        reply = request(server, "GET", path, key=None)
        assert reply.status == 200 and reply.headers["content-type"].startswith(kind), path
    status = request(server, "GET", "/web/status.json", key=None).json()
    assert status["key_required"] is True
    assert status["runtime"] is ORT_INSTALLED
    assert status["problem"] == (None if ORT_INSTALLED else NOT_INSTALLED)
    assert status["tasks"] == {"chat": ["causal-lm"], "classify": "av-classification"}  # from the task specs
    assert request(server, "GET", "/web/nothing.js", key=None).status == 404
    assert request(server, "GET", "/v1/models", key=None).status == 401  # the API still needs the key


@pytest.mark.skipif(not ORT_INSTALLED, reason="runtime-js/node_modules is absent (npm ci --ignore-scripts in runtime-js)")
def test_the_javascript_runtime_and_onnxruntime_web_are_served_as_modules(server):
    for path in ("/web/lexiedge/index.js", f"/web/ort/{ORT_ENTRY}"):
        reply = request(server, "GET", path, key=None)
        assert reply.status == 200 and reply.headers["content-type"].startswith("text/javascript"), path
    wasm = request(server, "GET", "/web/ort/ort-wasm-simd-threaded.wasm", key=None)
    assert wasm.status == 200 and wasm.headers["content-type"] == "application/wasm"
    assert request(server, "GET", "/web/lexiedge/../package.json", key=None).status == 404


def test_a_classifier_serves_its_manifest_and_the_files_it_lists_only(server, small_av_artifact):
    assert request(server, "GET", "/web/models/emotion/manifest.json", key=None).status == 401
    manifest = request(server, "GET", "/web/models/emotion/manifest.json").json()
    assert manifest == read_manifest(small_av_artifact)
    assert "feeds" in manifest["preprocessing"]  # the input contract runtime-js reads
    for name, entry in manifest["files"].items():
        body = request(server, "GET", f"/web/models/emotion/{name}").body
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
    for path in ("/web/models/emotion/profile.yaml", "/web/models/emotion/%2e%2e/manifest.json",
                 "/web/models/emotion/..%2fmanifest.json", "/web/models/tutor/manifest.json",
                 "/web/models/nobody/manifest.json"):
        reply = request(server, "GET", path)
        assert reply.status == 404, (path, reply.body)
        assert set(reply.json()["error"]) >= {"message", "code"}


def test_a_bad_web_runtime_folder_is_refused_at_start_in_one_line(small_av_artifact, tmp_path, capsys):
    code = serve_main([str(small_av_artifact), "--web-runtime", str(tmp_path / "missing")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert err == f"error: --web-runtime {tmp_path / 'missing'}: not a runtime-js folder (expected src/index.js in it)"


def test_the_web_runtime_is_found_in_a_checkout_or_an_npm_install(tmp_path, monkeypatch):
    monkeypatch.delenv("LEXIEDGE_WEB_RUNTIME", raising=False)
    checkout = tmp_path / "runtime-js"
    (checkout / "src").mkdir(parents=True)
    (checkout / "src" / "index.js").write_text("export {};\n")
    with pytest.raises(Exception, match="onnxruntime-web is not installed there"):
        find_web_runtime(str(checkout))
    npm = tmp_path / "node_modules"  # `npm install lexiedge-runtime-js`: onnxruntime-web beside it
    (npm / "onnxruntime-web" / "dist").mkdir(parents=True)
    (npm / "onnxruntime-web" / "dist" / ORT_ENTRY).write_text("")
    (npm / "lexiedge-runtime-js").symlink_to(checkout)
    found = find_web_runtime(str(npm / "lexiedge-runtime-js"))
    assert found.available and found.problem is None
    monkeypatch.setenv("LEXIEDGE_WEB_RUNTIME", str(npm / "lexiedge-runtime-js"))
    assert find_web_runtime(None) == found
    assert json.dumps(found.problem) == "null"
