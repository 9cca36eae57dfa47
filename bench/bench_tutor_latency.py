"""Tutor latency: time to first token per turn of a 10-turn chat, with and without prefix reuse, vs llama.cpp.

    python bench/bench_tutor_latency.py --json tutor.json --chart docs/tutor_latency.png   # 0.5B shape
    python bench/bench_tutor_latency.py --tiny --json /tmp/tutor-tiny.json                 # smoke run
    python bench/bench_tutor_latency.py --llama-cpp-dir ~/src/llama.cpp ...                # + llama.cpp
    python bench/bench_tutor_latency.py --variant full-head:prune_lm_head=false ...       # + a variant
    python bench/bench_tutor_latency.py --executorch ...                                  # + executorch-int4

The model is Qwen2.5-0.5B-shaped with random weights (hidden 896, 24 layers, 14 heads, 2 KV heads,
vocab 151936; speed does not depend on the values) and the project's tutor tokenizer and Qwen2.5
chat template (`lexiedge_qwen_lora.tiny.build_tiny_qwen2`), built here without the network. The
lexiedge artifact is int4 from ONNX Runtime GenAI's model builder with the builder settings `lexiedge
export --target onnx-int4` runs with in the edge profiles (block 128, the other settings' defaults:
int8 activations, int4 LM head shared with the embeddings and pruned to the last position; see
``OnnxInt4Settings.builder_options``). ``--variant NAME:KEY=VALUE,...`` builds more int4 artifacts
with other settings (the onnx-int4 export settings that shape the graph: block_size, accuracy_level,
quantize_lm_head, prune_lm_head; or ``builder.OPTION`` for any GenAI builder extra option, passed as
given) and measures them on the fixed prompts beside the bench's own, alternating, so their ratios
come from one run. Random weights cannot pass the export's
verification against PyTorch, so the artifact's manifest records none and the bench loads it with
``allow_unverified=True``. llama.cpp (when ``llama_cpp``, i.e. llama-cpp-python, is importable and
``--llama-cpp-dir`` holds its ``convert_hf_to_gguf.py``) gets the same weights through llama.cpp's own
converter (f32) and quantiser (q4_0, q4_k_m). The converter refuses tokenizers whose pre-tokenizer
it does not know by hash; ours is Qwen2's split and byte-level BPE with another vocabulary, so the
bench names it "qwen2" (llama.cpp tokenizes nothing here: every backend gets the same token ids).

Measured in one process, after everything was built in a child process (a process that just exported
measures every backend slower), every backend loaded and warmed up first, 2 threads each, idle worker
threads sleeping rather than spinning in both (llama.cpp's OpenMP ``OMP_WAIT_POLICY=PASSIVE``, ONNX
Runtime's ``session.intra_op.allow_spinning=0`` in the artifact's genai_config.json): on a shared
machine a spinning worker that is preempted stalls the others, llama.cpp's by up to 10x:

* the conversation: a real tutor system prompt, 10 user turns of 20-60 tokens, replies capped at 48
  tokens, greedy. The history carries scripted tutor replies (the same prompts for every backend;
  random weights write no text to carry), so reuse can take each turn's prompt up to the previous
  turn's reply and must prefill that reply and the new message: less than a real chat reuses, where
  the model's own reply is in the cache too. Backends: lexiedge with prefix reuse (system prompt
  prefilled at load: ``warm_prompt``), lexiedge with ``prefix_reuse=False``, llama.cpp q4_0 with its
  own prefix reuse (llama-cpp-python keeps the previous request's cache, as llama.cpp's server does;
  the system prompt evaluated first, like ``warm_prompt``). Turn by turn the backends alternate
  (the order rotates), ``--rounds`` conversations each; per turn the best round counts.
* fixed prompts (the issue's table): fresh generations (no reuse) after a 64-, 256- and 1024-token
  prompt (the tutor conversation's history, repeated past 1024 tokens), time to first token, and
  decode tokens/s (per token after the first, 64 new tokens after the 64-token prompt). Every int4
  artifact (the bench's and each ``--variant``) and llama.cpp q4_0/q4_k_m take turns, round by round.

Time to first token is from the call to the first new token id (``TextGenerator.generate_ids``,
``Llama.generate``), so text decoding never hides a token. JSON (``--json``): per backend
``ttft_s_by_turn`` and ``decode_tok_s``, ``reuse_speedup_turn10`` (turn-10 time to first token
without reuse / with), ``fixed_prompts`` per backend, ``variants_over_main`` (each variant's fixed-prompt
numbers over the bench artifact's), the targets and the machine. Targets: turn 10 with reuse <= 0.3x
without and <= llama.cpp q4_0's; decode >= 1.5x llama.cpp q4_0; per int4 artifact, fresh-prompt time
to first token at 256 and 1024 tokens <= 0.7x llama.cpp q4_0's, its decode >= 1.5x.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# llama-cpp-python's wheel built from source uses OpenMP, whose idle workers spin. On a shared 2-core
# machine a spinning worker preempted mid-barrier stalls the other: measured here, q4_0 decode fell to
# 2-12 tok/s (first token after 64 tokens 0.5-8.6 s) with the default policy and held 24-33 tok/s with
# PASSIVE. Set before llama.cpp loads; a value given in the environment wins. ONNX Runtime's thread
# pool does not read it: the artifact turns its spinning off (sleep_when_idle), so both backends'
# workers sleep when idle.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
THREADS = 2
NEW_TOKENS = 48
BLOCK_SIZE = 128
FIXED_PROMPTS = (64, 256, 1024)
FIXED_NEW_TOKENS = 64
# the edge profiles' onnx-int4 options (profiles/rtx3050-4gb.yaml, t4-16gb.yaml); the other builder
# settings are OnnxInt4Settings' defaults. The tiny model's hidden size (64) takes block 32 at most.
ARTIFACT_OPTIONS: dict[str, Any] = {"block_size": BLOCK_SIZE}
TINY_ARTIFACT_OPTIONS: dict[str, Any] = {"block_size": 32}
QWEN2_5_0_5B = dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                    intermediate_size=4864, vocab_size=151936, max_position_embeddings=32768)
TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=128, vocab_size=None)
GGUF_TYPES = ("q4_0", "q4_k_m")
LEXIEDGE = "lexiedge-onnx-int4"
REUSE, NO_REUSE, LLAMA_Q4_0 = LEXIEDGE, f"{LEXIEDGE}-no-reuse", "llama.cpp-q4_0"
EXECUTORCH = "lexiedge-executorch-int4"  # --executorch: fixed prompts only, beside onnx-int4
EXECUTORCH_GROUP, EXECUTORCH_CONTEXT = 32, 2048  # the executorch-int4 target's defaults

SYSTEM_PROMPT = (
    "You are Lexi, a patient English tutor for adult learners. When the learner writes a sentence, "
    "correct its grammar, show the corrected sentence first, then explain each change in one short line. "
    "Keep a friendly tone, use simple words, and never answer in another language."
)
# (user turn, the tutor reply the history carries): users write 20-60 tokens, replies stay under 48
TURNS = (
    ("Hi Lexi! Please correct this sentence for me: She go to school yesterday with her brother.",
     "Corrected: She went to school yesterday with her brother. 'Yesterday' is in the past, so we use "
     "'went', the past form of 'go'. Everything else is right!"),
    ("And this one, it is from my homework: He don't like apples and he never eat them at breakfast, "
     "only bananas.",
     "Corrected: He doesn't like apples and he never eats them at breakfast. With 'he' we say 'doesn't' "
     "and add -s to the verb: 'eats'."),
    ("What is the difference between 'bought' and 'brought'? I always mix them up when I write emails "
     "to my colleagues at work.",
     "'Bought' is the past of 'buy': you pay for something. 'Brought' is the past of 'bring': you carry "
     "it somewhere. I bought bread and brought it."),
    ("Can you check the start of my email? 'Dear Tom, I am writing for ask you about the meeting of "
     "tomorrow and if we can move it.'",
     "Corrected: 'Dear Tom, I am writing to ask you about tomorrow's meeting and whether we can move it.' "
     "We say 'writing to ask'."),
    ("My teacher said this is wrong but I do not understand why: 'I have seen him yesterday in the park "
     "near my house.'",
     "Say: 'I saw him yesterday in the park near my house.' A finished time like 'yesterday' needs the "
     "past simple ('saw'), not the present perfect ('have seen')."),
    ("Please give me three words that mean 'happy', and one short example sentence for each of them, "
     "because I use 'happy' all the time.",
     "Glad: I am glad you came. Cheerful: She is always cheerful. Delighted: We were delighted with "
     "the news."),
    ("My friend says 'less people came to the party' is wrong and I should say something else. Who is "
     "right, me or my friend?",
     "Your friend is right: 'fewer people came to the party', because people can be counted. Use 'less' "
     "for things you cannot count, like less water or less time."),
    ("Correct please: 'If I will have time tomorrow, I will call you and we discuss about the plan for "
     "the trip.'",
     "Corrected: 'If I have time tomorrow, I will call you and we will discuss the plan for the trip.' "
     "No 'will' after 'if', and 'discuss' needs no 'about'."),
    ("How do I use 'since' and 'for' with the present perfect? Please give me a short rule and two "
     "examples that I can remember.",
     "Use 'for' with a length of time and 'since' with a starting point. I have lived here for two "
     "years. I have lived here since 2020."),
    ("Last one for today, thank you: 'The informations you gave me was very useful, thank you so much "
     "for you help and you patience.'",
     "Corrected: 'The information you gave me was very useful, thank you so much for your help and your "
     "patience.' 'Information' has no plural, and we say 'your'."),
)


# --- builder variants ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """An int4 artifact's builder settings: onnx-int4 export options and raw GenAI builder options."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)  # OnnxInt4Settings builder fields
    builder: dict[str, str] = field(default_factory=dict)  # GenAI builder --extra_options, as given

    def folder(self, size: str) -> str:
        """A folder name of every builder setting (defaults resolved), so a kept --workdir never measures a
        build of other settings."""
        from lexiedge_onnx.settings import OnnxInt4Settings

        resolved = OnnxInt4Settings.model_validate(self.options).builder_options()
        parts = [f"{key}={value}" for key, value in sorted({**resolved, **self.builder}.items())]
        return f"onnx-int4-{size}-" + "-".join(parts).replace("/", "_")


