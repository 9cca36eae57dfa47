"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_runner import lexiedge_ok, lexiedge_ok_in_a_new_process

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("LEXIEDGE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Caches (features, tiny models) go to a per-session temp dir, never the user's home.

    One exception: the LiteRT converter's venv (tests/export/test_litert_export.py) stays where the user's own
    first `lexiedge export --target litert` builds it (``<cache>/venvs``, keyed by litert-torch's and torch's
    versions), since building it takes minutes and ~2 GB; ``$LEXIEDGE_VENVS`` puts it elsewhere."""
    if "LEXIEDGE_VENVS" not in os.environ:
        from lexiedge_litert.converter_env import venvs_dir

        os.environ["LEXIEDGE_VENVS"] = str(venvs_dir())  # before the cache moves to the temp dir
    if "LEXIEDGE_CACHE" not in os.environ:
        os.environ["LEXIEDGE_CACHE"] = str(tmp_path_factory.mktemp("lexiedge-cache"))


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (real RAVDESS and JFLEG files); tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (see ../shared/data/README.md)")
    return SHARED_DATA


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run `lexiedge ARGS...` in-process, as the console script does."""
    from lexiedge.cli import main

    def run(*args: str) -> CliResult:
        code = main(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


# --- small real artifacts, for tests that need ones that load and run (not ones that are good) ---------
# Built once per session, on first use, through the commands a user types: `lexiedge data synth-av`,
# `lexiedge train --profile cpu` for two optimizer steps, `lexiedge merge`, `lexiedge export` with its
# verification trimmed (the export tests own the thresholds). The cpu profile's emotion-av reads 1.5 s
# of audio and 4 face crops of 48x48, and caches 3 s around the centre (room for random crops).
SMALL_AV_TRAIN = ["--set", "models.emotion-av.train.max_steps=2"]
SMALL_AV_EXPORT = ["--set", "models.emotion-av.export.options.onnx.max_val_clips=4"]
SMALL_LM_TRAIN = ["--set", "models.qwen-lora.train.max_steps=2"]
SMALL_LM_EXPORT = [
    f"models.qwen-lora.export.options.onnx-int4.{option}"
    for option in ("prompts=1", "new_tokens=4", "min_token_agreement=0", "min_decisive_share=0", "benchmark_tokens=0")
]


@pytest.fixture(scope="session")
def small_artifacts_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("small-artifacts")


@pytest.fixture(scope="session")
def small_av_run(small_artifacts_root: Path) -> Path:
    """An emotion-av run of the cpu profile trained for 2 steps on 6 synthetic actors (real mp4 files)."""
    data, run = small_artifacts_root / "synth", small_artifacts_root / "run-av"
    lexiedge_ok("data", "synth-av", "--out", data, "--actors", "6")
    lexiedge_ok("train", "--profile", "cpu", "--model", "emotion-av", "--data", data, "--out", run, *SMALL_AV_TRAIN)
    return run


@pytest.fixture(scope="session")
def small_av_artifact(small_artifacts_root: Path, small_av_run: Path) -> Path:
    """An emotion-av onnx artifact of the cpu profile (its manifest records preprocessing.media)."""
    artifact = small_artifacts_root / "emotion-av-onnx"
    lexiedge_ok("export", "--run", small_av_run, "--target", "onnx", "--out", artifact, *SMALL_AV_EXPORT)
    return artifact


@pytest.fixture(scope="session")
def small_lm_artifact(small_artifacts_root: Path) -> Path:
    """A qwen-lora onnx-int4 artifact (the tiny tutor Qwen2 of the cpu profile, LoRA merged)."""
    run, artifact = small_artifacts_root / "run-lm", small_artifacts_root / "qwen-lora-onnx-int4"
    lexiedge_ok("train", "--profile", "cpu", "--model", "qwen-lora", "--out", run, *SMALL_LM_TRAIN)
    lexiedge_ok("merge", run)
    sets = [item for option in SMALL_LM_EXPORT for item in ("--set", option)]
    lexiedge_ok("export", "--run", run, "--target", "onnx-int4", "--out", artifact, *sets)
    return artifact


# A model normalised by its speaker (issue 28's enrollment): ResLSTM on MFCC + chroma, each actor's neutral
# and calm clips as enrollment, 1 s clips, three steps; exported to fp32 ONNX. The export tests add its int8
# twin (tests/export/test_enrollment_artifact.py); the runtime, server and runtime-js tests enroll speakers
# with it.
_M = "models.emotion-av"
ENROLLMENT_RECIPE = [
    f"{_M}.model.features=mfcc_chroma", f"{_M}.model.n_fft=1360", f"{_M}.model.hop_length=680",
    f"{_M}.model.audio.encoder=reslstm", f"{_M}.model.audio.dim=48", f"{_M}.model.fusion.layers=0",
    f"{_M}.model.fusion.pooling=attention", f"{_M}.model.feature_norm=speaker",
    f"{_M}.data.enrollment.clips=neutral", f"{_M}.data.clip_seconds=1.0", f"{_M}.train.max_steps=3",
    f"{_M}.export.options.onnx.max_val_clips=8", f"{_M}.export.options.onnx-int8.max_val_clips=8",
]


@dataclass(frozen=True)
class EnrollmentRun:
    data: Path  # `lexiedge data synth-av`: 6 actors, 2 clips per emotion (4 neutral and calm clips each)
    run: Path
    onnx: Path  # the fp32 artifact


@pytest.fixture(scope="session")
def enrollment_run(small_artifacts_root: Path) -> EnrollmentRun:
    """A speaker-normalised emotion-av run and its fp32 ONNX artifact (see ENROLLMENT_RECIPE)."""
    root = small_artifacts_root / "enrollment"
    data, run, onnx = root / "synth", root / "run", root / "onnx"
    lexiedge_ok("data", "synth-av", "--out", data, "--actors", 6, "--clips-per-emotion", 2)
    sets = [item for value in ENROLLMENT_RECIPE for item in ("--set", value)]
    lexiedge_ok("train", "--profile", "cpu", "--model", "emotion-av", "--data", data, "--out", run, *sets)
    lexiedge_ok_in_a_new_process("export", "--run", run, "--target", "onnx", "--out", onnx)
    return EnrollmentRun(data, run, onnx)
