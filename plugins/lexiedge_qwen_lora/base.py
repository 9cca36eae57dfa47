"""Finding, loading and recording the base model a LoRA adapter trains on.

A base is a hub name, a local directory, `random:<architecture>`, or `tiny:qwen2-tutor` (the tiny
Qwen2 pretrained here, see :func:`lexiedge_qwen_lora.tiny.tutor_base_dir`). Training records how to
get the same base again (`base.json` in the run directory) so `lexiedge merge` can rebuild it: local
and hub bases by reference, the tiny bases by a copy (a few MB), the random 0.5B by its seed plus a
fingerprint that the rebuild must match (never a multi-GB copy).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lexiedge import atomic
from lexiedge.errors import LexiedgeError, NotAvailableError, UsageError
from lexiedge_qwen_lora.architectures import (
    HUB_ARCHITECTURES,
    RANDOM_PREFIX,
    qwen2_config,
    random_architecture,
)
from lexiedge_qwen_lora.chat_template import ENDOFTEXT, IM_END
from lexiedge_qwen_lora.settings import QwenLoraSettings
from lexiedge_qwen_lora.tiny import tiny_base_dir, tutor_base_dir

if TYPE_CHECKING:
    import torch

    from lexiedge.profile import DeviceSpec

BASE_RECORD = "base.json"
BASE_SNAPSHOT = "base"
RANDOM_BASE_SEED = 0
TINY = "random:qwen2-tiny"
TUTOR = "tiny:qwen2-tutor"
# Bases built on this machine (no download), by name: what `base: tiny:<name>` can be. Each with its random
# twin: same config and tokenizer, no pretraining, what sizes (`lexiedge plan`) and token counts need.
BUILT_BASES = {TUTOR: (tutor_base_dir, tiny_base_dir)}

_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


@dataclass(frozen=True)
class BaseSource:
    """Where a base comes from. ``path`` is a local directory (for random bases: the tokenizer's)."""

    kind: Literal["random", "built", "local", "hub"]
    name: str
    path: Path | None = None
    revision: str | None = None

    @property
    def location(self) -> str:
        """What to call `from_pretrained` with (a directory or a hub name)."""
        return str(self.path) if self.kind in ("local", "built") else self.name


def resolve_base(settings: QwenLoraSettings, *, weights: bool = True) -> BaseSource:
    """Classify ``settings.base``; a path-like base that does not exist is an error, not a hub name.

    ``weights=False``: the caller reads the architecture and tokenizer only, so a built base resolves to
    its random twin (a second to build) instead of being pretrained (a minute on 2 cores, first use).
    """
    base = settings.base
    if base.startswith("tiny:"):
        if base not in BUILT_BASES:
            raise UsageError(f"unknown built base {base!r}; known: {', '.join(BUILT_BASES)}")
        pretrained_dir, random_twin_dir = BUILT_BASES[base]
        return BaseSource("built", base, path=(pretrained_dir if weights else random_twin_dir)(RANDOM_BASE_SEED))
    if base.startswith(RANDOM_PREFIX):
        random_architecture(base)  # unknown names fail here, listing the known ones
        return BaseSource("random", base, path=tiny_base_dir(RANDOM_BASE_SEED))
    path = Path(base).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UsageError(f"base directory {path} has no config.json; expected a saved transformers model")
        return BaseSource("local", base, path=path.resolve())
    if base.startswith((".", "/", "~")) or base.count("/") != 1:
        raise UsageError(
            f"base {base!r} is neither an existing directory nor a hub name like Qwen/Qwen2.5-0.5B-Instruct "
            f"nor {TINY} or {TUTOR}"
        )
    return BaseSource("hub", base, revision=None if settings.revision is None else settings.revision)


def resolve_dtype(setting: str, device: DeviceSpec) -> torch.dtype:
    """The base weights' dtype: auto follows the device's precision on CUDA and is fp32 on CPU."""
    import torch

    if setting == "auto":
        setting = device.precision if device.kind == "cuda" else "fp32"
    return getattr(torch, _DTYPES[setting])


def load_tokenizer(source: BaseSource, *, pretrained: bool = True):
    """The base's tokenizer; random bases (and hub bases planned offline) use the tiny one."""
    from transformers import AutoTokenizer

    if source.kind == "hub":
        if not pretrained:
            try:  # planning: the cached tokenizer if there is one, never the network
                return AutoTokenizer.from_pretrained(source.name, revision=source.revision, local_files_only=True)
            except OSError:
                # Planning offline: token ids only need to be valid, sizes come from the model config.
                return AutoTokenizer.from_pretrained(tiny_base_dir(RANDOM_BASE_SEED))
        return from_hub(
            source,
            lambda local: AutoTokenizer.from_pretrained(
                source.name, revision=source.revision, local_files_only=local
            ),
            "tokenizer",
        )
    return AutoTokenizer.from_pretrained(source.path)


WAYS_OUT = (
    "or set the model's base to a local model directory (--set models.<model>.model.base=DIR), "
    f"or to {TINY} / {TUTOR} (built here, for planning and tests)"
)


def from_hub(source: BaseSource, load, part: str = "weights"):
    """``load(local_files_only)`` of a hub base: the cache first, one short probe, else one line (lexiedge.hub)."""
    from lexiedge.hub import load_from_hub

    try:
        return load_from_hub(
            load, source.name, revision=source.revision,
            what=f"base {source.name!r} ({part})", ways_out=WAYS_OUT,
        )
    except OSError as error:  # the hub answered but would not serve it (missing, gated, bad revision)
        raise _hub_error(source, error) from None


def _hub_error(source: BaseSource, error: Exception) -> LexiedgeError:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return NotAvailableError(
        f"cannot load base {source.name!r} from the Hugging Face hub or its cache ({first_line}); "
        f"set base to a local model directory or {TINY}"
    )


def _quantization_config(dtype: torch.dtype):
    import torch

    if not torch.cuda.is_available():
        raise NotAvailableError(
            "load_in_4bit (QLoRA) needs a CUDA GPU and this machine has none; set load_in_4bit: false"
        )
    try:
        from transformers import BitsAndBytesConfig
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise NotAvailableError(
            "load_in_4bit (QLoRA) needs bitsandbytes: pip install 'lexiedge[gpu]'"
        ) from None
    compute = dtype if dtype in (torch.float16, torch.bfloat16) else torch.bfloat16
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute
    )


