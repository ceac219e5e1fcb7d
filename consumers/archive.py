"""Keeps every event of every stream in Postgres, for replay beyond stream retention."""

from __future__ import annotations

import asyncpg

from events.streams import ALL_STREAMS
from libs.resources import Resources
from libs.streams import Consumer, Handler, Received

_INSERT = """
INSERT INTO event_archive
    (event_id, stream, type, version, tenant_id, conversation_id, occurred_at, envelope)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)
ON CONFLICT (event_id) DO NOTHING
"""


def archive_handler(pool: asyncpg.Pool) -> Handler:
    """Return a handler that stores each event once (idempotent by event id)."""

    async def archive(received: Received) -> None:
        envelope = received.envelope
        await pool.execute(
            _INSERT,
            envelope.id,
            received.stream,
            envelope.type,
            envelope.version,
            envelope.tenant_id,
            envelope.conversation_id,
            envelope.occurred_at,
            envelope.model_dump_json(),
        )

    return archive


def _build(resources: Resources) -> Handler:
    if resources.postgres is None:
        raise RuntimeError("the archive consumer needs Postgres (DATABASE_URL)")
    return archive_handler(resources.postgres)


consumer = Consumer(
    name="archive", streams=ALL_STREAMS, handler_factory=_build, tags=frozenset({"postgres"})
)
