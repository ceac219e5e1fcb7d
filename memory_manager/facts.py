"""Structured facts about a contact (``facts`` table), upserted by key.

Replacement policy, applied inside the upsert itself:

- a fact replaces the stored one with the same key only if it is **not older** (its
  ``observed_at`` is at or after the stored ``updated_at``), so a redelivered or reordered
  update never brings back a value that was already replaced;
- and only if it is **not less sure**: a lower-confidence fact does not overwrite a
  higher-confidence one (an agent's guess must not erase what the contact stated), unless it
  comes from an ``operator``, whose correction always wins.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from libs.postgres import PgConnection

_UPSERT = """
WITH before AS (
    SELECT value, source, confidence FROM facts
    WHERE tenant_id = $1 AND contact_id = $2 AND key = $3
)
INSERT INTO facts AS f (tenant_id, contact_id, key, value, source, source_conversation_id,
                        confidence, created_at, updated_at)
VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $8)
ON CONFLICT (tenant_id, contact_id, key) DO UPDATE
SET value = EXCLUDED.value, source = EXCLUDED.source,
    source_conversation_id = EXCLUDED.source_conversation_id,
    confidence = EXCLUDED.confidence, updated_at = EXCLUDED.updated_at
-- A newer observation moves updated_at even when it repeats the value, so a late older one
-- cannot overwrite it; an equal time writes only what differs (a redelivery changes nothing).
WHERE (EXCLUDED.updated_at > f.updated_at
       OR (EXCLUDED.updated_at = f.updated_at
           AND (f.value, f.source, f.confidence) IS DISTINCT FROM
               (EXCLUDED.value, EXCLUDED.source, EXCLUDED.confidence)))
  AND (EXCLUDED.confidence >= f.confidence OR EXCLUDED.source = 'operator')
RETURNING key, NOT EXISTS (
    SELECT 1 FROM before b
    WHERE (b.value, b.source, b.confidence) IS NOT DISTINCT FROM (f.value, f.source, f.confidence)
) AS changed
"""

_LIST = """
SELECT key, value, source, confidence, source_conversation_id, updated_at
FROM facts WHERE tenant_id = $1 AND contact_id = $2
ORDER BY confidence DESC, updated_at DESC, key
LIMIT $3
"""


@dataclass(frozen=True, slots=True)
class FactRecord:
    """One fact as stored: the value is text (JSON values that are not text are shown as JSON)."""

    key: str
    value: str
    source: str
    confidence: float
    source_conversation_id: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class NewFact:
    """A fact to remember, observed at ``observed_at``."""

    key: str
    value: str
    source: str
    confidence: float
    observed_at: datetime


async def upsert_facts(
    connection: PgConnection,
    tenant_id: str,
    contact_id: str,
    facts: Sequence[NewFact],
    *,
    conversation_id: str | None = None,
) -> list[str]:
    """Upsert ``facts`` under the policy above; return the keys that changed."""
    changed: list[str] = []
    for fact in facts:
        if not 0.0 <= fact.confidence <= 1.0:
            raise ValueError(f"fact {fact.key!r}: confidence must be in [0, 1]")
        row = await connection.fetchrow(
            _UPSERT,
            tenant_id,
            contact_id,
            fact.key,
            json.dumps(fact.value, ensure_ascii=False),
            fact.source,
            conversation_id,
            fact.confidence,
            fact.observed_at,
        )
        if row is not None and row["changed"]:
            changed.append(row["key"])
    return changed


async def list_facts(
    connection: PgConnection, tenant_id: str, contact_id: str, *, limit: int = 200
) -> list[FactRecord]:
    """The contact's facts, surest and newest first."""
    rows = await connection.fetch(_LIST, tenant_id, contact_id, limit)
    return [
        FactRecord(
            key=row["key"],
            value=_as_text(json.loads(row["value"])),
            source=row["source"],
            confidence=row["confidence"],
            source_conversation_id=row["source_conversation_id"],
            updated_at=row["updated_at"],
        )
        for row in rows
    ]


def _as_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
