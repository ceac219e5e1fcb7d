"""A Chatwoot conversation resolved by an agent: the conversation goes back to the AI.

An account webhook sends ``conversation_status_changed`` (with ``status``) and an agent bot
``conversation_resolved``; both carry the conversation's webhook data, whose ``id`` is the
``display_id`` the API and our conversation keys use. Only ``resolved`` hands a conversation
back: ``open`` is what a handoff itself sets, ``pending`` and ``snoozed`` leave the agents in
charge.

The dedup key comes from the signed body: the conversation and its ``updated_at`` (float Unix
seconds; ``timestamp`` in older payloads), so the same change sent by both webhooks, or sent
again, is one event, and a later resolve of the same conversation is another.
"""

from __future__ import annotations

from channels.inbound import InboundRelease, PayloadInvalid
from channels.inbound_json import JsonObject, utc_from_unix

STATUS_EVENTS = frozenset({"conversation_status_changed", "conversation_resolved"})
_RESOLVED = "resolved"


def release(event: JsonObject) -> list[InboundRelease]:
    """The release a resolved conversation means; nothing for any other status."""
    status = event.optional_string("status")
    if event.string("event") == "conversation_resolved":
        status = status or _RESOLVED
    if status != _RESOLVED:
        return []
    conversation_key = event.identifier("id")
    changed_at = _changed_at(event)
    return [
        InboundRelease(
            conversation_key=conversation_key,
            dedup_key=f"{_RESOLVED}:{conversation_key}:{changed_at!r}",
            status=_RESOLVED,
            provider_timestamp=utc_from_unix(changed_at, "updated_at"),
        )
    ]


def _changed_at(event: JsonObject) -> float:
    for key in ("updated_at", "timestamp"):
        if event.get(key) is not None:
            return event.number(key)
    raise PayloadInvalid(
        "updated_at",
        "a resolved conversation's webhook needs updated_at (or timestamp) in Unix seconds "
        "to tell this change from another",
    )
