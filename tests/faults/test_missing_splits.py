"""Training data that holds nothing out for validation says so in one line before training.

Issue 31, item 13: RAVDESS with one actor trains every clip (no validation, no test split) and said
nothing; the run then has no best checkpoint, no test scores, and `lexiedge export` refuses it for
want of held-out clips to verify on. A warning, not a refusal: training on one speaker is a fair
thing to try (one's own recordings), but the user must know what the run will lack.
"""

from __future__ import annotations

import shutil

import fault_plugins
import pytest

WARNING = "warning: the data has no validation split and no test split (all {n} examples train): the last " \
          "weights are kept (no best checkpoint), nothing is scored on held-out data, and `lexiedge export` will " \
          "have no held-out examples to verify the artifact on; add data, or change the split settings of " \
          "models.{key}.data"


def _warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("warning: the data has")]


def test_data_without_a_validation_split_is_one_warning_line(tmp_path, cli):
    profile = fault_plugins.write_profile(tmp_path / "profile.yaml", max_steps=2)
    result = cli("train", "--profile", str(profile), "--out", str(tmp_path / "run"),
                 "--set", f"models.{fault_plugins.MODEL_KEY}.data.val=0")
    assert result.exit_code == 0, result.stderr
    assert _warnings(result.stdout + result.stderr) == [WARNING.format(n=48, key=fault_plugins.MODEL_KEY)]


def test_data_with_a_validation_split_says_nothing(tmp_path, cli):
    profile = fault_plugins.write_profile(tmp_path / "profile.yaml", max_steps=2)
    result = cli("train", "--profile", str(profile), "--out", str(tmp_path / "run"))
    assert result.exit_code == 0 and _warnings(result.stdout + result.stderr) == []


@pytest.mark.shared_data
def test_ravdess_with_one_actor_warns_before_training(shared_data, tmp_path, cli):
    """The reported case: the real Actor_01 folder (60 wav clips), the cpu profile, one optimizer step."""
    data = tmp_path / "one-actor"
    shutil.copytree(shared_data / "ravdess-speech" / "Actor_01", data / "Actor_01")
    result = cli("train", "--profile", "cpu", "--model", "emotion-av", "--data", str(data), "--out",
                 str(tmp_path / "run"), "--set", "models.emotion-av.train.max_steps=1")
    assert result.exit_code == 0, result.stderr
    output = result.stdout + result.stderr
    assert _warnings(output) == [WARNING.format(n=60, key="emotion-av")]
    assert output.index("warning: the data has") < output.index("training on cpu")  # before any step runs