def random_config(source: BaseSource, tokenizer) -> Any:
    """The config of a random base, or of a hub base planned without weights (known table first)."""
    from transformers import AutoConfig

    if source.kind == "random":
        dims = random_architecture(source.name)
    elif source.kind == "hub" and source.name in HUB_ARCHITECTURES:
        dims = HUB_ARCHITECTURES[source.name]
    else:
        if source.kind != "hub":
            return AutoConfig.from_pretrained(source.location)
        return from_hub(
            source,
            lambda local: AutoConfig.from_pretrained(source.name, revision=source.revision, local_files_only=local),
            "config",
        )
    eot, im_end = tokenizer.convert_tokens_to_ids([ENDOFTEXT, IM_END])
    return qwen2_config(dims, vocab_size=len(tokenizer), bos_id=eot, eos_id=im_end, pad_id=eot)


def base_layers(source: BaseSource) -> int:
    """The base's decoder layer count, from its config alone (the known tables first: no download)."""
    from transformers import AutoConfig

    if source.kind == "random":
        return random_architecture(source.name).num_hidden_layers
    if source.kind == "hub" and source.name in HUB_ARCHITECTURES:
        return HUB_ARCHITECTURES[source.name].num_hidden_layers
    if source.kind != "hub":
        return int(AutoConfig.from_pretrained(source.location).num_hidden_layers)
    config = from_hub(
        source,
        lambda local: AutoConfig.from_pretrained(source.name, revision=source.revision, local_files_only=local),
        "config",
    )
    return int(config.num_hidden_layers)


def with_layers(config: Any, layers: int) -> Any:
    """``config`` cut to its first ``layers`` decoder layers (the memory plan's reduced builds)."""
    config.num_hidden_layers = layers
    if getattr(config, "layer_types", None):  # per-layer attention kinds, one per layer
        config.layer_types = config.layer_types[:layers]
    return config


