"""The lexiedge-runtime wheel, installed alone into a new virtual environment, runs what the suite exported.

No --system-site-packages: the venv has only what the wheel's metadata pulls in from the package
index. First the bare wheel (numpy + onnxruntime): a classifier runs on arrays, and the features whose
extra is missing refuse in one line naming it. Then ``[llm,media]``: a synthetic clip file and a
greedy tutor answer, compared with the same artifacts run in this (the toolkit's) environment. Torch,
transformers and pydantic must be absent from that venv throughout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import numpy as np
import pytest

from lexiedge_runtime import load
from lexiedge_runtime.extras import EXTRAS

RUNTIME_PROJECT = Path(__file__).resolve().parents[2] / "runtime"
PROMPT = [{"role": "user", "content": "Correct: He go home yesterday."}]
NEVER = ("torch", "transformers", "pydantic")

pytestmark = pytest.mark.slow

APP = textwrap.dedent(
    """
    import importlib.util, json, sys
    import numpy as np
    import lexiedge_runtime as rt

    av_dir, lm_dir, clip, stage = sys.argv[1:5]
    report = {"absent": [name for name in %r if importlib.util.find_spec(name) is None]}
    classifier = rt.load(av_dir, "cpu")
    tone = (0.3 * np.sin(np.linspace(0, 2000, 24000))).astype(np.float32)
    report["arrays"] = classifier.predict(waveform=tone).probabilities
    for name, call in (("file", lambda: classifier.predict_file(clip).probabilities),
                       ("tutor", lambda: rt.load(lm_dir, "cpu").generate(%r, max_new_tokens=12).text)):
        try:
            report[name] = call()
        except rt.MissingExtraError as exc:
            report[name] = "refused: " + str(exc)
    print(json.dumps(report))
    """
) % (NEVER, PROMPT)


def _run(command: list[str | Path], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, command))}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def test_the_extras_in_pyproject_are_the_ones_the_runtime_checks():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    declared = tomllib.loads((RUNTIME_PROJECT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra, packages in EXTRAS.items():
        names = {requirement.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower()
                 for requirement in declared[extra]}
        assert {dist for _, dist in packages} == names, extra


def test_the_runtime_wheel_runs_both_artifacts_in_a_venv_without_torch(small_av_artifact, small_lm_artifact,
                                                                       small_artifacts_root, tmp_path):
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels,
          RUNTIME_PROJECT], timeout=600)
    (wheel,) = wheels.glob("lexiedge_runtime-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    app = tmp_path / "app.py"
    app.write_text(APP)
    clip = next((small_artifacts_root / "synth" / "Actor_06").glob("*.mp4"))
    arguments = [python, app, small_av_artifact, small_lm_artifact, clip]

    _run([python, "-m", "pip", "install", "-q", wheel], timeout=900)
    bare = json.loads(_run([*arguments, "bare"], timeout=300, cwd=tmp_path).stdout.splitlines()[-1])
    assert bare["absent"] == list(NEVER)
    assert bare["file"].startswith("refused: ") and "pip install 'lexiedge-runtime[media]'" in bare["file"]
    assert bare["tutor"].startswith("refused: ") and "pip install 'lexiedge-runtime[llm]'" in bare["tutor"]

    _run([python, "-m", "pip", "install", "-q", f"{wheel}[llm,media]"], timeout=900)
    full = json.loads(_run([*arguments, "full"], timeout=300, cwd=tmp_path).stdout.splitlines()[-1])
    installed = {p["name"].lower() for p in json.loads(_run([python, "-m", "pip", "list", "--format=json"]).stdout)}
    assert full["absent"] == list(NEVER) and not installed & set(NEVER)

    here_av, here_lm = load(small_av_artifact, "cpu"), load(small_lm_artifact, "cpu")
    tone = (0.3 * np.sin(np.linspace(0, 2000, 24000))).astype(np.float32)
    for got, expected in ((bare["arrays"], here_av.predict(waveform=tone).probabilities),
                          (full["file"], here_av.predict_file(clip).probabilities)):
        assert got.keys() == expected.keys()
        # the venv may resolve newer numpy/onnxruntime/PyAV builds than this one: equal up to float noise
        np.testing.assert_allclose([got[k] for k in expected], list(expected.values()), atol=1e-4)
    assert full["tutor"] == here_lm.generate(PROMPT, max_new_tokens=12).text
