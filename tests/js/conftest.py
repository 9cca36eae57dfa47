"""The int8 twin of the suite's small emotion artifact (tests/conftest.py builds the run and the fp32 one)."""

from __future__ import annotations

from pathlib import Path

import pytest

# the 2-step model's logits are near-ties: int8 top-1 agreement with torch means nothing for it (the export
# tests own those thresholds); the numbers are still recorded in the manifest
SMALL_AV_INT8_EXPORT = [
    "--set", "models.emotion-av.export.options.onnx-int8.max_val_clips=4",
    "--set", "models.emotion-av.export.options.onnx-int8.min_top1=0",
    "--set", "models.emotion-av.export.options.onnx-int8.min_decisive_share=0",
    "--set", "models.emotion-av.export.options.onnx-int8.max_uar_drop=1",
]


@pytest.fixture(scope="session")
def small_av_int8_artifact(small_av_artifact: Path, small_artifacts_root: Path) -> Path:
    """`lexiedge export --target onnx-int8` of the run small_av_artifact was exported from."""
    from lexiedge.cli import main

    artifact = small_artifacts_root / "emotion-av-onnx-int8"
    if not (artifact / "manifest.json").is_file():
        args = ["export", "--run", str(small_artifacts_root / "run-av"), "--target", "onnx-int8", "--out", str(artifact),
                *SMALL_AV_INT8_EXPORT]
        assert main(args) == 0, f"lexiedge {' '.join(args)} failed"
    return artifact