def parse_variant(text: str, base: dict[str, Any]) -> Variant:
    """``NAME:KEY=VALUE,...`` (KEY an onnx-int4 builder setting or builder.OPTION); one line if wrong."""
    from pydantic import ValidationError

    from lexiedge_onnx.settings import OnnxInt4Settings

    name, _, spec = text.partition(":")
    if not name or not spec:
        raise ValueError(f"--variant {text!r}: expected NAME:KEY=VALUE[,KEY=VALUE...]")
    options, builder = dict(base), {}
    for item in spec.split(","):
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise ValueError(f"--variant {text!r}: {item!r} is not KEY=VALUE")
        if key.startswith("builder."):
            builder[key.removeprefix("builder.")] = value
        elif key in OnnxInt4Settings.BUILDER_FIELDS:
            try:
                options[key] = json.loads(value)
            except json.JSONDecodeError:
                options[key] = value
        else:
            known = ", ".join(OnnxInt4Settings.BUILDER_FIELDS)
            raise ValueError(f"--variant {text!r}: unknown key {key!r} "
                             f"(expected one of {known}, or builder.OPTION)")
    try:
        OnnxInt4Settings.model_validate(options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"--variant {text!r}: {where}: {first['msg']}, got {first.get('input')!r}") from None
    return Variant(name, options, builder)


