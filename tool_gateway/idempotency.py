"""Each call runs once per idempotency key, across replicas and restarts: the claim is a row.

A call is claimed by inserting its ``tool_calls`` row as ``pending``; the unique key
``(tenant_id, idempotency_key)`` lets one replica win. A completed row with a stored answer is
what every later request for the key gets back. A pending row claimed longer than the takeover
time ago belongs to a worker that died: the next request takes it over, and the completion of
the worker that lost the claim is not written (``attempts`` names the claim).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, JsonValue

from events.types.tools import ToolError
from tool_gateway.audit import COLUMNS, REFRESH, VALUES, CallRecord, Outcome


class StoredAnswer(BaseModel):
    """What a call answered, stored so that a repeated request gets the same answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: Literal["ok", "error"]
    result: JsonValue = None
    error: ToolError | None = None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class Claimed:
    """This request runs the call; ``attempt`` identifies its claim."""

    row_id: int
    attempt: int


@dataclass(frozen=True, slots=True)
class Answered:
    """The call already ran; its stored answer."""

    answer: StoredAnswer


@dataclass(frozen=True, slots=True)
class InProgress:
    """Another worker holds the claim; it may be taken over in ``takeover_in_ms``."""

    takeover_in_ms: int


Claim = Claimed | Answered | InProgress

_CLAIM = f"""
INSERT INTO tool_calls ({COLUMNS}, attempts, claimed_at)
VALUES ({VALUES}, 1, now())
ON CONFLICT (tenant_id, idempotency_key) DO UPDATE SET {REFRESH},
    outcome = 'pending', error_code = NULL, latency_ms = NULL, completed_at = NULL,
    attempts = tool_calls.attempts + 1, claimed_at = now()
WHERE tool_calls.result IS NULL
    AND (tool_calls.outcome <> 'pending'
         OR tool_calls.claimed_at < now() - make_interval(secs => $10))
RETURNING tool_call_id, attempts
"""  # noqa: S608 - only constant fragments are interpolated

_STATE = """
SELECT result,
       outcome,
       extract(epoch FROM claimed_at + make_interval(secs => $3) - now())::float8 AS takeover_in_s
FROM tool_calls
WHERE tenant_id = $1 AND idempotency_key = $2
"""

_ANSWER = """
SELECT result FROM tool_calls
WHERE tenant_id = $1 AND idempotency_key = $2 AND result IS NOT NULL
"""

_COMPLETE = """
UPDATE tool_calls
SET outcome = $4, error_code = $5, result = $6::jsonb, latency_ms = $7, completed_at = now()
WHERE tenant_id = $1 AND tool_call_id = $2 AND attempts = $3 AND outcome = 'pending'
"""


class CallLedger:
    """Claims, answers and completes calls in ``tool_calls``."""

    def __init__(self, pool: asyncpg.Pool, *, takeover_after_s: int) -> None:
        if takeover_after_s < 1:
            raise ValueError(f"takeover_after_s must be at least 1, got {takeover_after_s}")
        self._pool = pool
        self._takeover_after_s = takeover_after_s

    async def answered(self, tenant_id: str, idempotency_key: str) -> StoredAnswer | None:
        """The stored answer of the call, if it already ran."""
        raw = await self._pool.fetchval(_ANSWER, tenant_id, idempotency_key)
        return None if raw is None else StoredAnswer.model_validate_json(raw)

    async def claim(self, record: CallRecord, *, takeover_after_s: float | None = None) -> Claim:
        """Claim the call for this worker, or say who has it or what it answered.

        A pending claim older than ``takeover_after_s`` (default: the ledger's) is taken over.
        """
        takeover_s = float(takeover_after_s or self._takeover_after_s)
        row = await self._pool.fetchrow(_CLAIM, *record.columns(), takeover_s)
        if row is not None:
            return Claimed(row_id=row["tool_call_id"], attempt=row["attempts"])
        state = await self._pool.fetchrow(
            _STATE, record.tenant_id, record.idempotency_key, takeover_s
        )
        if state is None:
            # Deleted (with its tenant or turn) between the two queries: asking again at once
            # sees what is left.
            return InProgress(takeover_in_ms=0)
        if state["result"] is not None:
            return Answered(StoredAnswer.model_validate_json(state["result"]))
        # Still pending (a refused row would have been claimed by the insert above).
        return InProgress(takeover_in_ms=max(0, math.ceil(state["takeover_in_s"] * 1000)))

    async def complete(
        self,
        tenant_id: str,
        claim: Claimed,
        *,
        outcome: Outcome,
        error_code: str | None,
        answer: StoredAnswer | None,
        latency_ms: int,
    ) -> bool:
        """Write the call's outcome (and its answer, when the tool ran) under ``claim``.

        ``answer`` is ``None`` when the tool never ran (stale turn, open breaker): a later
        request is evaluated again. Returns ``False`` when the claim was taken over meanwhile.
        """
        stored = None if answer is None else json.dumps(answer.model_dump(mode="json"))
        status: str = await self._pool.execute(
            _COMPLETE,
            tenant_id,
            claim.row_id,
            claim.attempt,
            outcome,
            error_code,
            stored,
            latency_ms,
        )
        return status.endswith(" 1")
