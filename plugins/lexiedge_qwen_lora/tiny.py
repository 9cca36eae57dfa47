"""A tiny random Qwen2 with a real tokenizer, built here (no network needed).

`build_tiny_qwen2` writes a directory exactly like a hub snapshot (config.json, safetensors
weights, tokenizer files, generation_config.json), so `from_pretrained(that_dir)` runs the code
path a user with `Qwen/Qwen2.5-0.5B-Instruct` runs. The tokenizer is a byte-level BPE trained with
`tokenizers` on the bundled tutor sample set (plus built-in tutor text), with Qwen's special
tokens appended after the learned vocabulary as in Qwen's own vocabulary, and Qwen2.5's template.

`tutor_base_dir` is the same tiny model briefly pretrained here (full weights, a few hundred steps)
on built-in tutor conversations: the stand-in for a pretrained checkpoint on machines without the
hub. A LoRA on a purely random base learns next to nothing and its logits stay near-flat, so its
answers are noise and quantized exports cannot be judged by greedy-token agreement; on this base
the adapter fine-tunes a model that already writes tutor-like English. Its pretraining text is
generated (``builtin_tutor_conversations``), never the bundled sample set, so the sample set's
validation split stays unseen.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from lexiedge_qwen_lora.architectures import QWEN2_TINY, Qwen2Dims, qwen2_config
from lexiedge_qwen_lora.chat_template import ENDOFTEXT, IM_END, IM_START, QWEN2_5_CHAT_TEMPLATE, SPECIAL_TOKENS

# Bump when the builder changes what it writes, so cached tiny bases are rebuilt.
BUILDER_VERSION = 1
DEFAULT_TOKENIZER_VOCAB = 2048
# Steps of the tutor base's pretraining: its loss falls from ~7.6 (uniform) to ~1 in ~15 s on 2 cores.
TUTOR_PRETRAIN_STEPS = 300

# Qwen2's pre-tokenizer split (contractions, letters, single digits, punctuation runs, newlines).
QWEN2_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def cache_root() -> Path:
    """Where built artifacts are cached: $LEXIEDGE_CACHE, else ~/.cache/lexiedge."""
    env = os.environ.get("LEXIEDGE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lexiedge"


# --- training text ----------------------------------------------------------------------------


def _strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings_in(item)


def _sample_set_records() -> Iterator[dict[str, Any]]:
    """The records of the bundled tutor set (:mod:`lexiedge.samples`): the same text whatever else is installed."""
    from lexiedge.samples import TUTOR_SAMPLE

    for line in TUTOR_SAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield json.loads(line)


def sample_set_texts() -> list[str]:
    """Every string in the bundled tutor sample set."""
    texts: list[str] = []
    for record in _sample_set_records():
        texts.extend(_strings_in(record))
    return texts


_SUBJECTS = ("I", "She", "He", "We", "They", "My brother", "The teacher", "Our class", "My friend", "You")
_VERBS = (("go", "went", "goes"), ("eat", "ate", "eats"), ("write", "wrote", "writes"),
          ("read", "read", "reads"), ("study", "studied", "studies"), ("buy", "bought", "buys"),
          ("see", "saw", "sees"), ("take", "took", "takes"), ("make", "made", "makes"))
_OBJECTS = ("to school", "an apple", "a long letter", "the newspaper", "English grammar", "new shoes",
            "a funny movie", "the early bus", "a birthday cake")
_TIMES = ("yesterday", "last week", "every morning", "on Sundays", "two days ago", "at night")


def builtin_tutor_texts() -> list[str]:
    """Deterministic English-tutor text: corrections, explanations and vocabulary notes."""
    texts = ["You are a patient English tutor. Correct the learner's grammar and explain briefly."]
    for i, subject in enumerate(_SUBJECTS):
        for j, (base, past, third) in enumerate(_VERBS):
            obj, when = _OBJECTS[(i + j) % len(_OBJECTS)], _TIMES[(i * 3 + j) % len(_TIMES)]
            wrong = f"{subject} {base} {obj} {when}." if "ago" in when or "last" in when or when == "yesterday" \
                else f"{subject} {past} {obj} {when}."
            texts.append(f"Please correct this sentence: {wrong}")
            verb = past if "ago" in when or "last" in when or when == "yesterday" else (
                third if subject in ("She", "He", "My brother", "The teacher", "Our class", "My friend") else base)
            texts.append(
                f"Corrected: {subject} {verb} {obj} {when}. We use '{verb}' here because of '{when}'. "
                f"Vocabulary: '{base}' (present), '{past}' (past), '{third}' (third person)."
            )
    texts.append("Numbers and symbols: 0 1 2 3 4 5 6 7 8 9, (a) [b] {c} 50% $3.20 - \"quoted\" 'single'.")
    return texts


def builtin_tutor_conversations() -> list[list[dict[str, str]]]:
    """Chat-format tutor exchanges generated from the built-in text (user asks, tutor corrects)."""
    texts = builtin_tutor_texts()
    system = {"role": "system", "content": texts[0]}
    pairs = zip(texts[1:-1:2], texts[2:-1:2])  # ("Please correct this sentence: ...", "Corrected: ...")
    return [
        [system, {"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        for question, answer in pairs
    ]


def sample_set_questions() -> list[list[dict[str, str]]]:
    """The bundled sample set's conversations without their assistant turns (the questions, never the answers)."""
    conversations = []
    for record in _sample_set_records():
        messages = record.get("messages")
        if messages:
            conversations.append([m for m in messages if m.get("role") != "assistant"])
    return conversations