# --- building (in a child process) -----------------------------------------------------------------


@dataclass(frozen=True)
class Paths:
    hf: Path
    artifact: Path
    gguf: dict[str, Path]
    variants: dict[str, Path] = field(default_factory=dict)
    executorch: Path | None = None


def paths(work: Path, tiny: bool, main: Variant, variants: Sequence[Variant] = ()) -> Paths:
    size = "tiny" if tiny else "0.5b"
    return Paths(work / f"hf-{size}", work / main.folder(size),
                 {kind: work / f"{size}-{kind}.gguf" for kind in GGUF_TYPES},
                 {variant.name: work / variant.folder(size) for variant in variants},
                 work / f"executorch-int4-g{EXECUTORCH_GROUP}-{size}")


def build_all(work: Path, tiny: bool, llama_cpp_dir: Path | None, main: Variant,
              variants: list[Variant], executorch: bool = False) -> None:
    """The random model, its int4 artifacts, (with llama.cpp) its GGUF files and (with --executorch) its
    ExecuTorch program; each built once."""
    where = paths(work, tiny, main, variants)
    if not (where.hf / "config.json").exists():
        from lexiedge_qwen_lora.tiny import build_tiny_qwen2

        build_tiny_qwen2(where.hf, **(TINY if tiny else QWEN2_5_0_5B))
    for variant, out in [(main, where.artifact), *((v, where.variants[v.name]) for v in variants)]:
        if not (out / "manifest.json").exists():
            build_artifact(where.hf, out, work / "genai-cache", variant)
    if llama_cpp_dir is not None and not all(p.exists() for p in where.gguf.values()):
        build_gguf(where.hf, where.gguf, llama_cpp_dir)
    if executorch and where.executorch is not None and not (where.executorch / "manifest.json").exists():
        build_executorch_artifact(where.hf, where.executorch)


