"""Typed manifest sections: plain dataclasses that the writer fills, readers check, and JSON Schema describes.

A section is a frozen dataclass whose fields are the JSON keys, in the order they are written. The field
types say what a value may be (``str``, ``int``, ``float``, ``bool``, ``list[X]``, ``dict[str, X]``,
``X | None``, ``Literal[...]``, another section, ``Any``); ``meta(...)`` adds JSON Schema keywords
(``minimum``, ``pattern``, ``minItems``, ...). Three operations, one declaration:

* :meth:`Section.to_json` — the dict the exporter writes (keys in field order; a None field marked
  ``omit_none`` is left out, so a manifest reads as it always has);
* :func:`json_schema` — the JSON Schema (draft 2020-12 subset) runtime-js checks manifests against;
* :func:`check` — the same rules in Python: the first value that breaks them, named by its key path.

Unknown keys are allowed everywhere (an exporter may add sections and numbers); what is declared is what
some reader relies on. Plain Python, no pydantic: the runtime installs without it.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Union

from lexiedge_runtime.errors import ManifestError

_KEYWORDS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "description",
)


def meta(*, omit_none: bool = False, holds: type[Section] | None = None, **keywords: Any) -> Any:
    """An optional field (default None) with JSON Schema keywords (``minimum=0``, ``pattern=...``).

    ``omit_none``: left out of the written JSON when None. ``holds``: a ``dict`` field whose mapping
    has at least that section's keys (a dataset's settings hold the clip settings, and more).
    """
    return field(default=None, metadata=_metadata(keywords, omit_none=omit_none, holds=holds))


def required(*, holds: type[Section] | None = None, **keywords: Any) -> Any:
    """A required field with JSON Schema keywords (and ``holds``, as for :func:`meta`)."""
    return field(metadata=_metadata(keywords, required=True, holds=holds))


def _metadata(keywords: dict[str, Any], **flags: Any) -> dict[str, Any]:
    unknown = set(keywords) - set(_KEYWORDS)
    if unknown:
        raise TypeError(f"unknown schema keywords {sorted(unknown)}")
    return {"schema": keywords, **flags}


@dataclass(frozen=True, kw_only=True)
class Section:
    """Base of every typed manifest section (see the module doc)."""

    VERSION: ClassVar[int | None] = None  # a section that records its own version says which here

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if value is None and item.metadata.get("omit_none"):
                continue
            out[item.name] = _plain(value)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, Section):
        return value.to_json()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


# --- JSON Schema -----------------------------------------------------------------------------------


def json_schema(section: type[Section]) -> dict[str, Any]:
    """The JSON Schema of a section class (objects allow keys it does not declare)."""
    hints = typing.get_type_hints(section)
    properties: dict[str, Any] = {}
    needed = []
    for item in dataclasses.fields(section):
        holds = item.metadata.get("holds")
        schema = (
            _type_schema(hints[item.name])
            if holds is None
            else _nullable(json_schema(holds), hints[item.name])
        )
        schema.update(item.metadata.get("schema", {}))
        properties[item.name] = schema
        if _is_required(item):
            needed.append(item.name)
    schema = {"type": "object", "properties": properties, "required": needed}
    if section.__doc__:
        schema["description"] = " ".join(section.__doc__.split())
    return schema


def _nullable(schema: dict[str, Any], hint: Any) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]} if type(None) in typing.get_args(hint) else schema


def _is_required(item: dataclasses.Field) -> bool:
    return bool(item.metadata.get("required")) or (
        item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
    )


def _type_schema(hint: Any) -> dict[str, Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return {}
    if origin in (Union, types.UnionType):
        options = [arg for arg in args if arg is not type(None)]
        inner = (
            _type_schema(options[0]) if len(options) == 1 else {"anyOf": [_type_schema(a) for a in options]}
        )
        if type(None) in args:
            return {"anyOf": [inner, {"type": "null"}]}
        return inner
    if origin is Literal:
        return {"const": args[0]} if len(args) == 1 else {"enum": list(args)}
    if origin in (list, tuple):
        return {"type": "array", "items": _type_schema(args[0]) if args else {}}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type_schema(args[1])}
    if isinstance(hint, type) and issubclass(hint, Section):
        return json_schema(hint)
    simple = {str: "string", bool: "boolean", int: "integer", float: "number", dict: "object", list: "array"}
    if hint in simple:
        return {"type": simple[hint]}
    raise TypeError(f"no JSON Schema for {hint!r}")


# --- the same rules in Python ------------------------------------------------------------------------


def check(schema: dict[str, Any], value: Any, where: str, key: str = "") -> None:
    """Raise a :class:`ManifestError` naming the first value under ``key`` that ``schema`` refuses.

    Implements the keywords :func:`json_schema` writes (and runtime-js's ``schema.js`` implements):
    type, properties, required, additionalProperties, items, anyOf, allOf, if/then, const, enum,
    minimum, maximum, exclusiveMinimum, pattern, minItems, maxItems, minProperties.
    """
    problem = _problem(schema, value)
    if problem is not None:
        path, message = problem
        raise ManifestError(
            where, ".".join(part for part in (key, path) if part) or "(the manifest)", message
        )


def _problem(schema: dict[str, Any], value: Any) -> tuple[str, str] | None:
    """(key path, what is wrong) for the first rule ``value`` breaks, else None."""
    for check_one in (_check_type, _check_value, _check_object, _check_array, _check_combined):
        problem = check_one(schema, value)
        if problem is not None:
            return problem
    return None


_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    "null": lambda v: v is None,
}


def _check_type(schema: dict[str, Any], value: Any) -> tuple[str, str] | None:
    expected = schema.get("type")
    if expected is not None and not _TYPES[expected](value):
        return "", f"expected {_NAMES[expected]}, got {_shown(value)}"
    return None


_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "boolean": "true or false",
    "integer": "a whole number",
    "number": "a number",
    "null": "null",
}


def _check_value(schema: dict[str, Any], value: Any) -> tuple[str, str] | None:
    if "const" in schema and not _same(value, schema["const"]):
        return "", f"expected {schema['const']!r}, got {_shown(value)}"
    if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
        return "", f"expected one of {', '.join(map(repr, schema['enum']))}, got {_shown(value)}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return "", f"expected a value >= {schema['minimum']}, got {value!r}"
        if "maximum" in schema and value > schema["maximum"]:
            return "", f"expected a value <= {schema['maximum']}, got {value!r}"
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            return "", f"expected a value above {schema['exclusiveMinimum']}, got {value!r}"
    if isinstance(value, str) and "pattern" in schema and re.search(schema["pattern"], value) is None:
        return "", f"expected a string matching {schema['pattern']}, got {_shown(value)}"
    return None


def _check_object(schema: dict[str, Any], value: Any) -> tuple[str, str] | None:
    if not isinstance(value, dict):
        return None
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        return "", f"expected at least {schema['minProperties']} entry(ies), got {len(value)}"
    for name in schema.get("required", []):
        if name not in value:
            return name, "missing"
    for name, item in value.items():
        inner = schema.get("properties", {}).get(name, schema.get("additionalProperties"))
        if isinstance(inner, dict):
            problem = _problem(inner, item)
            if problem is not None:
                return _join(name, problem[0]), problem[1]
    return None


def _check_array(schema: dict[str, Any], value: Any) -> tuple[str, str] | None:
    if not isinstance(value, list):
        return None
    if "minItems" in schema and len(value) < schema["minItems"]:
        return "", f"expected at least {schema['minItems']} item(s), got {len(value)}"
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        return "", f"expected at most {schema['maxItems']} item(s), got {len(value)}"
    for position, item in enumerate(value):
        problem = _problem(schema.get("items", {}), item)
        if problem is not None:
            return f"[{position}]" + (f".{problem[0]}" if problem[0] else ""), problem[1]
    return None


def _check_combined(schema: dict[str, Any], value: Any) -> tuple[str, str] | None:
    if "anyOf" in schema:
        problems = [_problem(option, value) for option in schema["anyOf"]]
        if all(problem is not None for problem in problems):
            return max(problems, key=lambda problem: len(problem[0]))  # the one that got furthest
    for part in schema.get("allOf", []):
        if "if" in part and _problem(part["if"], value) is not None:
            continue
        problem = _problem(part.get("then", part), value)
        if problem is not None:
            return problem
    return None


def _join(name: str, rest: str) -> str:
    return name if not rest else f"{name}{rest}" if rest.startswith("[") else f"{name}.{rest}"


def _same(value: Any, expected: Any) -> bool:
    """JSON equality: true is not 1 (Python's bool is an int)."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return type(value) is type(expected) and value == expected
    return value == expected


def _shown(value: Any) -> str:
    return repr(value)[:80] if not isinstance(value, (dict, list)) else type(value).__name__
