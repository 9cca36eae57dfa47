"""bench/bench_train_peers.py's torchtune runner trains with torchtune's own LoRA recipe on the same base,
examples and settings as the other runners, and is measured the same way.

torchtune 0.6.1 needs torchao <= 0.15, beside which peft refuses to inject LoRA, so it is never importable
in the project's environment (``pytest.importorskip`` would always skip): it lives in a folder of its own
(``--torchtune-dir``), and this test skips when that folder has not been filled (CI does not fill it).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import bench_train_peers as peers

STEPS = 4  # what --tiny runs

pytestmark = pytest.mark.skipif(
    peers.torchtune_missing(peers.TORCHTUNE_DIR) is not None,
    reason=str(peers.torchtune_missing(peers.TORCHTUNE_DIR)),
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("peers") / "peers.json"
    peers.main(["--tiny", "--modes", "torchtune,hf-flat", "--json", str(out)])
    return json.loads(out.read_text())


def test_torchtune_trains_the_same_examples_from_the_same_weights_as_hf(report: dict) -> None:
    torchtune, hf = report["runs"]["torchtune"][0], report["runs"]["hf-flat"][0]
    assert torchtune["steps"] == STEPS and len(torchtune["losses"]) == STEPS
    assert all(math.isfinite(loss) for loss in torchtune["losses"])
    # torchtune's PackedDataset holds exactly the train split's tokens (what lexiedge-packed packs)
    assert torchtune["packed_tokens"] == report["data"]["train_tokens"]
    # At seq_len 256 every tutor example fills a packed row of its own, and torchtune's sampler and HF's both
    # draw torch.randperm seeded 0, so each step sees the same examples: the same real tokens per step, and
    # the same first loss (same base weights, token ids, labels and loss; LoRA B starts at zero). lexiedge's
    # sampler orders the examples its own way, so its per-step tokens differ (its epoch holds the same).
    assert report["data"]["examples_per_packed_row"] == 1.0
    curves = report["loss_curves"]
    assert [seen for seen, _ in curves["torchtune"]] == [seen for seen, _ in curves["hf-flat"]]
    assert torchtune["real_tokens"] == hf["real_tokens"] > 0
    assert torchtune["losses"][0] == pytest.approx(hf["losses"][0], abs=1e-4)


def test_torchtune_reports_the_settings_it_trained_with_and_a_validation_loss(report: dict) -> None:
    from transformers import AutoModelForCausalLM

    torchtune = report["runs"]["torchtune"][0]
    # check_comparable passed inside main; these are the recipe's own values
    assert torchtune["comparable"] == report["comparable"]
    assert torchtune["optimizer"] == {"lr": 2e-3, "weight_decay": 0.01, "grad_clip": 1.0}
    assert report["modes"]["torchtune"]["steps"] == STEPS
    # the trained LoRA, merged into the HF base, moved the common evaluator's loss well below the base's
    settings = report["comparable"]
    c = peers.Comparable(**{**settings, "lora_targets": tuple(settings["lora_targets"])})
    source, tokenizer = peers.base_source_and_tokenizer(c)
    base = AutoModelForCausalLM.from_pretrained(source.location)
    base_val = peers.validation_loss(base, c, tokenizer)["loss"]
    val = torchtune["val"]["loss"]
    assert math.isfinite(val) and val < base_val - 0.1
    # as far as HF's run of the same steps on the same examples (their LoRA inits differ)
    assert val == pytest.approx(report["runs"]["hf-flat"][0]["val"]["loss"], abs=0.2)
