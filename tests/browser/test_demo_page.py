"""The demo page of `lexiedge serve` in headless Chromium: the emotion model in the browser, the tutor streamed.

A real server (the command a user types, with an API key) over the suite's small artifacts; Chromium
(Debian's `chromium`, driven by Playwright, offline: the page loads onnxruntime-web from the server)
loads `/`, gets a real RAVDESS wav through the file input, and must show the Python runtime's label for
it; the tutor box must stream a reply; a file that is not audio must get one clear line. A screenshot
of the page is saved (the path is printed): under $LEXIEDGE_TEST_ARTIFACTS when set, else tmp_path.

Skipped, with the reason, where Chromium, Playwright or runtime-js/node_modules is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))  # serve_helpers

from lexiedge_runtime import load
from serve_helpers import Server, start_server, stop, wait_until_up

REPO = Path(__file__).resolve().parents[2]
WAV = Path("ravdess-speech/Actor_09/03-01-05-01-01-01-09.wav")  # 16 kHz mono, as the model reads it
KEY = "browser-test-key"
TIMEOUT_MS = 120_000


def chromium_path() -> str:
    """$LEXIEDGE_CHROMIUM, else Debian's chromium on PATH; skips when there is none."""
    for candidate in (os.environ.get("LEXIEDGE_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip("no Chromium: install Debian's chromium package (apt-get install chromium; .ci/run does where it "
                "can) or set LEXIEDGE_CHROMIUM")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    if not (REPO / "runtime-js" / "node_modules" / "onnxruntime-web" / "dist").is_dir():
        pytest.skip("runtime-js/node_modules is absent: run `npm ci --ignore-scripts` in runtime-js (.ci/run does)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def page_server(small_av_artifact: Path, small_lm_artifact: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("browser-serve") / "server.log"
    process, port = start_server([f"tutor={small_lm_artifact}", f"emotion={small_av_artifact}", "--api-key", KEY,
                                  "--threads", "1", "--log-level", "warning"], log)
    running = Server("127.0.0.1", port, KEY, process, log)
    try:
        wait_until_up(running)
        yield running
    finally:
        stop(process)


def screenshot_path(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("LEXIEDGE_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "demo-page.png"


def test_the_page_classifies_a_real_wav_in_the_browser_and_streams_the_tutor(
        browser, page_server, small_av_artifact, shared_data, tmp_path, record_property):
    wav = shared_data / WAV
    expected = load(small_av_artifact, "cpu", threads=1).predict_file(wav)
    context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone's screen
    context.add_init_script(f"sessionStorage.setItem('lexiedge-key', {json.dumps(KEY)})")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"http://{page_server.host}:{page_server.port}/")
        page.wait_for_function("document.querySelector('#status').textContent.includes('ready') || "
                               "document.querySelector('#status').classList.contains('problem')", timeout=TIMEOUT_MS)
        status = page.text_content("#status")
        assert "ready" in status, f"the page did not load the model: {status}"

        page.set_input_files("#file", str(wav))
        page.wait_for_selector("#result:not([hidden])", timeout=TIMEOUT_MS)
        shown = page.text_content("#label")
        probabilities = json.loads(page.get_attribute("#result", "data-probabilities"))
        delta = float(np.max(np.abs(np.array(probabilities) - np.array(list(expected.probabilities.values())))))
        latency = page.get_attribute("#result", "data-inference-ms")
        print(f"browser label {shown} (Python runtime {expected.label}), max |delta| {delta:.2e}, {latency} ms")
        record_property("browser_vs_python_max_abs_delta", delta)
        assert shown == expected.label
        assert delta <= 1e-3, f"the browser's probabilities differ from the Python runtime's by {delta}"
        assert len(page.query_selector_all("#bars .bar")) == len(expected.probabilities)
        assert "in the browser (WASM)" in page.text_content("#latency")

        page.fill("#chat-input", "Correct: She go to school yesterday.")
        page.click("#chat-send")
        page.wait_for_selector(".msg.assistant[data-done]", timeout=TIMEOUT_MS)
        reply = page.text_content(".msg.assistant")
        assert reply and not reply.startswith("(the tutor failed"), f"no streamed reply: {reply!r}"

        shot = screenshot_path(tmp_path)
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the demo page: {shot}")
        record_property("screenshot", str(shot))
        assert errors == [], f"the page raised: {errors}"
    finally:
        context.close()


def test_a_file_that_is_not_audio_gets_one_clear_line(browser, page_server, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(64)))
    context = browser.new_context()
    context.add_init_script(f"sessionStorage.setItem('lexiedge-key', {json.dumps(KEY)})")
    page = context.new_page()
    try:
        page.goto(f"http://{page_server.host}:{page_server.port}/")
        page.wait_for_function("document.querySelector('#status').textContent.includes('ready')", timeout=TIMEOUT_MS)
        page.set_input_files("#file", str(bad))
        page.wait_for_selector("#error:not([hidden])", timeout=TIMEOUT_MS)
        message = page.text_content("#error")
        assert message.startswith("cannot decode notes.wav: not an audio or video file"), message
        assert "\n" not in message.strip()
        assert page.is_hidden("#result")
    finally:
        context.close()


def test_without_the_javascript_runtime_the_page_says_so_in_one_line(browser, page_server):
    """What a server without runtime-js/node_modules reports (tests/serve/test_web.py checks that side)."""
    from lexiedge_runtime.serve.web import NOT_INSTALLED

    page = browser.new_page()
    try:
        def without_runtime(route) -> None:  # the server's own status, as one without node_modules sends it
            status = route.fetch().json()
            route.fulfill(json={**status, "runtime": False, "problem": NOT_INSTALLED})

        page.route("**/web/status.json", without_runtime)
        page.add_init_script(f"sessionStorage.setItem('lexiedge-key', {json.dumps(KEY)})")
        page.goto(f"http://{page_server.host}:{page_server.port}/")
        page.wait_for_selector("#status.problem", timeout=TIMEOUT_MS)
        assert page.text_content("#status") == NOT_INSTALLED
        assert page.is_hidden("#result")
    finally:
        page.close()