def build_artifact(hf_dir: Path, out: Path, cache: Path, variant: Variant) -> None:
    """The int4 GenAI model (what `lexiedge export --target onnx-int4` builds with ``variant.options``, plus
    any raw builder options) with a runtime manifest."""
    from lexiedge_onnx.genai import build_genai_model
    from lexiedge_onnx.settings import OnnxInt4Settings

    from lexiedge.export import (
        MANIFEST_FORMAT,
        MANIFEST_VERSION,
        file_table,
        library_versions,
        write_manifest,
    )

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    options = OnnxInt4Settings.model_validate(variant.options).builder_options()
    build_genai_model(hf_dir, tmp, precision="int4", cache_dir=cache, extra=variant.builder, **options)
    sleep_when_idle(tmp / "genai_config.json")
    config = json.loads((hf_dir / "generation_config.json").read_text())
    eos = config["eos_token_id"] if isinstance(config["eos_token_id"], list) else [config["eos_token_id"]]
    manifest = {
        "format": MANIFEST_FORMAT, "format_version": MANIFEST_VERSION, "model": "bench-qwen2.5-0.5b-shape",
        "task": "causal-lm", "target": "onnx-int4",
        "tokenizer": {"chat_template": "chat_template.jinja", "eos_token_ids": eos},
        "runtime": {"engine": "onnxruntime-genai", "config": "genai_config.json", "graph": "model.onnx"},
        "quantization": {"tool": "onnxruntime_genai.models.builder", "precision": "int4", **options,
                         "builder_options": variant.builder},
        "runtime_settings": {"session.intra_op.allow_spinning": "0"},
        "source": {"note": "random weights (bench/bench_tutor_latency.py): never verified against PyTorch"},
        "versions": library_versions(),
        "files": file_table(tmp),
    }
    write_manifest(tmp, manifest)
    os.replace(tmp, out)


def build_executorch_artifact(hf_dir: Path, out: Path) -> None:
    """The executorch-int4 program (what `lexiedge export --target executorch-int4` builds: ExecuTorch's
    LLM recipe, q8da4w, XNNPACK, KV cache in the program) of the same weights, with a runtime manifest."""
    from lexiedge_executorch.llm_lowering import export_q8da4w

    from lexiedge.export import (
        MANIFEST_FORMAT,
        MANIFEST_VERSION,
        file_table,
        library_versions,
        write_manifest,
    )

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    config = json.loads((hf_dir / "generation_config.json").read_text())
    eos = config["eos_token_id"] if isinstance(config["eos_token_id"], list) else [config["eos_token_id"]]
    recipe = export_q8da4w(hf_dir, tmp / "model.pte", max_context=EXECUTORCH_CONTEXT,
                           group_size=EXECUTORCH_GROUP, embedding_bits=8, bos_id=None, eos_ids=eos)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (hf_dir / name).exists():
            shutil.copyfile(hf_dir / name, tmp / name)
    manifest = {
        "format": MANIFEST_FORMAT, "format_version": MANIFEST_VERSION, "model": "bench-qwen2.5-0.5b-shape",
        "task": "causal-lm", "target": "executorch-int4",
        "tokenizer": {"chat_template": "chat_template.jinja", "eos_token_ids": eos},
        "runtime": {"engine": "executorch", "graph": "model.pte", "context_length": EXECUTORCH_CONTEXT},
        "quantization": {"scheme": "q8da4w", "group_size": recipe["group_size"],
                         "embedding": recipe["embedding_quantize"]},
        "source": {"note": "random weights (bench/bench_tutor_latency.py): never verified against PyTorch"},
        "versions": library_versions(),
        "files": file_table(tmp),
    }
    write_manifest(tmp, manifest)
    os.replace(tmp, out)


def sleep_when_idle(genai_config: Path) -> None:
    """ONNX Runtime's counterpart of OMP_WAIT_POLICY=PASSIVE (see the top): intra-op workers that sleep
    instead of spinning. Measured here under load: decode 17-24 tok/s spinning, 27-34 not. GenAI passes
    unknown decoder session options to ORT as config entries; an artifact may carry the setting."""
    config = json.loads(genai_config.read_text())
    options = config["model"]["decoder"].setdefault("session_options", {})
    options["session.intra_op.allow_spinning"] = "0"
    genai_config.write_text(json.dumps(config, indent=4) + "\n")


