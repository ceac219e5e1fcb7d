"""Export of the event catalog: JSON Schemas, an AsyncAPI 3 document and docs/EVENTS.md.

Every function here is pure except ``write_exports``; the output is byte-stable, so a
regenerated export equals the committed one until a model changes.
"""

from events.export.asyncapi import ASYNCAPI_VERSION, asyncapi_document
from events.export.files import dump_json, render_exports, stale_exports, write_exports
from events.export.markdown import EXPORT_COMMAND, events_markdown
from events.export.schemas import JSON_SCHEMA_DIALECT, json_schemas, schema_id, schema_key

__all__ = [
    "ASYNCAPI_VERSION",
    "EXPORT_COMMAND",
    "JSON_SCHEMA_DIALECT",
    "asyncapi_document",
    "dump_json",
    "events_markdown",
    "json_schemas",
    "render_exports",
    "schema_id",
    "schema_key",
    "stale_exports",
    "write_exports",
]
