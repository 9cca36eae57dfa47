"""An app embedding the runtime pays for onnxruntime, GenAI, numpy and tokenizers only: never torch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

HEAVY = ("torch", "transformers", "pydantic", "typer", "rich", "av", "cv2", "lexiedge.plugin", "lexiedge.api",
         "lexiedge.export", "lexiedge.profile")

APP = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import lexiedge.runtime as runtime

    classifier = runtime.load(sys.argv[1], "cpu")
    arrays = np.load(sys.argv[3])
    one = classifier.predict(arrays["waveform"], arrays["frames"])
    audio_only = classifier.predict(waveform=arrays["waveform"])
    try:
        classifier.predict(waveform=arrays["waveform"].astype(np.int16))
        refused = False
    except runtime.RuntimeInputError:
        refused = True
    chat = runtime.load(sys.argv[2], "cpu")
    text = chat.generate([{"role": "user", "content": "Correct: She go to school."}], max_new_tokens=8)
    streamed = "".join(chat.generate("Hello", max_new_tokens=4, stream=True))
    print(json.dumps({
        "label": one.label, "audio_only": audio_only.label, "refused": refused, "tokens": len(text.token_ids),
        "streamed": streamed, "labels": classifier.labels,
        "loaded": sorted(m for m in sys.modules if m.split(".")[0] in {h.split(".")[0] for h in sys.argv[4:]}),
    }))
    """
)


def test_an_app_runs_both_artifact_kinds_without_torch_or_transformers(av_artifacts, lm_artifacts, test_clips, tmp_path):
    clip = test_clips[0]
    arrays = tmp_path / "clip.npz"
    np.savez(arrays, waveform=clip.arrays["waveform"], frames=clip.arrays["frames"])
    script = tmp_path / "app.py"
    script.write_text(APP)
    result = subprocess.run(
        [sys.executable, str(script), str(av_artifacts["onnx"]), str(lm_artifacts["onnx-int4"]), str(arrays), *HEAVY],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["label"] in report["labels"] and report["audio_only"] in report["labels"]
    assert report["refused"] and report["tokens"] > 0
    loaded = [name for name in report["loaded"] if any(name == h or name.startswith(h + ".") for h in HEAVY)]
    assert loaded == [], f"the runtime imported {loaded}"


def test_the_runtime_distribution_imports_nothing_of_the_toolkit():
    """lexiedge-runtime installs alone: its package imports only itself (and never the name lexiedge)."""
    import lexiedge_runtime

    package = Path(lexiedge_runtime.__file__).parent
    imported = set()
    for path in package.rglob("*.py"):
        for line in path.read_text().splitlines():
            words = line.strip().split()
            if len(words) >= 2 and words[0] in ("from", "import") and words[1].startswith("lexiedge"):
                imported.add(words[1].split(".")[0])
    assert imported == {"lexiedge_runtime"}


def test_the_toolkits_old_name_is_the_same_modules():
    """`lexiedge.runtime` (and each submodule it had) is the runtime distribution's module, not a copy."""
    import lexiedge.runtime.chat
    import lexiedge_runtime.chat
    from lexiedge.errors import LexiedgeError
    from lexiedge.runtime import ArtifactError, load

    assert lexiedge.runtime.chat is lexiedge_runtime.chat
    assert load is lexiedge_runtime.load and issubclass(ArtifactError, LexiedgeError)
