"""The audit trail: one ``tool_calls`` row per call, with secrets and personal data redacted.

The row of a call that runs is written by the idempotency ledger (claim, then completion); the
row of a call refused before it could run (not allowed, unknown turn, invalid arguments, rate
limited) is written here. Both share the row of the call's idempotency key, so a refused call
that is requested again later, and then runs, ends as one row saying what finally happened.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

import asyncpg
from pydantic import JsonValue

REDACTED = "[redacted]"

Outcome = Literal[
    "succeeded",
    "failed",
    "denied",
    "rate_limited",
    "timed_out",
    "stale",
    "invalid_arguments",
    "unavailable",
]
"""What the audit row says happened (``tool_calls.outcome`` once the call is complete)."""


def redact(
    arguments: Mapping[str, JsonValue], sensitive: Collection[str] | None
) -> dict[str, JsonValue]:
    """``arguments`` with the values of ``sensitive`` fields replaced by ``[redacted]``.

    ``None`` means the fields are unknown (a tool that is not registered): every value is
    redacted and only the argument names are kept.
    """
    return {
        name: REDACTED if sensitive is None or name in sensitive else value
        for name, value in arguments.items()
    }


@dataclass(frozen=True, slots=True)
class CallRecord:
    """What every audit row of a call says, whatever its outcome.

    ``conversation_id`` and ``turn_id`` are ``None`` when the database does not know them (the
    row's foreign keys need existing rows); the idempotency key still names the turn.
    """

    tenant_id: str
    conversation_id: str | None
    turn_id: str | None
    fencing_token: int
    agent_profile: str
    tool: str
    arguments: dict[str, JsonValue]
    idempotency_key: str
    dry_run: bool

    def columns(self) -> tuple[object, ...]:
        """The values of the row's first nine columns, in ``COLUMNS`` order."""
        return (
            self.tenant_id,
            self.conversation_id,
            self.turn_id,
            self.fencing_token,
            self.agent_profile,
            self.tool,
            json.dumps(self.arguments),
            self.idempotency_key,
            self.dry_run,
        )


COLUMNS = (
    "tenant_id, conversation_id, turn_id, fencing_token, agent_profile, tool, arguments,"
    " idempotency_key, dry_run"
)
VALUES = "$1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9"
REFRESH = (
    "conversation_id = EXCLUDED.conversation_id, turn_id = EXCLUDED.turn_id,"
    " fencing_token = EXCLUDED.fencing_token, agent_profile = EXCLUDED.agent_profile,"
    " tool = EXCLUDED.tool, arguments = EXCLUDED.arguments, dry_run = EXCLUDED.dry_run"
)

# A refusal never overwrites a call that is running (pending) or that has a stored result.
_REFUSAL = f"""
INSERT INTO tool_calls ({COLUMNS}, outcome, error_code, latency_ms, completed_at)
VALUES ({VALUES}, $10, $11, $12, now())
ON CONFLICT (tenant_id, idempotency_key) DO UPDATE SET {REFRESH},
    outcome = EXCLUDED.outcome, error_code = EXCLUDED.error_code,
    latency_ms = EXCLUDED.latency_ms, completed_at = now()
WHERE tool_calls.result IS NULL AND tool_calls.outcome <> 'pending'
"""  # noqa: S608 - only constant fragments are interpolated


class AuditTrail:
    """Writes the rows of refused calls."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record_refusal(
        self, record: CallRecord, outcome: Outcome, error_code: str, latency_ms: int
    ) -> bool:
        """Write (or update) the call's row as refused; ``False`` if a claimed row kept it."""
        status: str = await self._pool.execute(
            _REFUSAL, *record.columns(), outcome, error_code, latency_ms
        )
        return status.endswith(" 1")
