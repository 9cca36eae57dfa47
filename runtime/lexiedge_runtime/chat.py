"""An LLM artifact's tokenizer and chat template, without transformers.

The tokenizer is ``tokenizer.json`` through the ``tokenizers`` library (the same Rust code that
transformers runs, so ids match the training side exactly); the chat template is the artifact's
``chat_template.jinja`` (or ``tokenizer_config.json``'s ``chat_template``) rendered with jinja2 in
a sandbox set up like transformers' (``trim_blocks``, ``lstrip_blocks``, ``loopcontrols``,
``raise_exception``, ``strftime_now`` and a ``tojson`` that keeps non-ASCII text), with a bound on
its work and output (:mod:`lexiedge_runtime.chat_template`). Rendered prompts are encoded without
adding special tokens: the template already wrote them. A tokenizer file, config or template that
does not parse is refused when the artifact loads, in one line.

Stop strings are cut by :class:`StopScanner`: it holds back the end of the text while it could still
become a stop string, so a stream never shows text that a later token turns into a stop.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from lexiedge_runtime.artifact import Artifact
from lexiedge_runtime.chat_template import BoundedTemplate, ChatTemplateBoundError
from lexiedge_runtime.errors import ArtifactError, InputDtypeError, InputValueError, LexiedgeError, first_line
from lexiedge_runtime.extras import require

TOKENIZER_JSON, TOKENIZER_CONFIG, TEMPLATE_FILE = "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"
SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "pad_token")
ROLES = ("system", "user", "assistant")  # what the chat templates of our models render
_MESSAGE_SHAPE = "{'role': 'system'|'user'|'assistant', 'content': str}"


class ChatTokenizer:
    """Encode prompts (plain text or chat messages), decode ids, stream-decode one id at a time."""

    def __init__(self, artifact: Artifact) -> None:
        require("llm", "an LLM artifact's tokenizer and chat template")
        from tokenizers import Tokenizer

        files = artifact.manifest.get("files", {})
        if TOKENIZER_JSON not in files:
            raise ArtifactError(f"{artifact.directory}: no {TOKENIZER_JSON} in the artifact; re-export the run")
        path = artifact.path(TOKENIZER_JSON)
        try:
            self.tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # the tokenizers library raises a bare Exception with serde's message
            raise ArtifactError(f"{path}: not a tokenizer ({_first_line(exc)}); expected the `tokenizers` "
                                "library's tokenizer.json (re-export the run)") from None
        config = _read_json(artifact, TOKENIZER_CONFIG) if TOKENIZER_CONFIG in files else {}
        self.special_tokens = {name: _token_text(config.get(name)) for name in SPECIAL_TOKEN_NAMES}
        self.template_source = "the chat template"
        self.template = self._template_text(artifact, config)
        self._compiled = self._compile(self.template) if self.template is not None else None

    # --- prompts --------------------------------------------------------------------------------

    def prompt_ids(self, messages_or_prompt: str | Sequence[dict[str, str]]) -> list[int]:
        """Token ids the model continues: a plain string as is, messages through the chat template."""
        if isinstance(messages_or_prompt, str):
            text = check_text(messages_or_prompt, "the prompt")
        else:
            text = self.render(messages_or_prompt)
        return self.encode(text)

    def render(self, messages: Sequence[dict[str, str]], *, add_generation_prompt: bool = True) -> str:
        """The chat template applied to ``messages``, ending with the assistant's turn opened."""
        messages = check_messages(messages)  # here, so that every way to a prompt is checked
        if self.template is None:
            raise InputValueError(
                "this artifact has no chat template (chat_template.jinja); "
                "pass a plain prompt string instead of messages"
            )
        import jinja2
        from jinja2.sandbox import SecurityError

        try:
            return self._compiled.render(
                sum(len(message["content"]) for message in messages),
                messages=messages, add_generation_prompt=add_generation_prompt, tools=None, documents=None,
                **{name: value for name, value in self.special_tokens.items() if value is not None},
            )
        except ChatTemplateBoundError as exc:
            raise ChatTemplateBoundError(f"{self.template_source}: {exc}") from None
        except LexiedgeError:
            raise
        except SecurityError as exc:  # what the sandbox refuses is the template's doing, not the messages'
            raise ArtifactError(f"{self.template_source}: the sandbox refused it ({exc})") from None
        except jinja2.TemplateError as exc:  # the template's raise_exception(): e.g. roles out of order
            raise InputValueError(f"the chat template refused the messages: {exc}") from None
        except (Exception, RecursionError) as exc:  # a template's own bug: 1/0, a range over 100,000, ...
            raise ArtifactError(
                f"{self.template_source}: the chat template failed ({type(exc).__name__}: {_first_line(exc)})"
            ) from None

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(check_utf8(text, "the text"), add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def stream(self) -> Any:
        """A fresh incremental decoder: ``step(tokenizer, id)`` returns text once it is whole UTF-8."""
        from tokenizers.decoders import DecodeStream

        return DecodeStream(skip_special_tokens=True)

    # --- template ---------------------------------------------------------------------------------

    def _template_text(self, artifact: Artifact, config: dict[str, Any]) -> str | None:
        named = (artifact.manifest.get("tokenizer") or {}).get("chat_template") or TEMPLATE_FILE
        if named in artifact.manifest.get("files", {}):
            path = artifact.path(named)
            self.template_source = str(path)
            try:
                return path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ArtifactError(f"{path}: unreadable ({_first_line(exc)}); expected a UTF-8 jinja template") from None
        template = config.get("chat_template")
        if isinstance(template, list):  # [{"name": "default", "template": ...}, ...]
            template = next((t.get("template") for t in template if isinstance(t, dict)
                             and t.get("name") == "default"), None)
        self.template_source = f"{artifact.directory / TOKENIZER_CONFIG}: chat_template"
        return template if isinstance(template, str) else None

    def _compile(self, template: str) -> BoundedTemplate:
        import jinja2

        try:
            return BoundedTemplate(template)
        except jinja2.TemplateSyntaxError as exc:
            raise ArtifactError(
                f"{self.template_source}: not a valid jinja template (line {exc.lineno}: {exc.message})"
            ) from None


def check_messages(messages: Any) -> list[dict[str, str]]:
    """A list of ``{"role", "content"}`` dicts, each role one of :data:`ROLES`, each content valid
    UTF-8 and each user turn not blank; or an error naming the first bad message."""
    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)):
        raise InputDtypeError(
            f"expected a prompt string or a list of {{'role', 'content'}} messages, got {type(messages).__name__}"
        )
    if not messages:
        raise InputValueError("the message list is empty; pass at least one {'role': 'user', 'content': ...}")
    checked = []
    for position, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str) \
                or not isinstance(message.get("role"), str):
            raise InputDtypeError(f"message {position} is {message!r}"[:200] + f"; expected {_MESSAGE_SHAPE}")
        role = message["role"]
        if role not in ROLES:
            raise InputValueError(f"message {position} has role {role!r}"[:200] + f"; expected {_MESSAGE_SHAPE}")
        what = f"message {position} ({role})"
        # a user turn with nothing in it asks nothing; an empty assistant reply or system prompt can be history
        content = check_text(message["content"], what) if role == "user" else check_utf8(message["content"], what)
        checked.append({"role": role, "content": content})
    return checked


