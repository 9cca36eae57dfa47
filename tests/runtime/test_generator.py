"""The text generator on real LLM artifacts: greedy equals PyTorch, streaming, stop strings, int4."""

from __future__ import annotations

from pathlib import Path

import pytest

from lexiedge.runtime import RuntimeInputError, TextGenerator, load

PROMPTS = (
    "Correct: She go to school.",
    "Give me three words that mean 'happy'.",
    "Is this correct: 'He don't like apples'?",
)
NEW_TOKENS = 24


@pytest.fixture(scope="module")
def generator(lm_artifacts: dict[str, Path]) -> TextGenerator:
    model = load(lm_artifacts["onnx"], "cpu", threads=2)
    assert isinstance(model, TextGenerator)
    return model


@pytest.fixture(scope="module")
def reference(lm_run: Path):
    """The merged PyTorch model and its tokenizer (transformers: the test's reference only)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    merged = lm_run / "merged"
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(merged)


def _messages(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _reference_greedy(reference, text: str, new_tokens: int) -> tuple[list[int], list[int]]:
    import torch

    model, tokenizer = reference
    prompt = tokenizer.apply_chat_template(_messages(text), tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, add_special_tokens=False).input_ids
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             max_new_tokens=new_tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    eos = set(model.generation_config.eos_token_id if isinstance(model.generation_config.eos_token_id, list)
              else [model.generation_config.eos_token_id])
    new = [int(t) for t in out[0, len(ids):]]
    return ids, [t for t in new if t not in eos][: len(new)]


def test_greedy_generation_of_the_fp32_artifact_equals_the_merged_pytorch_model(generator, reference):
    _, tokenizer = reference
    for text in PROMPTS:
        prompt_ids, expected = _reference_greedy(reference, text, NEW_TOKENS)
        assert generator.tokenizer.prompt_ids(_messages(text)) == prompt_ids, "chat template + tokenizer differ"
        result = generator.generate(_messages(text), max_new_tokens=NEW_TOKENS)
        assert result.prompt_tokens == len(prompt_ids)
        assert result.token_ids == expected, text
        assert result.text == tokenizer.decode(expected, skip_special_tokens=True)
        assert result.finish_reason == ("length" if len(expected) == NEW_TOKENS else "eos")
    assert any(generator.generate(_messages(t), max_new_tokens=NEW_TOKENS).text.strip() for t in PROMPTS)


def test_streaming_yields_the_non_streamed_text_piece_by_piece(generator):
    for text in PROMPTS:
        whole = generator.generate(_messages(text), max_new_tokens=NEW_TOKENS)
        pieces = list(generator.generate(_messages(text), max_new_tokens=NEW_TOKENS, stream=True))
        assert "".join(pieces) == whole.text
        assert len(pieces) > 1 or len(whole.token_ids) <= 1, "tokens must arrive as they are generated"


def test_a_stop_string_cuts_the_text_and_ends_generation(generator):
    whole = generator.generate(_messages(PROMPTS[0]), max_new_tokens=40)
    text = whole.text
    assert len(text) >= 8, f"the tiny tutor model should say something: {text!r}"
    # a stop string that first occurs in the middle of the greedy answer
    start = len(text) // 2
    stop = text[start: start + 3]
    cut = text.index(stop)
    stopped = generator.generate(_messages(PROMPTS[0]), max_new_tokens=40, stop=[stop, "never-generated-xyz"])
    assert stopped.text == text[:cut]
    assert stopped.finish_reason == "stop"
    assert len(stopped.token_ids) < len(whole.token_ids), "generation must end at the stop string"
    streamed = "".join(generator.generate(_messages(PROMPTS[0]), max_new_tokens=40, stop=stop, stream=True))
    assert streamed == text[:cut]
    unseen = generator.generate(_messages(PROMPTS[0]), max_new_tokens=40, stop="never-generated-xyz")
    assert unseen.text == text and unseen.finish_reason == whole.finish_reason


def test_a_plain_string_prompt_is_continued_without_the_chat_template(generator, reference):
    import torch

    model, tokenizer = reference
    text = "The student wrote a"
    ids = tokenizer(text, add_special_tokens=False).input_ids
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             max_new_tokens=8, do_sample=False, min_new_tokens=8, pad_token_id=tokenizer.eos_token_id)
    result = generator.generate(text, max_new_tokens=8)
    assert result.prompt_tokens == len(ids)
    assert result.token_ids == [int(t) for t in out[0, len(ids): len(ids) + len(result.token_ids)]]


def test_sampling_with_a_seed_is_reproducible(generator):
    first = generator.generate(_messages(PROMPTS[1]), max_new_tokens=16, temperature=0.9, top_p=0.95, seed=3)
    again = generator.generate(_messages(PROMPTS[1]), max_new_tokens=16, temperature=0.9, top_p=0.95, seed=3)
    assert first.token_ids == again.token_ids
    assert first.token_ids, "sampling produced no token"


def test_the_int4_artifact_generates_and_streams(lm_artifacts, generator):
    int4 = load(lm_artifacts["onnx-int4"], "cpu")
    assert int4.manifest["target"] == "onnx-int4"
    result = int4.generate(_messages(PROMPTS[0]), max_new_tokens=NEW_TOKENS)
    assert result.token_ids
    assert result.prompt_tokens == generator.generate(_messages(PROMPTS[0]), max_new_tokens=1).prompt_tokens
    assert "".join(int4.generate(_messages(PROMPTS[0]), max_new_tokens=NEW_TOKENS, stream=True)) == result.text


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"messages_or_prompt": ""}, "empty"),
        ({"messages_or_prompt": []}, "empty"),
        ({"messages_or_prompt": [{"role": "user"}]}, "message 0"),
        ({"messages_or_prompt": 42}, "prompt string or a list"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"temperature": -0.5}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"stop": [""]}, "stop strings must not be empty"),
        ({"stop": 5}, "stop must be"),
    ],
)
def test_bad_arguments_are_refused_and_the_model_still_works(generator, arguments, words):
    call = {"messages_or_prompt": _messages(PROMPTS[0]), **arguments}
    with pytest.raises(RuntimeInputError) as caught:
        generator.generate(**call)
    assert words in str(caught.value)
    assert generator.generate(_messages(PROMPTS[0]), max_new_tokens=2).token_ids


def test_a_prompt_longer_than_the_context_is_refused(generator):
    assert generator.context_length
    with pytest.raises(RuntimeInputError, match="context holds"):
        generator.generate("word " * (2 * generator.context_length))
