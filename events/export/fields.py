"""Read a JSON Schema object as a table of fields: name, type, required, description."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_ANY_JSON = "any JSON"


@dataclass(frozen=True, slots=True)
class FieldRow:
    """One property of an object schema, in words."""

    name: str
    type: str
    required: bool
    description: str


def field_rows(schema: dict[str, Any]) -> list[FieldRow]:
    """Return a row per property of the object ``schema``, in declaration order."""
    required = set(schema.get("required", []))
    return [
        FieldRow(
            name=name,
            type=type_label(node),
            required=name in required,
            description=_description(node, name in required),
        )
        for name, node in schema.get("properties", {}).items()
    ]


def ref_name(ref: str) -> str:
    """Return the model name a local ``$ref`` points at."""
    return ref.rsplit("/", 1)[-1]


def referenced_models(schema: dict[str, Any], definitions: dict[str, Any]) -> list[str]:
    """Return the models ``schema`` uses, directly or not, in order of first use."""
    seen: list[str] = []

    def visit(node: Any) -> None:
        for name in _refs(node):
            if name not in seen and name in definitions and definitions[name]:
                seen.append(name)
                visit(definitions[name])

    visit(schema)
    return seen


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield ref_name(node["$ref"])
        for key, value in node.items():
            if key not in ("discriminator", "examples"):
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def type_label(node: dict[str, Any]) -> str:
    """Return a short human description of the type ``node`` accepts."""
    if "$ref" in node:
        name = ref_name(node["$ref"])
        return _ANY_JSON if name == "JsonValue" else f"`{name}`"
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return "one of " + ", ".join(f"`{json.dumps(value)}`" for value in node["enum"])
    if "oneOf" in node:
        return " or ".join(type_label(option) for option in node["oneOf"])
    if "anyOf" in node:
        options = [option for option in node["anyOf"] if option != {"type": "null"}]
        label = " or ".join(type_label(option) for option in options)
        return f"{label} or null" if len(options) < len(node["anyOf"]) else label
    kind = node.get("type")
    if kind == "array":
        return f"{_with('array', _items(node))} of {type_label(node.get('items', {}))}"
    if kind == "object":
        values = node.get("additionalProperties")
        label = "JSON object" if isinstance(values, dict) else "object"
        return _with(label, _bounds(node, "minProperties", "maxProperties", " keys"))
    if kind == "string":
        text_format = [str(node["format"])] if "format" in node else []
        pattern = [f"matching `{node['pattern']}`"] if "pattern" in node else []
        bounds = _bounds(node, "minLength", "maxLength", " chars")
        return _with("string", text_format + bounds + pattern)
    if kind in ("integer", "number"):
        return _with(str(kind), _bounds(node, "minimum", "maximum", ""))
    if kind is None:
        return _ANY_JSON
    return str(kind)


def _items(node: dict[str, Any]) -> list[str]:
    return _bounds(node, "minItems", "maxItems", " items")


def _bounds(node: dict[str, Any], low_key: str, high_key: str, unit: str) -> list[str]:
    low, high = node.get(low_key), node.get(high_key)
    if low is not None and high is not None:
        return [f"{low} to {high}{unit}"]
    if high is not None:
        return [f"≤ {high}{unit}"]
    if low is not None and not (unit == " items" and low == 0):
        return [f"≥ {low}{unit}"]
    return []


def _with(label: str, constraints: list[str]) -> str:
    return f"{label} ({', '.join(constraints)})" if constraints else label


def _description(node: dict[str, Any], required: bool) -> str:
    text = " ".join(str(node.get("description", "")).split())
    default = node.get("default")
    if not required and "const" not in node and default not in (None, [], {}):
        text = f"{text} Default `{json.dumps(default)}`.".strip()
    return text
