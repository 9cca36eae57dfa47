"""The onnx-int4 export's builder settings reach the exported graph and the manifest (issue 32, prefill).

The shipped default (``prune_lm_head: true``, ``accuracy_level: 4``) and an export with the LM head at
every position and fp32 activations, both of the same trained run, both verified against PyTorch with
the shipped thresholds; then each graph is run with ONNX Runtime on a fresh prompt. A misspelt setting
is one line and exit 2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_runner import lexiedge_ok
from export_helpers import chat_ids, ort_session, pytorch_lm, pytorch_lm_logits

pytestmark = pytest.mark.slow

_INT4 = "models.qwen-lora.export.options.onnx-int4"
PROMPT = "Correct this, please: They was very happy about the news yesterday."


@pytest.fixture(scope="module")
def full_head_fp32_activations(export_root: Path, lm_run: Path) -> Path:
    out = export_root / "artifacts" / "qwen-lora" / "onnx-int4-full-head-level1"
    lexiedge_ok("export", "--run", lm_run, "--target", "onnx-int4", "--out", out,
                "--set", f"{_INT4}.prune_lm_head=false", "--set", f"{_INT4}.accuracy_level=1")
    return out


def _graph_facts(artifact: Path) -> tuple[set[int], list[int | str]]:
    """MatMulNBits' accuracy levels and the logits output's dims, read from the exported graph."""
    import onnx

    graph = onnx.load(str(artifact / "model.onnx"), load_external_data=False).graph
    levels = {attribute.i for node in graph.node if node.op_type == "MatMulNBits"
              for attribute in node.attribute if attribute.name == "accuracy_level"}
    logits = next(output for output in graph.output if output.name == "logits")
    dims = [dim.dim_value or dim.dim_param for dim in logits.type.tensor_type.shape.dim]
    return levels, dims


def _fresh_prompt_logits(artifact: Path, ids: list[int], head_size: int) -> np.ndarray:
    session = ort_session(artifact / "model.onnx")
    past = {value.name: np.zeros((1, value.shape[1], 0, head_size), np.float32)
            for value in session.get_inputs() if value.name.startswith("past_key_values.")}
    feeds = {"input_ids": np.array([ids], np.int64), "attention_mask": np.ones((1, len(ids)), np.int64),
             **past}
    return session.run(["logits"], feeds)[0]


def test_the_builder_settings_reach_the_graph_and_both_exports_verify(lm_artifact, full_head_fp32_activations,
                                                                     lm_run: Path) -> None:
    default = lm_artifact("onnx-int4")
    levels, dims = _graph_facts(default.path)
    assert levels == {4} and dims[1] == 1, (levels, dims)  # int8 activations; logits of the last position
    levels, dims = _graph_facts(full_head_fp32_activations)
    assert levels == {1} and dims[1] != 1, (levels, dims)

    import json

    other = json.loads((full_head_fp32_activations / "manifest.json").read_text())
    for manifest, positions, level in ((default.manifest, "last", 4), (other, "all", 1)):
        section = manifest["quantization"]
        assert section["lm_head_positions"] == positions and section["accuracy_level"] == level
        assert manifest["settings"]["prune_lm_head"] is (positions == "last")
        assert manifest["verification"]["passed"] is True  # the shipped thresholds, nothing lowered
        assert manifest["verification"]["thresholds"]["min_token_agreement"] >= 0.8

    model, tokenizer = pytorch_lm(lm_run / "merged")
    ids = chat_ids(tokenizer, PROMPT)
    architecture = default.manifest["architecture"]
    head_size = architecture["hidden_size"] // architecture["num_attention_heads"]
    pruned = _fresh_prompt_logits(default.path, ids, head_size)
    full = _fresh_prompt_logits(full_head_fp32_activations, ids, head_size)
    vocab = architecture["vocab_size"]
    assert pruned.shape == (1, 1, vocab) and full.shape == (1, len(ids), vocab)
    reference = pytorch_lm_logits(model, np.array([ids]))[0]
    # the pruned head's one row is the last position's (each graph's own int4 rounding aside)
    for logits in (pruned[0, -1], full[0, -1]):
        assert np.corrcoef(logits, reference[-1])[0, 1] > 0.9  # 0.97 seen: int4 weights of a tiny model
        assert np.abs(logits - reference[-1]).max() < np.abs(logits - reference[0]).max()


def test_a_misspelt_int4_setting_is_one_line_and_exit_2(lm_run: Path, cli, tmp_path: Path) -> None:
    out = tmp_path / "never"
    result = cli("export", "--run", str(lm_run), "--target", "onnx-int4", "--out", str(out),
                 "--set", f"{_INT4}.prune_lm_heads=true")
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "prune_lm_heads" in lines[0] and "prune_lm_head" in lines[0], result.stderr
    assert not out.exists()