def tutor_corpus() -> list[str]:
    """The tokenizer's training text: the bundled sample set and built-in tutor text."""
    return sample_set_texts() + builtin_tutor_texts()


# --- tokenizer --------------------------------------------------------------------------------


def train_tokenizer(texts: Iterable[str], *, vocab_size: int = DEFAULT_TOKENIZER_VOCAB, max_length: int = 4096):
    """A Qwen2-style byte-level BPE tokenizer with ChatML special tokens and Qwen2.5's template."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS),
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    # Added after training so they follow the learned vocabulary, in Qwen's order.
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        bos_token=None,
        unk_token=None,
        chat_template=QWEN2_5_CHAT_TEMPLATE,
        model_max_length=max_length,
        clean_up_tokenization_spaces=False,
        padding_side="right",
    )


# --- model ------------------------------------------------------------------------------------


def _atomic_directory(out_dir: Path, write) -> Path:
    """Call ``write(tmp_dir)`` and rename the result to ``out_dir``; never leaves half a directory."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        write(tmp)
        os.replace(tmp, out_dir)
    except OSError:
        if (out_dir / "config.json").exists():  # another process built it first: theirs is as good
            return out_dir
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def build_tiny_qwen2(
    out_dir: str | Path,
    *,
    seed: int = 0,
    tokenizer_vocab: int = DEFAULT_TOKENIZER_VOCAB,
    corpus: Iterable[str] | None = None,
    **dims: Any,
) -> Path:
    """Write a random Qwen2 (``QWEN2_TINY`` dims overridden by ``dims``) with its tokenizer to ``out_dir``.

    Deterministic in (seed, dims, corpus). ``dims`` take :class:`Qwen2Dims` field names
    (hidden_size=32, num_hidden_layers=1, ...); ``vocab_size=None`` means the tokenizer's size.
    """
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    from lexiedge.errors import UsageError

    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise UsageError(f"{out_dir} exists and is not empty; choose a new directory for the tiny model")
    arch: Qwen2Dims = replace(QWEN2_TINY, **dims)
    tokenizer = train_tokenizer(
        tutor_corpus() if corpus is None else corpus,
        vocab_size=tokenizer_vocab,
        max_length=arch.max_position_embeddings,
    )
    eot, im_end = tokenizer.convert_tokens_to_ids([ENDOFTEXT, IM_END])
    config = qwen2_config(arch, vocab_size=len(tokenizer), bos_id=eot, eos_id=im_end, pad_id=eot)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    # Qwen2.5-Instruct stops at <|im_end|> or <|endoftext|>; greedy so demos and tests are repeatable.
    model.generation_config = GenerationConfig(
        bos_token_id=eot, eos_token_id=[im_end, eot], pad_token_id=eot, do_sample=False
    )

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return _atomic_directory(out_dir, write)


