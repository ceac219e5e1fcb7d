"""The generic channel's webhook in ``/openapi.json``: its body and parts, from the model."""

from __future__ import annotations

from channels.generic.webhook_model import GenericWebhook
from channels.payload_schema import COMPONENTS, Schema


def generic_webhook_schemas() -> dict[str, Schema]:
    """``GenericWebhook`` and the schemas of its parts, referring to each other by component."""
    schema = GenericWebhook.model_json_schema(ref_template=COMPONENTS + "{model}")
    parts: dict[str, Schema] = schema.pop("$defs", {})
    return {**parts, "GenericWebhook": schema}