CONVERT_WITH_QWEN2_PRE_TOKENIZER = """
import runpy, sys
sys.path.insert(0, sys.argv[1])
from conversion import base
# our tokenizer is Qwen2's pre-tokenizer (split regex + byte level) with another vocabulary, whose
# hash the converter's table cannot know; the label only matters for llama.cpp's own tokenizing
base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "qwen2"
sys.argv = [sys.argv[1] + "/convert_hf_to_gguf.py", *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def build_gguf(hf_dir: Path, outputs: dict[str, Path], llama_cpp_dir: Path) -> None:
    """llama.cpp's converter (f32 GGUF), then llama.cpp's quantiser for each type."""
    import llama_cpp

    f32 = hf_dir.with_name(hf_dir.name + "-f32.gguf")
    if not f32.exists():
        command = [sys.executable, "-c", CONVERT_WITH_QWEN2_PRE_TOKENIZER, str(llama_cpp_dir), str(hf_dir),
                   "--outtype", "f32", "--outfile", str(f32)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            why = (result.stderr or result.stdout).strip()[-400:]
            raise SystemExit(f"convert_hf_to_gguf.py failed: {why}")
    types = {"q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0, "q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M}
    for kind, out in outputs.items():
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = types[kind]
        params.nthread = THREADS
        if llama_cpp.llama_model_quantize(str(f32).encode(), str(out).encode(), params) != 0:
            raise SystemExit(f"llama.cpp could not quantise {f32} to {kind}")
    f32.unlink()


# --- backends ------------------------------------------------------------------------------------------


@dataclass
class Turn:
    ttft_s: float
    decode_s: float  # from the first new token to the last
    new_tokens: int


class Backend:
    """Generates greedily from token ids; ``first`` (untimed) runs before each conversation."""

    name: str

    def run(self, prompt: Sequence[int], new_tokens: int) -> Turn:
        start = time.perf_counter()
        tokens = self.tokens(prompt, new_tokens)
        count, first = 0, 0.0
        for _ in tokens:
            count += 1
            if count == 1:
                first = time.perf_counter()
            if count == new_tokens:
                break
        end = time.perf_counter()
        tokens.close()  # ends the generation (and the runtime's cache lease) now, not at garbage collection
        return Turn(first - start, end - first, count)

    def tokens(self, prompt: Sequence[int], new_tokens: int) -> Generator[int, Any, None]:
        raise NotImplementedError

    def start_conversation(self, system_ids: list[int]) -> None:
        """Forget the previous conversation (and, for a reusing backend, prefill the system prompt)."""


class Lexiedge(Backend):
    def __init__(self, name: str, artifact: Path, *, reuse: bool, system: list[dict[str, str]] | None
                 ) -> None:
        from lexiedge.runtime import load

        self.name, self.system = name, system
        with warnings.catch_warnings():  # the bench's random-weight artifact is unverified by design
            warnings.simplefilter("ignore")
            self.model = load(artifact, "cpu", threads=THREADS, prefix_reuse=reuse, allow_unverified=True)

    def tokens(self, prompt: Sequence[int], new_tokens: int) -> Generator[int, Any, None]:
        return self.model.generate_ids(prompt, max_new_tokens=new_tokens)

    def start_conversation(self, system_ids: list[int]) -> None:
        self.model.clear_cache()
        if self.system is not None:
            self.model.warm(self.system)


class LlamaCpp(Backend):
    def __init__(self, name: str, gguf: Path, *, reuse: bool, context: int) -> None:
        from llama_cpp import Llama

        self.name, self.reuse = name, reuse
        self.model = Llama(str(gguf), n_ctx=context, n_threads=THREADS, n_threads_batch=THREADS,
                           verbose=False)

    def tokens(self, prompt: Sequence[int], new_tokens: int) -> Generator[int, Any, None]:
        if not self.reuse:
            self.model.reset()  # generate() would otherwise reuse the longest common prefix
        return self.model.generate(list(prompt), temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0)

    def start_conversation(self, system_ids: list[int]) -> None:
        self.model.reset()
        if self.reuse:
            self.model.eval(system_ids)


# --- the measurements ----------------------------------------------------------------------------------


@dataclass
class Conversation:
    system: list[dict[str, str]]
    prompts: list[list[int]]  # each turn's whole prompt (template applied)
    system_ids: list[int]


def conversation(tokenizer: Any) -> Conversation:
    """Ten turns of prompt ids: system + history (scripted replies) + the new user message."""
    system = [{"role": "system", "content": SYSTEM_PROMPT}]
    messages, prompts = list(system), []
    for user, reply in TURNS:
        messages.append({"role": "user", "content": user})
        prompts.append(tokenizer.prompt_ids(messages))
        messages.append({"role": "assistant", "content": reply})
    system_ids = tokenizer.encode(tokenizer.render(system, add_generation_prompt=False))
    return Conversation(system, prompts, system_ids)


def long_prompt(tokenizer: Any, length: int) -> list[int]:
    """``length`` ids of the tutor conversation's history (repeated as needed): the fixed prompts' source.
    Its first tokens are the turn-10 prompt's, so the 64- and 256-token prompts are the ones they were."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    while True:
        for user, reply in TURNS:
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
        ids = tokenizer.prompt_ids(messages)
        if len(ids) >= length:
            return ids[:length]


