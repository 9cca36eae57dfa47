"""`lexiedge data stats` and `lexiedge data jfleg`: thin CLI wrappers over stats.py and jfleg.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lexiedge.errors import UsageError

DEFAULT_SEQ_LEN = 512  # the seeds' choice, used when neither --seq-len nor a profile gives one


def _local_tokenizer(directory: Path) -> Any:
    from transformers import AutoTokenizer

    if not directory.is_dir():
        raise UsageError(
            f"--tokenizer {directory}: not a directory (expected a saved tokenizer: tokenizer.json ...)"
        )
    try:
        return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"--tokenizer {directory}: cannot load a tokenizer from it ({exc})".splitlines()[0]
        ) from None


def _profile_choices(
    profile_name: str, model_key: str, *, need_tokenizer: bool, overrides: list[str] | None = None
) -> tuple[Any, int | None, Any]:
    """The tokenizer the profile's model builds (when needed), its seq_len, and the chat-jsonl settings."""
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile
    from lexiedge_chat_jsonl.settings import ChatJsonlSettings

    profile = load_profile(profile_name, overrides or [], host=get_host())
    entry = profile.model(model_key)
    tokenizer = None
    if need_tokenizer:
        # The model plugin alone knows where its tokenizer comes from (hub, local folder, built here).
        model_plugin = get_host().models.get(entry.model.plugin)
        tokenizer_of = getattr(model_plugin, "tokenizer", None)  # the tokenizer alone, when the plugin can
        if callable(tokenizer_of):
            tokenizer = tokenizer_of(entry.model.settings)
        else:
            tokenizer = model_plugin.build(entry.model.settings, profile.device, pretrained=True).tokenizer
    data_settings = entry.data.settings if isinstance(entry.data.settings, ChatJsonlSettings) else None
    return tokenizer, getattr(entry.model.settings, "seq_len", None), data_settings


def stats_command(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            "-d",
            help="a chat .jsonl file or a directory of them, a .json array, a .parquet file or a directory "
            "of them, or a datasets save_to_disk directory (default: the bundled tutor set)",
        ),
    ] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="the profile's model whose tokenizer and seq_len to use")
    ] = "qwen-lora",
    profile: Annotated[
        str | None,
        typer.Option("--profile", "-p", help="a profile: its model's tokenizer, seq_len and system prompt"),
    ] = None,
    seq_len: Annotated[
        int | None,
        typer.Option("--seq-len", min=1, help="the row length to check (default: the profile's)"),
    ] = None,
    tokenizer_dir: Annotated[
        Path | None,
        typer.Option("--tokenizer", help="a local tokenizer directory (offline; overrides the profile's)"),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="override a profile key: models.qwen-lora.model.base=DIR (repeatable)"),
    ] = None,
) -> None:
    """Token lengths of a chat dataset (count, mean, p50-p99, max) and what a seq_len would truncate."""
    from rich.markup import escape

    from lexiedge_chat_jsonl.dataset import SAMPLE_PATH
    from lexiedge_chat_jsonl.encoding import token_lengths
    from lexiedge_chat_jsonl.examples import (
        EXPECTED_SOURCES,
        describe_bad_lines,
        load_examples,
        require_examples,
    )
    from lexiedge_chat_jsonl.settings import ChatJsonlSettings
    from lexiedge_chat_jsonl.stats import length_stats, stats_tables

    # the data first: a typo in its path is the likeliest mistake, and checking it costs nothing
    if data is not None and not data.exists():
        raise UsageError(f"--data {data}: no such file or folder (expected {EXPECTED_SOURCES})")
    if set_ and profile is None:
        raise UsageError("--set overrides a profile's keys: pass --profile P with it")
    if tokenizer_dir is None and profile is None:
        raise UsageError(
            "lexiedge data stats needs a tokenizer: --tokenizer DIR (a local tokenizer directory) "
            f"or --profile P (the tokenizer of the profile's {model!r} model)"
        )
    from lexiedge.console import console

    tokenizer, profile_seq_len, data_settings = None, None, None
    if profile is not None:
        tokenizer, profile_seq_len, data_settings = _profile_choices(
            profile, model, need_tokenizer=tokenizer_dir is None, overrides=set_
        )
    if tokenizer_dir is not None:
        tokenizer = _local_tokenizer(tokenizer_dir)
    data_settings = data_settings or ChatJsonlSettings()
    seq_len = seq_len or profile_seq_len or DEFAULT_SEQ_LEN

    path = data or SAMPLE_PATH
    examples, bad = load_examples(path, data_settings.max_line_bytes)
    for line in describe_bad_lines(bad):
        console.print(line, style="yellow", markup=False, highlight=False)
    require_examples(path, examples, bad)
    lengths = token_lengths(tokenizer, examples, system_prompt=data_settings.system_prompt)
    stats = length_stats(lengths, seq_len)
    for table in stats_tables(stats, title=f"token lengths of {escape(path.name)} (chat template applied)"):
        console.print(table)
    console.print(
        f"seq_len {seq_len} truncates {stats['truncated']} of {stats['count']} examples "
        f"({stats['truncated_share']:.1%}); it covers {1 - stats['truncated_share']:.1%}",
        markup=False,
        highlight=False,
    )


def jfleg_command(
    src: Annotated[Path, typer.Option("--src", help="the JFLEG folder (dev.src, dev.ref0..ref3, test.*)")],
    split: Annotated[str, typer.Option("--split", help="dev or test")],
    out: Annotated[Path, typer.Option("--out", "-o", help="the chat .jsonl file to write")],
    force: Annotated[bool, typer.Option("--force", help="overwrite OUT if it exists")] = False,
) -> None:
    """Convert JFLEG (CC BY-NC-SA: never bundle it) to grammar-correction chat JSONL in the tutor's format."""
    from lexiedge_chat_jsonl.jfleg import convert_jfleg

    if out.exists() and not force:
        raise UsageError(f"{out} exists; pass --force to overwrite it or choose another --out")
    if not src.is_dir():
        raise UsageError(
            f"--src {src}: not a directory (expected the JFLEG folder with {split}.src and {split}.ref0..3)"
        )
    result = convert_jfleg(src, split, out)
    from lexiedge.console import console

    console.print(
        f"wrote {result.examples} grammar examples to {out} ({result.errors} corrections, "
        f"{result.unchanged} sentences left unchanged); JFLEG is CC BY-NC-SA 4.0: do not redistribute",
        markup=False,
        highlight=False,
    )


def add_commands(app: typer.Typer) -> None:
    app.command("stats")(stats_command)
    app.command("jfleg")(jfleg_command)
