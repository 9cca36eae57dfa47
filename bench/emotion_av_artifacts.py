"""emotion-av artifacts at a profile's sizes, with random weights, built by the real export stage.

Latency does not depend on the weights' values, so no training is needed: a run directory is made
from the profile (its resolved ``profile.yaml``, ``run.json`` and seeded random ``final`` weights), and
`lexiedge export` (in a child process: see :func:`export_in_child`) writes the onnx and onnx-int8
artifacts from it, with the profile's export options (rtx3050-4gb and t4-16gb: static int8 convs, graph
optimisation). The export still calibrates on and verifies against a small synthetic RAVDESS-layout
set; only the int8 top-1 threshold is lifted, since random logits are near-ties that any rounding
flips (the numbers are still recorded in the manifest).

Everything is cached under ``$LEXIEDGE_BENCH_DIR`` (default ``~/.cache/lexiedge/bench``), keyed by the
profile's model section, so the second run of a bench starts measuring at once.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from rich.console import Console

MODEL = "emotion-av"
PROFILES = ("rtx3050-4gb", "t4-16gb")
TARGETS = ("onnx", "onnx-int8")
# random weights: verification numbers are recorded, but int8 top-1 agreement on near-tied logits means nothing
OVERRIDES = (
    f"models.{MODEL}.export.options.onnx-int8.min_top1=0",
    f"models.{MODEL}.export.options.onnx-int8.min_decisive_share=0",
    f"models.{MODEL}.export.options.onnx-int8.max_uar_drop=1",
    f"models.{MODEL}.export.options.onnx-int8.max_val_clips=16",
    f"models.{MODEL}.export.options.onnx.max_val_clips=16",
)


def bench_dir() -> Path:
    return Path(os.environ.get("LEXIEDGE_BENCH_DIR", Path.home() / ".cache" / "lexiedge" / "bench"))


def synthetic_data(root: Path, seconds: float) -> Path:
    """A small RAVDESS-layout set of real mp4 clips (6 actors), for calibration and verification."""
    from lexiedge_ravdess.synth import SynthSpec, write_synthetic_set

    data = root / f"synth-av-{seconds:g}s"
    if not (data / ".complete").is_file():
        write_synthetic_set(data, SynthSpec(actors=6, clips_per_emotion=2, seconds=seconds))
        (data / ".complete").write_text("ok\n")
    return data


def _model_code_digest() -> bytes:
    """The emotion-av plugin's source: a cached run whose weights no longer fit the model code is not reused."""
    import lexiedge_emotion_av

    package = Path(lexiedge_emotion_av.__file__).parent
    digest = hashlib.sha256()
    for source in sorted(package.rglob("*.py")):
        digest.update(source.relative_to(package).as_posix().encode() + b"\0" + source.read_bytes())
    return digest.digest()


def random_run(profile_name: str, root: Path, data: Path) -> Path:
    """A run directory of the profile's emotion-av with seeded random weights (no training)."""
    import torch
    from safetensors.torch import save_file

    from lexiedge import atomic
    from lexiedge.training_runs import single_model_profile
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile
    from lexiedge.rundir import RUN_JSON, WEIGHTS, final_dir, profile_file

    profile = single_model_profile(load_profile(profile_name, host=get_host()), MODEL)
    entry = profile.model(MODEL)
    key = hashlib.sha256(profile.to_yaml().encode() + _model_code_digest()).hexdigest()[:12]
    run = root / f"run-{profile_name}-{key}"
    weights = final_dir(run) / WEIGHTS
    if weights.is_file():
        return run
    atomic.write_text(profile_file(run), f"# resolved from {profile.source}\n{profile.to_yaml()}")
    atomic.write_text(
        run / RUN_JSON,
        json.dumps(
            {
                "model_key": MODEL,
                "profile": profile.name,
                "data_path": str(data),
                "status": "random weights (bench)",
            }
        ),
    )
    torch.manual_seed(0)
    module = (
        get_host()
        .models.get(entry.model.plugin)
        .build(entry.model.settings, profile.device, pretrained=False)
        .module
    )
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file({name: tensor.contiguous() for name, tensor in module.state_dict().items()}, str(weights))
    return run


def artifacts(profile_name: str, console: Console | None = None) -> dict[str, Path]:
    """target -> artifact directory for the profile's emotion-av, exported once and cached."""
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile

    root = bench_dir() / MODEL
    clip_seconds = load_profile(profile_name, host=get_host()).model(MODEL).data.settings.clip_seconds
    run = random_run(profile_name, root, synthetic_data(root, clip_seconds))
    console = console or Console(quiet=True)
    built = {}
    for target in TARGETS:
        out = run.parent / f"{run.name}-{target}"
        if not _current(out):
            export_in_child(run, target, out, console)
        built[target] = out
    return built


def _current(artifact: Path) -> bool:
    """Exported, and by a lexiedge whose manifests record the decoding (predict_file and the server need it)."""
    try:
        manifest = json.loads((artifact / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return "media" in (manifest.get("preprocessing") or {})


def export_in_child(run: Path, target: str, out: Path, console: Console) -> None:
    """`lexiedge export` in a process of its own: the export's ONNX Runtime and torch thread pools (its
    verification sessions) must not live on in the process that measures latency next (they slowed
    every backend there by up to 1.5x)."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "lexiedge.cli", "export", "--run", str(run), "--target", target,
               "--out", str(out), "--force"]
    for override in OVERRIDES:
        command += ["--set", override]
    console.print(f"exporting {target}: {' '.join(command[2:])}")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"export of {run.name} to {target} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")