def pause() -> None:
    time.sleep(0.05)  # the previous backend's worker threads stop spinning first


@dataclass
class ConversationResult:
    ttft_s_by_turn: list[float]
    decode_tok_s: float
    rounds: list[list[float]] = field(default_factory=list)


def run_conversations(backends: list[Backend], talk: Conversation, rounds: int
                      ) -> dict[str, ConversationResult]:
    """``rounds`` conversations per backend, turn by turn alternating (rotating order); best per turn."""
    ttft: dict[str, list[list[float]]] = {b.name: [] for b in backends}
    decode: dict[str, list[float]] = {b.name: [] for b in backends}
    for round_index in range(rounds):
        for backend in backends:
            backend.start_conversation(talk.system_ids)
        per_round = {b.name: [] for b in backends}
        steps = {b.name: [0.0, 0] for b in backends}
        for turn, prompt in enumerate(talk.prompts):
            shift = (round_index + turn) % len(backends)
            for backend in backends[shift:] + backends[:shift]:
                pause()
                result = backend.run(prompt, NEW_TOKENS)
                per_round[backend.name].append(result.ttft_s)
                steps[backend.name][0] += result.decode_s
                steps[backend.name][1] += result.new_tokens - 1
        for name in per_round:
            ttft[name].append(per_round[name])
            decode[name].append(steps[name][1] / steps[name][0] if steps[name][0] else 0.0)
    return {name: ConversationResult([min(r[t] for r in ttft[name]) for t in range(len(talk.prompts))],
                                     max(decode[name]), ttft[name]) for name in ttft}


def run_fixed_prompts(backends: list[Backend], prompt_ids: list[int], rounds: int
                      ) -> dict[str, dict[str, float]]:
    """Fresh generations (no reuse): time to first token after each FIXED_PROMPTS length, decode tokens/s."""
    best: dict[str, dict[str, float]] = {b.name: {} for b in backends}
    for round_index in range(rounds):
        order = backends if round_index % 2 == 0 else list(reversed(backends))
        for backend in order:
            for length in FIXED_PROMPTS:
                backend.start_conversation([])
                pause()
                decoding = length == FIXED_PROMPTS[0]  # decode speed after the short prompt only
                result = backend.run(prompt_ids[:length], FIXED_NEW_TOKENS if decoding else 2)
                key = f"ttft_s_{length}"
                best[backend.name][key] = min(best[backend.name].get(key, float("inf")), result.ttft_s)
                if decoding:
                    rate = (result.new_tokens - 1) / result.decode_s
                    best[backend.name]["decode_tok_s"] = max(best[backend.name].get("decode_tok_s", 0.0),
                                                             rate)
    return best


def warm_up(backends: list[Backend], prompt: list[int]) -> None:
    for backend in backends:
        backend.start_conversation([])
        backend.run(prompt[:16], 4)  # allocations, thread pools, kernels


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                 platform.processor())
    return {"cpu": model, "logical_cpus": os.cpu_count(), "threads": THREADS, "platform": platform.platform(),
            "load_average_1m_at_end": os.getloadavg()[0],
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}