def pretrain_causal_lm(
    model: Any, token_ids: list[int], *, steps: int, seq_len: int = 128, batch_size: int = 16,
    lr: float = 3e-3, seed: int = 0,
) -> list[float]:
    """Full-weight next-token training on windows of one token stream; returns the loss per step.

    Deterministic in ``seed`` (windows drawn from a seeded generator, the global RNG left alone).
    """
    import torch

    if len(token_ids) <= seq_len + 1:
        raise ValueError(f"pretraining text has {len(token_ids)} tokens; need more than seq_len={seq_len}")
    stream = torch.tensor(token_ids, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / steps)
    model.train()
    losses = []
    for _ in range(steps):
        starts = torch.randint(0, len(stream) - seq_len, (batch_size,), generator=generator)
        batch = torch.stack([stream[start : start + seq_len] for start in starts.tolist()])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()
    return losses


def build_tutor_qwen2(out_dir: str | Path, *, seed: int = 0, steps: int = TUTOR_PRETRAIN_STEPS) -> Path:
    """The tiny Qwen2 of :func:`build_tiny_qwen2`, pretrained ``steps`` steps on built-in tutor chats."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = Path(out_dir)

    def write(tmp: Path) -> None:
        random_dir = build_tiny_qwen2(tmp / "random", seed=seed)
        tokenizer = AutoTokenizer.from_pretrained(random_dir)
        model = AutoModelForCausalLM.from_pretrained(random_dir, dtype=torch.float32)
        ids: list[int] = []
        for conversation in builtin_tutor_conversations() + sample_set_questions():
            ids += tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            losses = pretrain_causal_lm(model, ids, steps=steps, seed=seed)
        model.save_pretrained(tmp / "model")
        tokenizer.save_pretrained(tmp / "model")
        (tmp / "model" / "pretraining.json").write_text(json.dumps({
            "text": "builtin_tutor_conversations() + sample_set_questions()", "tokens": len(ids), "steps": steps,
            "first_loss": losses[0], "last_loss": losses[-1],
        }, indent=2) + "\n")
        shutil.rmtree(random_dir)

    def write_model(tmp: Path) -> None:
        write(tmp)
        for path in (tmp / "model").iterdir():
            os.replace(path, tmp / path.name)
        (tmp / "model").rmdir()

    return _atomic_directory(out_dir, write_model)


def tiny_cache_key(seed: int = 0, **dims: Any) -> str:
    """A key that changes when anything the tiny base is built from changes (code, dims, text)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"v": BUILDER_VERSION, "seed": seed, "dims": dims}, sort_keys=True).encode())
    for text in tutor_corpus():
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def tiny_base_dir(seed: int = 0, **dims: Any) -> Path:
    """The cached tiny base (built once, atomically, under :func:`cache_root`)."""
    out_dir = cache_root() / "models" / f"qwen2-tiny-{tiny_cache_key(seed, **dims)}"
    if (out_dir / "config.json").exists():
        return out_dir
    return build_tiny_qwen2(out_dir, seed=seed, **dims)


def tutor_base_dir(seed: int = 0) -> Path:
    """The cached pretrained tiny base (``tiny:qwen2-tutor``), built once, atomically."""
    key = tiny_cache_key(seed, pretrain_steps=TUTOR_PRETRAIN_STEPS)
    out_dir = cache_root() / "models" / f"qwen2-tutor-{key}"
    if (out_dir / "config.json").exists():
        return out_dir
    return build_tutor_qwen2(out_dir, seed=seed)


__all__ = [
    "build_tutor_qwen2",
    "tutor_base_dir",
    "IM_START",
    "build_tiny_qwen2",
    "cache_root",
    "tiny_base_dir",
    "train_tokenizer",
    "tutor_corpus",
]
