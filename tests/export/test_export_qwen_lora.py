"""qwen-lora (merged) exported to every target (onnx, onnx-int8, onnx-int4, ort-mobile).

Verification ran batch 1 and 3 on prompts of several lengths; here the artifact is run again with
ONNX Runtime, step by step with its KV cache, on prompts it never saw (batch 2), and compared with the
merged PyTorch model: the fp32 graph must generate exactly PyTorch's greedy tokens.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from export_helpers import (
    LM_VARIANTS,
    KvSession,
    chat_ids,
    ops_in_ort_file,
    parse_operator_config,
    pytorch_greedy,
    pytorch_lm,
    pytorch_lm_logits,
)

pytestmark = pytest.mark.slow

NEW_PROMPTS = ("Correct this, please: They was very happy about the news yesterday.",
               "Fix my sentence: me and him goes to the park on sundays.")
NEW_TOKENS = 20
QUANTIZED = ("onnx-int8", "onnx-int4", "ort-mobile")  # ort-mobile converts the int4 graph by default


@pytest.fixture(scope="module")
def merged(lm_run: Path):
    """The merged PyTorch model, the reference of every LLM artifact."""
    model, _ = pytorch_lm(lm_run / "merged")
    return model


def _kv_session(artifact) -> KvSession:
    manifest = artifact.manifest
    architecture = manifest["architecture"]
    return KvSession(artifact.path / manifest["runtime"]["graph"],
                     architecture["hidden_size"] // architecture["num_attention_heads"])


def _artifact_tokenizer(artifact):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(artifact.path)  # the artifact's own tokenizer files


@pytest.mark.parametrize("variant", LM_VARIANTS)
def test_verification_passed_on_batches_1_and_3_and_several_prompt_lengths(lm_artifact, variant: str) -> None:
    from lexiedge.plugin import get_host

    manifest = lm_artifact(variant).manifest
    defaults = get_host().exporters.get_class(manifest["target"]).Settings().model_dump(mode="json")
    assert manifest["settings"] == defaults, "the shipped settings and thresholds, nothing lowered"
    report = manifest["verification"]
    assert report["passed"] is True and report["batch_sizes"] == [1, 3]
    lengths = report["prompt_lengths"]
    assert len(lengths) == report["prompts"] >= 4 and len(set(lengths)) == len(lengths)
    assert report["teacher_forced_steps"] >= report["prompts"] * 4
    generation, thresholds = report["generation"], report["thresholds"]
    decisive, near_ties = report["decisive"], report["near_ties"]
    assert generation["runtime"] == "onnxruntime-genai" and generation["of"] == report["prompts"]
    assert decisive["samples"] + near_ties["samples"] == report["teacher_forced_steps"]
    assert report["tie_margin"] == pytest.approx(2 * report["noise_logit_p99"]) or report["tie_margin"] == 1e-6
    assert decisive["share"] >= thresholds["min_decisive_share"] == 0.2
    # near-ties are a coin toss on any CPU: strict agreement is on the decisive steps, and a generation may
    # leave PyTorch's only at a near-tie
    if variant == "onnx":
        assert thresholds["atol"] == 1e-4 and thresholds["min_token_agreement"] == 1.0
        assert thresholds["identical_generation"] is True
        assert max(report["max_abs_diff"].values()) <= 1e-4
        assert decisive["agreement"] == 1.0 and generation["diverged_at_decisive_step"] == 0
    else:  # quantized: agreement reported, within the shipped threshold and [0, 1]; logits not exact
        assert thresholds["atol"] is None and 0.8 <= thresholds["min_token_agreement"] <= decisive["agreement"] <= 1.0
        assert 0 <= generation["identical"] <= generation["of"]
        assert 0 <= generation["position_agreement"] <= 1.0  # falls after the first differing token
        assert all(0 < diff < 20 for diff in report["max_abs_diff"].values()), report["max_abs_diff"]


def test_fp32_llm_generates_pytorchs_greedy_tokens_with_its_kv_cache(lm_artifact, merged) -> None:
    import onnxruntime_genai as og

    artifact = lm_artifact("onnx")
    manifest = artifact.manifest
    tokenizer = _artifact_tokenizer(artifact)
    eos = manifest["tokenizer"]["eos_token_ids"]
    session = _kv_session(artifact)
    genai = og.Model(str(artifact.path))
    for text in NEW_PROMPTS:
        prompt = chat_ids(tokenizer, text)
        assert len(prompt) not in manifest["verification"]["prompt_lengths"]
        expected = pytorch_greedy(merged, prompt, NEW_TOKENS, eos)
        assert len(expected) >= 4, "the model must say something before it stops"
        assert session.greedy(prompt, NEW_TOKENS, set(eos)) == expected, text

        params = og.GeneratorParams(genai)
        params.set_search_options(max_length=len(prompt) + NEW_TOKENS, do_sample=False)
        generator = og.Generator(genai, params)
        generator.append_tokens(np.array([prompt], dtype=np.int32))
        while not generator.is_done():
            generator.generate_next_token()
        assert list(generator.get_sequence(0)[len(prompt):]) == expected, f"onnxruntime-genai: {text}"


@pytest.mark.parametrize("variant", LM_VARIANTS)
def test_the_artifact_matches_pytorch_at_batch_2_and_a_new_prompt_length(lm_artifact, merged, variant: str) -> None:
    artifact = lm_artifact(variant)
    tokenizer = _artifact_tokenizer(artifact)
    prompts = [chat_ids(tokenizer, text) for text in NEW_PROMPTS]
    length = min(map(len, prompts))
    assert length not in artifact.manifest["verification"]["prompt_lengths"]
    rows = np.array([p[:length] for p in prompts], dtype=np.int64)
    for _ in range(8):  # PyTorch's greedy continuation of both rows, fed back to both models
        rows = np.concatenate([rows, pytorch_lm_logits(merged, rows)[:, -1:].argmax(-1)], axis=1)

    logits = _kv_session(artifact).teacher_forced(rows, length)
    reference = pytorch_lm_logits(merged, rows)[:, length - 1 : -1]
    assert logits.shape == reference.shape == (2, rows.shape[1] - length, artifact.manifest["architecture"]["vocab_size"])
    agreement = float((logits.argmax(-1) == reference.argmax(-1)).mean())
    if variant == "onnx":
        np.testing.assert_allclose(logits, reference, atol=1e-4, rtol=0)
        assert agreement == 1.0
    else:
        assert np.isfinite(logits).all() and agreement >= 0.75, f"{variant}: next-token agreement {agreement:.2f}"


def test_the_ort_llm_loads_and_its_operator_config_lists_the_ops_it_uses(lm_artifact, tmp_path: Path) -> None:
    import json

    from export_helpers import ort_session

    artifact = lm_artifact("ort-mobile")
    manifest = artifact.manifest
    ort_file = artifact.path / manifest["runtime"]["graph"]
    assert ort_file.suffix == ".ort" and manifest["model_files"] == [ort_file.name]
    genai_config = json.loads((artifact.path / "genai_config.json").read_text())
    assert genai_config["model"]["decoder"]["filename"] == ort_file.name, "ORT GenAI must load the .ort"
    ort_session(ort_file)  # an InferenceSession on the .ort itself

    listed = parse_operator_config(artifact.path / manifest["mobile"]["required_operators_config"])
    assert listed == ops_in_ort_file(ort_file, tmp_path)
    assert manifest["mobile"]["required_operators"] == {key: sorted(ops) for key, ops in listed.items()}
    assert {"GroupQueryAttention", "MatMulNBits"} <= set().union(*listed.values())


def test_an_answer_that_ends_where_pytorchs_ends_is_the_same_generation(lm_run: Path, lm_artifact) -> None:
    """PyTorch's generate keeps the EOS it stops at; ONNX Runtime GenAI's sequence ends before it. A model
    whose answer ends within the verified tokens (the cpu profile's tiny Qwen2 after a short LoRA run
    does) must still verify as identical, on the real GenAI runtime: a token PyTorch's greedy answer
    reaches after a few steps is made the EOS of both."""
    import json

    import onnxruntime_genai as og
    from lexiedge_onnx.genai import greedy_generate
    from transformers import AutoTokenizer

    from lexiedge.export.causal_lm import LmSource, prompt_ids
    from lexiedge.export.verify_lm import generation_report, reference_generation

    merged_dir = lm_run / "merged"
    source = LmSource(merged_dir, AutoTokenizer.from_pretrained(merged_dir))
    prompt = prompt_ids(source, 1)[0]
    greedy = reference_generation(source, prompt, 12)
    stop = next(token for index, token in enumerate(greedy) if index >= 2 and token not in greedy[:index])
    source.model.generation_config.eos_token_id = stop
    ended = reference_generation(source, prompt, 12)
    assert ended == greedy[: greedy.index(stop) + 1], "PyTorch's answer now ends with the new EOS, kept"

    config = og.Config(str(lm_artifact("onnx").path))
    config.overlay(json.dumps({"model": {"eos_token_id": [stop]}}))
    model = og.Model(config)
    assert greedy_generate(model, prompt, 12) == ended[:-1], "GenAI's ends before it"

    report = generation_report("onnxruntime-genai", source, [prompt], [ended], 12, 1e-6,
                               lambda ids, tokens: greedy_generate(model, ids, tokens))
    assert (report["identical"], report["diverged_at_decisive_step"], report["position_agreement"]) == (1, 0, 1.0)