def versions() -> dict[str, str]:
    import importlib.metadata

    found = {"python": platform.python_version()}
    for package in ("onnxruntime", "onnxruntime-genai", "llama_cpp_python", "numpy", "tokenizers"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def llama_cpp_available() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


# --- report ----------------------------------------------------------------------------------------------


def fixed_prompt_targets(fixed: dict[str, dict[str, float]]) -> dict[str, dict[str, Any]]:
    """Per int4 artifact: fresh-prompt time to first token at 256 and 1024 tokens over llama.cpp q4_0's
    (<= 0.7), and its decode over llama.cpp q4_0's (>= 1.5)."""
    peer = fixed.get(LLAMA_Q4_0)
    if peer is None:
        return {}
    targets: dict[str, dict[str, Any]] = {}
    for name, numbers in fixed.items():
        if not name.startswith(LEXIEDGE):
            continue
        for length in FIXED_PROMPTS[1:]:
            key = f"ttft_s_{length}"
            targets[f"{name}: fresh_ttft_{length}_over_llama_cpp_q4_0"] = {
                "value": numbers[key] / peer[key], "target": "<= 0.7"}
        targets[f"{name}: fresh_decode_over_llama_cpp_q4_0"] = {
            "value": numbers["decode_tok_s"] / peer["decode_tok_s"], "target": ">= 1.5"}
    return targets


def variants_over_main(fixed: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Each variant's fixed-prompt numbers over the bench artifact's (time to first token: < 1 is faster)."""
    main = fixed[LEXIEDGE]
    return {name: {key: numbers[key] / main[key] for key in main}
            for name, numbers in fixed.items() if name.startswith(LEXIEDGE + "[")}


def summary(results: dict[str, ConversationResult], fixed: dict[str, dict[str, float]],
            talk: Conversation) -> dict[str, Any]:
    last = len(talk.prompts) - 1
    reuse, plain = results[REUSE].ttft_s_by_turn[last], results[NO_REUSE].ttft_s_by_turn[last]
    report: dict[str, Any] = {
        "reuse_speedup_turn10": plain / reuse,
        "targets": {"turn10_ttft_reuse_over_no_reuse": {"value": reuse / plain, "target": "<= 0.3"}},
    }
    if LLAMA_Q4_0 in results:
        peer = results[LLAMA_Q4_0]
        report["targets"]["turn10_ttft_reuse_over_llama_cpp_q4_0"] = {
            "value": reuse / peer.ttft_s_by_turn[last], "target": "<= 1"}
        report["targets"]["decode_over_llama_cpp_q4_0"] = {
            "value": results[REUSE].decode_tok_s / peer.decode_tok_s, "target": ">= 1.5"}
    report["targets"].update(fixed_prompt_targets(fixed))
    report["backends"] = {name: asdict(result) for name, result in results.items()}
    report["fixed_prompts"] = fixed
    report["variants_over_main"] = variants_over_main(fixed)
    report["conversation"] = {"turns": len(talk.prompts),
                              "prompt_tokens_by_turn": [len(p) for p in talk.prompts],
                              "system_prompt_tokens": len(talk.system_ids), "new_tokens": NEW_TOKENS}
    return report


def print_report(report: dict[str, Any]) -> None:
    prompt_tokens = report["conversation"]["prompt_tokens_by_turn"]
    print(f"time to first token per turn (s), best of {report['rounds']} conversations; "
          f"prompt tokens per turn: {prompt_tokens}")
    for name, result in report["backends"].items():
        turns = " ".join(f"{t:5.2f}" for t in result["ttft_s_by_turn"])
        print(f"  {name:30s} {turns}   decode {result['decode_tok_s']:5.1f} tok/s")
    print(f"fixed prompts (fresh, best of {report['rounds']}):")
    for name, numbers in report["fixed_prompts"].items():
        firsts = ", ".join(f"{length}: {numbers[f'ttft_s_{length}']:.2f} s" for length in FIXED_PROMPTS)
        print(f"  {name:30s} decode {numbers['decode_tok_s']:5.1f} tok/s   first token after {firsts}")
    for name, ratios in report["variants_over_main"].items():
        shown = ", ".join(f"{key} {value:.2f}x" for key, value in ratios.items())
        print(f"  {name} over {LEXIEDGE}: {shown}")
    print(f"reuse speedup at turn 10: {report['reuse_speedup_turn10']:.1f}x")
    for name, target in report["targets"].items():
        print(f"  {name}: {target['value']:.2f} (target {target['target']})")


def draw_chart(report: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {REUSE: "lexiedge int4, prefix reuse", NO_REUSE: "lexiedge int4, no reuse",
              LLAMA_Q4_0: "llama.cpp q4_0 (its prefix reuse)"}
    figure, axis = plt.subplots(figsize=(7.5, 4.2), dpi=110)
    tokens = report["conversation"]["prompt_tokens_by_turn"]
    turns = list(range(1, len(tokens) + 1))
    for name, result in report["backends"].items():
        axis.plot(turns, result["ttft_s_by_turn"], marker="o", label=labels.get(name, name))
    axis.set_xticks(turns, [f"{t}\n{n}" for t, n in zip(turns, tokens)])
    axis.set_xlabel("turn / prompt tokens")
    axis.set_ylabel("time to first token (s)")
    axis.set_title(f"10-turn tutor chat, {report['model']['shape']} shape, random weights, greedy, "
                   f"{THREADS} threads ({report['machine']['cpu']})", fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)


def measure(where: Paths, llama: bool, rounds: int, shape: str, main: Variant, variants: list[Variant],
            executorch: bool = False) -> dict[str, Any]:
    load_at_start = os.getloadavg()[0]  # other processes on the machine: the numbers' context
    backends: list[Backend] = []
    reuse = Lexiedge(REUSE, where.artifact, reuse=True, system=[{"role": "system", "content": SYSTEM_PROMPT}])
    talk = conversation(reuse.model.tokenizer)
    backends += [reuse, Lexiedge(NO_REUSE, where.artifact, reuse=False, system=None)]
    context = max(*(len(p) for p in talk.prompts), *FIXED_PROMPTS) + max(NEW_TOKENS, FIXED_NEW_TOKENS) + 64
    if llama:
        backends.append(LlamaCpp(LLAMA_Q4_0, where.gguf["q4_0"], reuse=True, context=context))
    fixed_prompt = long_prompt(reuse.model.tokenizer, max(FIXED_PROMPTS))
    fixed_backends: list[Backend] = [backends[1]]
    fixed_backends += [Lexiedge(f"{LEXIEDGE}[{variant.name}]", where.variants[variant.name], reuse=False,
                                system=None) for variant in variants]
    if llama:
        fixed_backends += [LlamaCpp(f"llama.cpp-{kind}", where.gguf[kind], reuse=False, context=context)
                           for kind in GGUF_TYPES]
    if executorch and where.executorch is not None:  # fresh generations, the numbers onnx-int4 gets
        fixed_backends.append(Lexiedge(EXECUTORCH, where.executorch, reuse=False, system=None))
    warm_up(backends + fixed_backends[1:], fixed_prompt)
    results = run_conversations(backends, talk, rounds)
    fixed = run_fixed_prompts(fixed_backends, fixed_prompt, rounds)
    fixed[LEXIEDGE] = fixed.pop(NO_REUSE)
    report = summary(results, fixed, talk)
    report.update(rounds=rounds, machine={**machine(), "load_average_1m_at_start": load_at_start},
                  versions=versions(),
                  model={"shape": shape, "weights": "random",
                         "onnx": {"GenAI builder int4": {**main.options, **main.builder},
                                  "variants": {v.name: {**v.options, **v.builder} for v in variants}},
                         "executorch": f"q8da4w group {EXECUTORCH_GROUP}, XNNPACK" if executorch else None,
                         "gguf": "convert_hf_to_gguf.py f32 -> llama_model_quantize" if llama else None})
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--chart", type=Path, help="draw time to first token per turn (PNG)")
    parser.add_argument("--rounds", type=int, default=3, help="conversations per backend (best turn counts)")
    parser.add_argument("--tiny", action="store_true", help="a tiny model, not the 0.5B shape (smoke run)")
    parser.add_argument("--workdir", type=Path, help="keep the model, artifact and GGUF files here")
    parser.add_argument("--llama-cpp-dir", type=Path, default=os.environ.get("LLAMA_CPP_DIR"),
                        help="llama.cpp sources (convert_hf_to_gguf.py) of the installed llama_cpp's version")
    parser.add_argument("--no-llama-cpp", action="store_true", help="leave llama.cpp out")
    parser.add_argument("--build-only", action="store_true", help="build the models into --workdir only")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE[,KEY=VALUE...]",
                        help="one more int4 artifact, built with these onnx-int4 builder settings "
                             "(block_size, accuracy_level, quantize_lm_head, prune_lm_head) or "
                             "builder.OPTION (a GenAI builder extra option), measured on the fixed "
                             "prompts beside the bench's own")
    parser.add_argument("--executorch", action="store_true",
                        help="add the executorch-int4 program of the same weights on the fixed prompts "
                             "(decode tok/s, time to first token)")
    args = parser.parse_args()
    base = TINY_ARTIFACT_OPTIONS if args.tiny else ARTIFACT_OPTIONS
    main_variant = Variant("main", dict(base))
    try:
        variants = [parse_variant(text, base) for text in args.variant]
    except ValueError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    if len({v.name for v in variants}) != len(variants):
        print("--variant: each variant needs a name of its own", file=sys.stderr)
        raise SystemExit(2)

    llama = not args.no_llama_cpp and llama_cpp_available()
    if llama and (args.llama_cpp_dir is None or not (args.llama_cpp_dir / "convert_hf_to_gguf.py").is_file()):
        print("llama_cpp is importable but --llama-cpp-dir (or $LLAMA_CPP_DIR) has no convert_hf_to_gguf.py: "
              "llama.cpp left out", file=sys.stderr)
        llama = False
    elif not llama and not args.no_llama_cpp:
        print("llama_cpp is not importable (pip install llama-cpp-python): llama.cpp left out",
              file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="lexiedge-tutor-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        child = multiprocessing.get_context("spawn").Process(
            target=build_all,
            args=(work, args.tiny, args.llama_cpp_dir if llama else None, main_variant, variants,
                  args.executorch))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"building the bench models failed (exit code {child.exitcode})")
        if args.build_only:
            return
        report = measure(paths(work, args.tiny, main_variant, variants), llama, args.rounds,
                         "tiny" if args.tiny else "Qwen2.5-0.5B", main_variant, variants, args.executorch)
    print_report(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.chart:
        draw_chart(report, args.chart)


if __name__ == "__main__":
    main()
