"""A chat template rendered in jinja2's sandbox with a bound on its work, its output and its values.

A chat template is artifact data: hashed, but written by whoever made the artifact. jinja2's
``ImmutableSandboxedEnvironment`` keeps it from Python's internals (no ``__class__``, no mutating the
messages, no range over 100,000 items) but not from spending time or memory: two nested loops over
ranges run 10^10 steps, and ``'x' * 10**10`` asks for 10 GB in one operation. Every render here
carries a budget:

* work: each step of every ``{% for %}`` loop (recursive ones included) and each call (a macro, a
  method, a global) counts; past :data:`MAX_STEPS` steps, or :data:`MAX_SECONDS` of wall time,
  the render stops;
* output: it is streamed and stops past :data:`MIN_OUTPUT_CHARS` plus a few times the messages' own
  text (a template frames the messages; it does not multiply them);
* values: ``*``, ``+`` and ``**`` are sized before they run (a repeated or joined string or list
  longer than the output bound, a power with a huge result).

A template past a bound raises :class:`ChatTemplateBoundError`, one line naming the bound. The
sandbox is not a memory jail: a single filter call (``replace`` of a long string) can still
allocate; the bounds stop the ways a template spends without limit from small input.
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lexiedge_runtime.errors import ArtifactError

MAX_STEPS = 1_000_000  # a chat template takes a few steps per message; a 1,000-turn chat takes ~10^4
MAX_SECONDS = 5.0  # rendering takes milliseconds; this bounds a template that computes instead
MIN_OUTPUT_CHARS = 1 << 20
OUTPUT_PER_INPUT_CHAR = 4
_MAX_POWER_BITS = 1 << 16


class ChatTemplateBoundError(ArtifactError):
    """A chat template ran past a render bound (work, time, output or value size)."""


@dataclass
class _Budget:
    max_chars: int
    deadline: float
    steps: int = 0
    exceeded: list[str] = field(default_factory=list)

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            self.stop(f"over {MAX_STEPS:,} loop steps and calls")
        if not self.steps % 1024 and time.monotonic() > self.deadline:
            self.stop(f"over {MAX_SECONDS:g} s")

    def stop(self, what: str) -> None:
        raise ChatTemplateBoundError(f"the chat template ran past its bound ({what}); refusing to render it")

    def check_length(self, length: int) -> None:
        if length > self.max_chars:
            self.stop(f"a value of {length:,} items; the output may hold {self.max_chars:,} characters")


_BUDGET: contextvars.ContextVar[_Budget] = contextvars.ContextVar("chat_template_budget")


class _CountedIterator:
    """An iterable whose every step spends one unit of the render's budget; its length is the source's."""

    def __init__(self, iterable: Any, budget: _Budget) -> None:
        self._source = iterable
        self._iterator = iter(iterable)
        self._budget = budget

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        item = next(self._iterator)
        self._budget.step()
        return item

    def __len__(self) -> int:
        return len(self._source)  # a TypeError for an unsized source: jinja's loop.length then counts items


def _bounded_environment() -> Any:
    import jinja2.ext
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class BoundedEnvironment(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "+", "**"})

        def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
            """The parsed template with every loop's iterable wrapped in :meth:`counted`.

            The wrapper is reached as ``environment.counted``, which a template cannot rebind."""
            tree = super()._parse(source, name, filename)
            for loop in tree.find_all(nodes.For):
                loop.iter = self._counted_node(loop.iter)
                if loop.recursive:  # loop(children) starts the body again on a new iterable: count it too
                    for call in loop.find_all(nodes.Call):
                        if isinstance(call.node, nodes.Name) and call.node.name == "loop" and call.args:
                            call.args[0] = self._counted_node(call.args[0])
            return tree

        @staticmethod
        def _counted_node(node: nodes.Expr) -> nodes.Expr:
            return nodes.Call(nodes.EnvironmentAttribute("counted"), [node], [], None, None, lineno=node.lineno)

        def counted(self, iterable: Any) -> Any:
            return _CountedIterator(iterable, _BUDGET.get())

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            _BUDGET.get().step()
            return super().call(__context, __obj, *args, **kwargs)

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            budget = _BUDGET.get()
            if operator == "*":
                for sequence, times in ((left, right), (right, left)):
                    if isinstance(sequence, (str, list, tuple)) and isinstance(times, int):
                        budget.check_length(len(sequence) * times)
            elif operator == "+" and isinstance(left, (str, list, tuple)) and isinstance(right, type(left)):
                budget.check_length(len(left) + len(right))
            elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0 \
                    and abs(left) > 1 and abs(left).bit_length() * right > _MAX_POWER_BITS:
                budget.stop(f"a power of {_MAX_POWER_BITS:,}+ bits")
            return super().call_binop(context, operator, left, right)

    def raise_exception(message: str) -> None:
        raise jinja2.TemplateError(message)

    def tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
               sort_keys: bool = False) -> str:
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    # set up as transformers renders chat templates, so prompts match training's
    environment = BoundedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    environment.filters["tojson"] = tojson
    environment.globals["raise_exception"] = raise_exception
    environment.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return environment


class BoundedTemplate:
    """A compiled chat template; :meth:`render` runs it under a fresh budget. Safe to share across threads."""

    def __init__(self, source: str) -> None:
        self._template = _bounded_environment().from_string(source)

    def render(self, input_chars: int, **context: Any) -> str:
        """The template's output for ``context``; ``input_chars`` (the messages' text) scales the output bound."""
        budget = _Budget(MIN_OUTPUT_CHARS + OUTPUT_PER_INPUT_CHAR * input_chars, time.monotonic() + MAX_SECONDS)
        token = _BUDGET.set(budget)
        try:
            pieces, size = [], 0
            for piece in self._template.generate(**context):
                size += len(piece)
                if size > budget.max_chars:
                    budget.stop(f"over {budget.max_chars:,} characters of output")
                pieces.append(piece)
            return "".join(pieces)
        finally:
            _BUDGET.reset(token)