def check_text(text: str, what: str) -> str:
    """``text`` if it holds something to respond to and is valid UTF-8; else an :class:`InputValueError`."""
    if not text.strip():
        raise InputValueError(f"{what} is {'empty' if not text else 'only whitespace'}; expected some text")
    return check_utf8(text, what)


def check_utf8(text: str, what: str) -> str:
    """``text`` if it encodes as UTF-8. A lone surrogate (what Python makes of invalid UTF-8 bytes in a
    command-line argument, or of half an emoji cut from UTF-16) would reach the tokenizer as a TypeError."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputValueError(
            f"{what} is not valid UTF-8 text (an undecodable character at position {exc.start}); "
            "pass UTF-8 (check the terminal's or the file's encoding)"
        ) from None
    return text


class StopScanner:
    """Feeds decoded pieces, emits what is final, reports the first stop string.

    ``feed(piece)`` returns ``(text_to_emit, stopped)``; after a stop, the emitted text ends right
    before the stop string. ``flush()`` returns what was held back when generation ends otherwise.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [stop for stop in stops if stop]
        self._held = ""

    def feed(self, piece: str) -> tuple[str, bool]:
        text = self._held + piece
        hits = [index for index in (text.find(stop) for stop in self.stops) if index >= 0]
        if hits:
            self._held = ""
            return text[: min(hits)], True
        keep = max((_overlap(text, stop) for stop in self.stops), default=0)
        self._held = text[len(text) - keep:] if keep else ""
        return text[: len(text) - keep], False

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the first stop string (and whether one was found)."""
    hits = [index for index in (text.find(stop) for stop in stops if stop) if index >= 0]
    return (text[: min(hits)], True) if hits else (text, False)


def _overlap(text: str, stop: str) -> int:
    """Length of the longest end of ``text`` that is a proper beginning of ``stop``."""
    for length in range(min(len(text), len(stop) - 1), 0, -1):
        if text.endswith(stop[:length]):
            return length
    return 0


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):  # an AddedToken saved as {"content": ..., "lstrip": ...}
        value = value.get("content")
    return value if isinstance(value, str) else None


def _read_json(artifact: Artifact, name: str) -> dict[str, Any]:
    try:
        data = json.loads(artifact.path(name).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON or not UTF-8
        raise ArtifactError(f"{artifact.directory / name}: unreadable ({_first_line(exc)})") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{artifact.directory / name}: a JSON {type(data).__name__}; expected an object")
    return data


def _first_line(exc: BaseException) -> str:
    return first_line(exc)[:300]
