"""JSON Schema for the provider payloads of ``/openapi.json``: the main fields each adapter reads.

Described by hand in each provider's folder (``channels/<provider>/webhook_schema.py``), as the
adapters read them field by field; every object is open, since providers keep adding fields.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

COMPONENTS = "#/components/schemas/"
"""Where a schema that refers to another finds it in the document."""

STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
BOOL: Schema = {"type": "boolean"}
OBJECT: Schema = {"type": "object"}
STR_OR_NULL: Schema = {"type": ["string", "null"]}


def open_object(properties: dict[str, Schema], *required: str) -> Schema:
    """An object with at least ``required``: a provider's payload, which gains fields over time."""
    return {"type": "object", "properties": properties, "required": list(required)}


def list_of(item: Schema) -> Schema:
    """An array of ``item``."""
    return {"type": "array", "items": item}
