"""Tiny real artifacts for the `lexiedge bench` tests, built once per session with the commands a user types.

emotion-av: `lexiedge data synth-av` (real mp4 files) -> `lexiedge train --profile cpu` for two
optimizer steps -> `lexiedge export` onnx and onnx-int8. qwen-lora: `lexiedge train --profile cpu`
(the tiny tutor Qwen2) for two steps -> `lexiedge merge` -> `lexiedge export --target onnx-int4`.
The bench only needs artifacts that load and run, so training is as short as the engine allows and
verification is trimmed (its thresholds are the export tests' concern, not these).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runner import lexiedge_ok

AV_TRAIN = ["--set", "models.emotion-av.train.max_steps=2"]
AV_EXPORT = {
    "onnx": ["--set", "models.emotion-av.export.options.onnx.max_val_clips=4"],
    "onnx-int8": [
        "--set",
        "models.emotion-av.export.options.onnx-int8.max_val_clips=4",
        # two steps of training: near-tied logits, so the int8 noise is as large as the decisions
        *("--set", "models.emotion-av.export.options.onnx-int8.min_top1=0"),
        *("--set", "models.emotion-av.export.options.onnx-int8.min_decisive_share=0"),
        *("--set", "models.emotion-av.export.options.onnx-int8.max_uar_drop=1"),
    ],
}
LM_TRAIN = ["--set", "models.qwen-lora.train.max_steps=2"]
LM_EXPORT = [
    f"models.qwen-lora.export.options.onnx-int4.{option}"
    for option in ("prompts=1", "new_tokens=4", "min_token_agreement=0", "min_decisive_share=0", "benchmark_tokens=0")
]


@pytest.fixture(scope="session")
def bench_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench")


@pytest.fixture(scope="session")
def av_artifacts(bench_root: Path) -> dict[str, Path]:
    data, run = bench_root / "synth", bench_root / "run-av"
    lexiedge_ok("data", "synth-av", "--out", str(data), "--actors", "6")
    lexiedge_ok(
        "train",
        "--profile",
        "cpu",
        "--model",
        "emotion-av",
        "--data",
        str(data),
        "--out",
        str(run),
        *AV_TRAIN,
    )
    artifacts = {}
    for target, extra in AV_EXPORT.items():
        artifacts[target] = bench_root / f"emotion-av-{target}"
        lexiedge_ok("export", "--run", str(run), "--target", target, "--out", str(artifacts[target]), *extra)
    return artifacts


@pytest.fixture(scope="session")
def lm_artifact(bench_root: Path) -> Path:
    run, artifact = bench_root / "run-lm", bench_root / "qwen-lora-onnx-int4"
    lexiedge_ok("train", "--profile", "cpu", "--model", "qwen-lora", "--out", str(run), *LM_TRAIN)
    lexiedge_ok("merge", str(run))
    sets = [item for option in LM_EXPORT for item in ("--set", option)]
    lexiedge_ok("export", "--run", str(run), "--target", "onnx-int4", "--out", str(artifact), *sets)
    return artifact