def load_base_model(
    source: BaseSource,
    settings: QwenLoraSettings,
    device: DeviceSpec,
    tokenizer,
    *,
    pretrained: bool = True,
    layers: int | None = None,
) -> torch.nn.Module:
    """The base causal LM in the settings' dtype and attention kernel, quantized for QLoRA.

    ``layers`` (random weights only) builds the base with that many decoder layers, for planning.
    """
    import torch
    from transformers import AutoModelForCausalLM

    if layers is not None and pretrained:
        raise ValueError("layers= builds random weights: pass pretrained=False")

    dtype = resolve_dtype(settings.dtype, device)
    quantization = _quantization_config(dtype) if settings.load_in_4bit else None
    common: dict[str, Any] = {"dtype": dtype, "attn_implementation": settings.attn_implementation}
    if quantization is not None:
        common.update(quantization_config=quantization, device_map={"": torch.cuda.current_device()})
    # The tiny base's saved weights are its seeded random init: loading them is the user's code path.
    if source.name == TINY and pretrained:
        return AutoModelForCausalLM.from_pretrained(source.path, **common)
    if source.kind != "random" and pretrained:
        if source.kind != "hub":
            return AutoModelForCausalLM.from_pretrained(source.location, **common)
        return from_hub(
            source,
            lambda local: AutoModelForCausalLM.from_pretrained(
                source.name, revision=source.revision, local_files_only=local, **common
            ),
        )
    config = random_config(source, tokenizer)
    if layers is not None:
        # Planning measures sizes, which do not depend on values: skip the random init (seconds for a
        # 136M-entry embedding) by building on the meta device and allocating uninitialised memory.
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(
                with_layers(config, layers), dtype=dtype, attn_implementation=settings.attn_implementation
            )
        model = model.to_empty(device="cpu")
        model.tie_weights()  # to_empty allocates each parameter anew: tie the output head back to the embedding
        return model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_BASE_SEED)
        model = AutoModelForCausalLM.from_config(
            config, dtype=dtype, attn_implementation=settings.attn_implementation
        )
    if quantization is None:
        return model
    # bitsandbytes quantizes while loading, so random weights go through a saved copy.
    with tempfile.TemporaryDirectory(prefix="lexiedge-qlora-") as tmp:
        model.save_pretrained(tmp)
        return AutoModelForCausalLM.from_pretrained(tmp, **common)


# --- recording the base in a run --------------------------------------------------------------


def weights_fingerprint(model: torch.nn.Module, elements: int = 4096) -> str:
    """A cheap hash of a model's weights (the first elements of every tensor, in name order)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().flatten()[:elements].float().cpu().numpy().tobytes())
    return digest.hexdigest()


def base_record(source: BaseSource, settings: QwenLoraSettings, base_model: torch.nn.Module) -> dict[str, Any]:
    """What `merge` needs to get this exact base back (JSON-able)."""
    record: dict[str, Any] = {"base": settings.base, "kind": source.kind, "revision": source.revision}
    if source.name == TINY or source.kind == "built":
        record["snapshot"] = BASE_SNAPSHOT
        record["snapshot_from"] = str(source.path)
    elif source.kind == "random":
        record.update(
            seed=RANDOM_BASE_SEED,
            dtype=str(next(base_model.parameters()).dtype).removeprefix("torch."),
            fingerprint=weights_fingerprint(base_model),
        )
    elif source.kind == "local":
        record["path"] = str(source.path)
    return record


def write_base_record(record: dict[str, Any], run_dir: Path) -> None:
    """Write ``base.json`` (and the tiny base's snapshot) into ``run_dir``, each atomically."""
    run_dir = Path(run_dir)
    snapshot_from = record.get("snapshot_from")
    if snapshot_from and not (run_dir / BASE_SNAPSHOT / "config.json").exists():
        tmp = run_dir / f".{BASE_SNAPSHOT}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(snapshot_from, tmp)
        os.replace(tmp, run_dir / BASE_SNAPSHOT)
    atomic.write_json(run_dir / BASE_RECORD, record)


def read_base_record(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / BASE_RECORD
    if not path.is_file():
        raise UsageError(f"{run_dir} has no {BASE_RECORD}; it was not trained by the causal-lm-lora trainer")
    return json.loads(path.read_text())


def load_recorded_base(run_dir: Path) -> torch.nn.Module:
    """The base a run trained on, as its ``base.json`` describes it, in the dtype it is stored in."""
    import torch
    from transformers import AutoModelForCausalLM

    record = read_base_record(run_dir)
    if record.get("snapshot"):
        return AutoModelForCausalLM.from_pretrained(Path(run_dir) / record["snapshot"], dtype="auto")
    if record["kind"] == "local":
        if not Path(record["path"]).is_dir():
            raise UsageError(f"the run's base directory {record['path']} no longer exists; restore it to merge")
        return AutoModelForCausalLM.from_pretrained(record["path"], dtype="auto")
    if record["kind"] == "hub":
        source = BaseSource("hub", record["base"], revision=record.get("revision"))
        return from_hub(
            source,
            lambda local: AutoModelForCausalLM.from_pretrained(
                source.name, revision=source.revision, dtype="auto", local_files_only=local
            ),
        )
    # Special-token ids in the config come from the tokenizer; the weights depend on the seed alone.
    source = BaseSource("random", record["base"], path=tiny_base_dir(RANDOM_BASE_SEED))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(record["seed"])
        model = AutoModelForCausalLM.from_config(
            random_config(source, load_tokenizer(source)), dtype=getattr(torch, record["dtype"])
        )
    if weights_fingerprint(model) != record["fingerprint"]:
        raise LexiedgeError(
            f"rebuilding {record['base']} with seed {record['seed']} gave other weights than training used "
            "(a different torch version?); merge needs the same base"
        )
    return model

