"""Prefix reuse: a kept KV cache gives the fresh generator's greedy answer, and prefills only what is new.

Every comparison runs a real ONNX Runtime GenAI session on the artifacts the suite builds (the tiny
tutor Qwen2, fp32 and int4): one TextGenerator with reuse, one with ``prefix_reuse=False`` (a fresh
generator per call, the runtime's behaviour before reuse). Reuse is observed through the counters
(``Generation.reused_tokens``, ``TextGenerator.prefilled_tokens``), computed independently from the
token ids; nothing is timed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from lexiedge.runtime import Generation, RuntimeInputError, TextGenerator, load

SYSTEM = {"role": "system",
          "content": "You are a patient English tutor. Correct the learner's grammar and explain briefly."}
OTHER_SYSTEM = {"role": "system", "content": "You are a strict examiner. Answer in one word."}
USER_TURNS = (
    "Please correct this sentence: She go to school yesterday.",
    "And this one: He don't like apples.",
    "What does 'bought' mean?",
    "Please correct this sentence: We eats the cake every morning.",
)
NEW_TOKENS = 16
Messages = list[dict[str, str]]


@pytest.fixture(scope="module", params=["onnx", "onnx-int4"])
def pair(request, lm_artifacts: dict[str, Path]) -> tuple[TextGenerator, TextGenerator]:
    """(reusing, fresh) generators on the same artifact."""
    reusing = load(lm_artifacts[request.param], "cpu", threads=1)
    fresh = load(lm_artifacts[request.param], "cpu", threads=1, prefix_reuse=False)
    assert isinstance(reusing, TextGenerator) and isinstance(fresh, TextGenerator)
    assert reusing.prefix_reuse and not fresh.prefix_reuse
    return reusing, fresh


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    length = 0
    for x, y in zip(a, b):
        if x != y:
            break
        length += 1
    return length


def _cached_after(prompt: list[int], result: Generation) -> list[int]:
    """The ids a generation leaves in the cache: the last token GenAI produced never ran through the
    model (at EOS that token is the EOS, which ``token_ids`` leaves out; else the last kept token)."""
    generated = result.token_ids if result.finish_reason == "eos" else result.token_ids[:-1]
    return prompt + generated


def _expected_reuse(cached: list[int], prompt: list[int]) -> int:
    # the last prompt token always runs again: its logits give the first new token
    return min(_common_prefix(cached, prompt), len(prompt) - 1)


class Conversation:
    """Runs each call on both generators, checks they agree and that the reuse is the one predicted."""

    def __init__(self, reusing: TextGenerator, fresh: TextGenerator) -> None:
        self.reusing, self.fresh = reusing, fresh
        reusing.clear_cache()
        self.cached: list[int] = []

    def ask(self, messages: Messages | str, **options) -> Generation:
        prompt = self.reusing.tokenizer.prompt_ids(messages)
        before = self.reusing.prefilled_tokens
        got = self.reusing.generate(messages, max_new_tokens=NEW_TOKENS, **options)
        want = self.fresh.generate(messages, max_new_tokens=NEW_TOKENS, **options)
        assert got.token_ids == want.token_ids, f"reuse changed the answer to {messages!r}"
        assert (got.text, got.finish_reason) == (want.text, want.finish_reason)
        assert got.prompt_tokens == want.prompt_tokens == len(prompt)
        assert got.reused_tokens == _expected_reuse(self.cached, prompt)
        assert got.prefilled_tokens == len(prompt) - got.reused_tokens
        assert self.reusing.prefilled_tokens - before == got.prefilled_tokens, "the counter saw the same"
        assert want.reused_tokens == 0
        self.cached = _cached_after(prompt, got)
        return got


def _exchange(conversation: Conversation, system: dict[str, str], turns: Sequence[str]) -> Messages:
    messages: Messages = [system]
    for text in turns:
        messages.append({"role": "user", "content": text})
        answer = conversation.ask(messages)
        messages.append({"role": "assistant", "content": answer.text})
    return messages


def test_a_multi_turn_exchange_with_reuse_equals_fresh_generation_and_prefills_only_the_new_turn(pair):
    reusing, fresh = pair
    conversation = Conversation(reusing, fresh)
    before = (reusing.prefilled_tokens, reusing.reused_tokens, fresh.prefilled_tokens)
    messages = _exchange(conversation, SYSTEM, USER_TURNS)
    prefilled = reusing.prefilled_tokens - before[0]
    reused = reusing.reused_tokens - before[1]
    fresh_prefilled = fresh.prefilled_tokens - before[2]
    # each turn after the first found its history in the cache: far less prefilled than read
    assert prefilled + reused == fresh_prefilled, "both read the same prompts"
    last_prompt = len(reusing.tokenizer.prompt_ids(messages[:-1]))
    assert reused > last_prompt, "the history of every turn came from the cache"
    assert prefilled < fresh_prefilled / 2


def test_editing_an_earlier_message_reuses_only_what_comes_before_the_edit(pair):
    conversation = Conversation(*pair)
    messages = _exchange(conversation, SYSTEM, USER_TURNS[:3])
    edited = [dict(m) for m in messages[:-1]]
    edited[1]["content"] = "Please correct this sentence: She goes to school every day."
    result = conversation.ask(edited)  # asserts equality with fresh generation and the predicted reuse
    tokenizer = pair[0].tokenizer
    before_edit = len(tokenizer.encode(tokenizer.render(messages[:1], add_generation_prompt=False)))
    assert before_edit - 1 <= result.reused_tokens < len(tokenizer.prompt_ids(edited)) // 2
    # and the conversation goes on from the edited history
    _exchange(conversation, SYSTEM, ["Thank you. Is 'childs' a word?"])


def test_a_different_system_prompt_and_a_plain_string_prompt_share_little_and_still_agree(pair):
    conversation = Conversation(*pair)
    _exchange(conversation, SYSTEM, USER_TURNS[:2])
    switched = conversation.ask([OTHER_SYSTEM, {"role": "user", "content": USER_TURNS[0]}])
    assert switched.reused_tokens < 8, "only the template's opening tokens are shared"
    plain = conversation.ask("The student wrote a")
    assert plain.reused_tokens == 0, "no template: nothing in common with the kept chat"
    conversation.ask([OTHER_SYSTEM, {"role": "user", "content": USER_TURNS[0]}])


def test_a_stop_string_ends_a_turn_and_the_next_turn_still_agrees(pair):
    reusing, fresh = pair
    conversation = Conversation(reusing, fresh)
    messages: Messages = [SYSTEM, {"role": "user", "content": USER_TURNS[0]}]
    whole = fresh.generate(messages, max_new_tokens=NEW_TOKENS)
    assert len(whole.text) >= 6, f"the tiny tutor should say something: {whole.text!r}"
    stop = whole.text[len(whole.text) // 2:][:3]
    stopped = conversation.ask(messages, stop=stop)
    assert stopped.finish_reason == "stop" and len(stopped.token_ids) < len(whole.token_ids)
    messages += [{"role": "assistant", "content": stopped.text}, {"role": "user", "content": USER_TURNS[1]}]
    next_turn = conversation.ask(messages)
    assert next_turn.reused_tokens >= stopped.prompt_tokens, "the first turn came from the cache"


def test_a_stream_cancelled_mid_way_leaves_a_cache_the_next_turn_reuses_correctly(pair):
    reusing, fresh = pair
    conversation = Conversation(reusing, fresh)
    messages = _exchange(conversation, SYSTEM, USER_TURNS[:1])
    messages.append({"role": "user", "content": USER_TURNS[1]})
    stream = reusing.generate(messages, max_new_tokens=NEW_TOKENS, stream=True)
    first = next(stream)
    assert first, "a piece of text arrives before the stream is cancelled"
    stream.close()  # the app's user pressed stop
    # the cache holds the prompt and at most the tokens streamed so far: the same turn again reuses it
    again = reusing.generate(messages, max_new_tokens=NEW_TOKENS)
    prompt = reusing.tokenizer.prompt_ids(messages)
    assert again.reused_tokens == len(prompt) - 1
    assert again.token_ids == fresh.generate(messages, max_new_tokens=NEW_TOKENS).token_ids
    conversation.cached = _cached_after(prompt, again)
    messages += [{"role": "assistant", "content": again.text}, {"role": "user", "content": USER_TURNS[2]}]
    conversation.ask(messages)


def test_the_warm_prompt_is_prefilled_at_load_so_the_first_turn_pays_only_for_its_message(lm_artifacts):
    warmed = load(lm_artifacts["onnx"], "cpu", threads=1, warm_prompt=[SYSTEM])
    fresh = load(lm_artifacts["onnx"], "cpu", threads=1, prefix_reuse=False)
    system_ids = warmed.tokenizer.encode(warmed.tokenizer.render([SYSTEM], add_generation_prompt=False))
    assert (warmed.prefilled_tokens, warmed.reused_tokens) == (len(system_ids), 0)
    messages = [SYSTEM, {"role": "user", "content": USER_TURNS[0]}]
    prompt = warmed.tokenizer.prompt_ids(messages)
    assert prompt[: len(system_ids)] == system_ids, "the system turn renders as the prompt's first tokens"
    first = warmed.generate(messages, max_new_tokens=NEW_TOKENS)
    assert first.reused_tokens == len(system_ids)
    assert first.prefilled_tokens == len(prompt) - len(system_ids)
    assert first.token_ids == fresh.generate(messages, max_new_tokens=NEW_TOKENS).token_ids
    assert warmed.warm([SYSTEM]) == 0, "already cached: nothing to prefill"
    assert load(lm_artifacts["onnx"], "cpu", prefix_reuse=False, warm_prompt=[SYSTEM]).prefilled_tokens == 0


def test_a_leased_cache_is_never_shared_a_second_call_runs_on_its_own_generator(pair):
    reusing, fresh = pair
    reusing.clear_cache()
    messages: Messages = [SYSTEM, {"role": "user", "content": USER_TURNS[0]}]
    reusing.generate(messages, max_new_tokens=NEW_TOKENS)
    stream = reusing.generate(messages, max_new_tokens=NEW_TOKENS, stream=True)
    pieces = [next(stream)]  # the stream holds the cache while it is open
    inside = reusing.generate(messages, max_new_tokens=NEW_TOKENS)
    assert inside.reused_tokens == 0, "the second call prefilled on a generator of its own"
    expected = fresh.generate(messages, max_new_tokens=NEW_TOKENS)
    assert inside.token_ids == expected.token_ids
    pieces += list(stream)  # the first call was not disturbed
    assert "".join(pieces) == expected.text
    after = reusing.generate(messages, max_new_tokens=NEW_TOKENS)  # the lease ended with the stream
    assert after.reused_tokens == len(reusing.tokenizer.prompt_ids(messages)) - 1


def test_threads_on_one_model_each_get_the_fresh_answers(pair):
    reusing, fresh = pair
    chats = [[SYSTEM, {"role": "user", "content": text}] for text in USER_TURNS[:3]]
    expected = [[fresh.generate(chat, max_new_tokens=NEW_TOKENS).token_ids] * 3 for chat in chats]
    results: dict[int, list[list[int]]] = {}
    errors: list[BaseException] = []

    def talk(index: int) -> None:
        try:
            results[index] = [reusing.generate(chats[index], max_new_tokens=NEW_TOKENS).token_ids
                              for _ in range(3)]
        except BaseException as exc:  # reported below: an exception in a thread would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=talk, args=(i,)) for i in range(len(chats))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert [results[i] for i in range(len(chats))] == expected


def test_seeded_sampling_runs_uncached_and_leaves_the_kept_conversation_alone(pair):
    reusing, _ = pair
    reusing.clear_cache()
    messages: Messages = [SYSTEM, {"role": "user", "content": USER_TURNS[0]}]
    reusing.generate(messages, max_new_tokens=NEW_TOKENS)
    first = reusing.generate(messages, max_new_tokens=NEW_TOKENS, temperature=0.9, seed=5)
    again = reusing.generate(messages, max_new_tokens=NEW_TOKENS, temperature=0.9, seed=5)
    assert first.token_ids == again.token_ids and (first.reused_tokens, again.reused_tokens) == (0, 0)
    greedy = reusing.generate(messages, max_new_tokens=NEW_TOKENS)
    assert greedy.reused_tokens == len(reusing.tokenizer.prompt_ids(messages)) - 1


def test_a_call_that_does_not_fit_the_cache_runs_uncached_with_the_same_answer(lm_artifacts):
    fresh = load(lm_artifacts["onnx"], "cpu", threads=1, prefix_reuse=False)
    messages: Messages = [SYSTEM, {"role": "user", "content": USER_TURNS[0]}]
    prompt = fresh.tokenizer.prompt_ids(messages)
    small = load(lm_artifacts["onnx"], "cpu", threads=1, cache_tokens=len(prompt) + 4)
    assert small.cache_tokens == len(prompt) + 4
    for _ in range(2):  # prompt + 16 new tokens do not fit: each call on its own generator
        result = small.generate(messages, max_new_tokens=NEW_TOKENS)
        assert result.reused_tokens == 0
        assert result.token_ids == fresh.generate(messages, max_new_tokens=NEW_TOKENS).token_ids
    assert small.generate(messages, max_new_tokens=4).reused_tokens == 0  # fits: kept for the next call
    assert small.generate(messages, max_new_tokens=4).reused_tokens == len(prompt) - 1


def test_generate_ids_yields_the_token_ids_of_generate(pair):
    reusing, fresh = pair
    messages: Messages = [SYSTEM, {"role": "user", "content": USER_TURNS[1]}]
    prompt = reusing.tokenizer.prompt_ids(messages)
    ids = list(reusing.generate_ids(prompt, max_new_tokens=NEW_TOKENS))
    assert ids == fresh.generate(messages, max_new_tokens=NEW_TOKENS).token_ids
    assert list(fresh.generate_ids(prompt, max_new_tokens=NEW_TOKENS)) == ids


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"cache_tokens": 1}, "cache_tokens must be"),
        ({"cache_tokens": "many"}, "cache_tokens must be"),
        ({"cache_tokens": 10**9}, "exceeds this model's context"),
        ({"warm_prompt": []}, "empty"),
    ],
)
def test_bad_reuse_settings_are_refused_in_one_line(lm_artifacts, arguments, words):
    with pytest.raises(RuntimeInputError) as caught:
        load(lm_artifacts["onnx"], "cpu", **arguments)
    assert words in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(("ids", "words"), [([], "empty"), ([1, -2], "-2"), ([10**7], "token ids are"),
                                            ("hello", "sequence of token ids")])
def test_bad_prompt_ids_are_refused_and_the_model_still_works(pair, ids, words):
    reusing, _ = pair
    with pytest.raises(RuntimeInputError, match=words):
        reusing.generate_ids(ids)
    assert list(reusing.generate_ids([5, 6, 7], max_new_tokens=2))


def test_a_conversation_longer_than_the_context_is_refused_in_one_line(pair):
    reusing, _ = pair
    long_history = [SYSTEM] + [{"role": role, "content": "word " * 400}
                               for _ in range(6) for role in ("user", "assistant")] + [
        {"role": "user", "content": "and now?"}]
    with pytest.raises(RuntimeInputError) as caught:
        reusing.generate(long_history)
    message = str(caught.value)
    assert "context holds" in message and "oldest turns" in message and "\n" not in message
    assert reusing.generate(long_history[:1] + long_history[-1:], max_new_tokens=2).token_ids
