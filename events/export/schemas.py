"""JSON Schema (draft 2020-12) of the full envelope of each event type."""

from __future__ import annotations

import inspect
from typing import Any

from pydantic.json_schema import DEFAULT_REF_TEMPLATE, models_json_schema

from events.envelope import Envelope
from events.examples import example_envelope
from events.registry import EventRegistry

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_key(event_type: str, version: int) -> str:
    """Return the name of a type's schema: ``<type>.v<version>``."""
    return f"{event_type}.v{version}"


def schema_id(event_type: str, version: int) -> str:
    """Return the ``$id`` of a type's schema."""
    return f"urn:atende:event:{schema_key(event_type, version)}"


def example_json(event_type: str, version: int) -> dict[str, Any]:
    """Return the fixed example envelope of a type as JSON data."""
    return example_envelope(event_type, version).model_dump(mode="json")


def json_schemas(registry: EventRegistry) -> dict[str, dict[str, Any]]:
    """Return one standalone envelope schema per ``<type>.v<version>``, with its example."""
    schemas: dict[str, dict[str, Any]] = {}
    for payload_type in registry.payload_types():
        event_type, version = payload_type.event_type, payload_type.event_version
        envelope_type = registry.envelope_type(event_type, version)
        body = envelope_type.model_json_schema(ref_template=DEFAULT_REF_TEMPLATE)
        pin_identity(body, event_type, version, payload_type.stream)
        schemas[schema_key(event_type, version)] = {
            "$schema": JSON_SCHEMA_DIALECT,
            "$id": schema_id(event_type, version),
            **body,
            "examples": [example_json(event_type, version)],
        }
    return schemas


def component_schemas(
    registry: EventRegistry, ref_template: str
) -> tuple[dict[str, str], dict[str, Any]]:
    """Return every envelope and nested schema in one namespace, as AsyncAPI components want.

    The first mapping gives, per ``<type>.v<version>``, the name of its envelope schema.
    """
    payload_types = registry.payload_types()
    envelope_types = [registry.envelope_type(p.event_type, p.event_version) for p in payload_types]
    refs, document = models_json_schema(
        [(envelope_type, "validation") for envelope_type in envelope_types],
        ref_template=ref_template,
    )
    definitions: dict[str, Any] = document.get("$defs", {})
    names: dict[str, str] = {}
    for payload_type, envelope_type in zip(payload_types, envelope_types, strict=True):
        name = refs[(envelope_type, "validation")]["$ref"].rsplit("/", 1)[-1]
        event_type, version = payload_type.event_type, payload_type.event_version
        pin_identity(definitions[name], event_type, version, payload_type.stream)
        names[schema_key(event_type, version)] = name
    return names, definitions


def pin_identity(schema: dict[str, Any], event_type: str, version: int, stream: str) -> None:
    """Narrow an envelope schema's ``type`` and ``version`` to the one type it describes."""
    properties = schema["properties"]
    properties["type"] = {**properties["type"], "const": event_type}
    properties["version"] = {**properties["version"], "const": version}
    schema["title"] = f"{event_type} v{version}"
    schema["description"] = (
        f"Envelope of a `{event_type}` v{version} event, published to stream `{stream}`."
    )


def generic_envelope_schema() -> dict[str, Any]:
    """Return the envelope's schema with an untyped payload, to document the shared fields."""
    return Envelope[Any].model_json_schema()


def describe(payload_type: type) -> str:
    """Return the cleaned docstring of a model, the text its schema uses as description."""
    return inspect.cleandoc(payload_type.__doc__ or "")
