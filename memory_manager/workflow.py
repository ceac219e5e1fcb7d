"""Workflow state per conversation (flow, step, data) in Postgres, written only by the current turn.

Every write is one SQL statement that checks both guards itself, so there is no
read-modify-write window:

- fencing: the write's token must not be older than the row's last writer's token nor the
  token Postgres records for the conversation (``conversation_fencing_token``, the Postgres
  half of ``dispatcher.turns.TurnGuard``, which callers such as the tool gateway run in full
  before they write); otherwise ``StaleFencingToken``;
- optimistic concurrency: an update or delete names the version it read; if another write
  came first the version moved on and ``WorkflowConflict`` is raised. Of two concurrent writers
  of the same version exactly one wins.

Only when a statement changed nothing is the row read again, to say which guard refused it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from libs.errors import StaleFencingToken
from memory_manager.errors import UnknownConversation, WorkflowConflict, WorkflowNotFound

# conversation_fencing_token (migration 0004) is the conversation's current token; it is null
# when the tenant has no such conversation, which refuses the write too.
_CREATE = """
INSERT INTO workflow_state (tenant_id, conversation_id, flow, step, data, fencing_token)
SELECT $1, $2, $3, $4, $5::jsonb, $6
WHERE $6 >= conversation_fencing_token($1, $2)
ON CONFLICT (tenant_id, conversation_id) DO NOTHING
RETURNING flow, step, data, version, fencing_token, updated_at
"""

_UPDATE = """
UPDATE workflow_state w
SET flow = COALESCE($3, w.flow), step = $4, data = $5::jsonb, version = w.version + 1,
    fencing_token = $6, updated_at = now()
WHERE w.tenant_id = $1 AND w.conversation_id = $2 AND w.version = $7
  AND $6 >= w.fencing_token
  AND $6 >= conversation_fencing_token($1, $2)
RETURNING flow, step, data, version, fencing_token, updated_at
"""

_DELETE = """
DELETE FROM workflow_state w
WHERE w.tenant_id = $1 AND w.conversation_id = $2 AND w.version = $4
  AND $3 >= w.fencing_token
  AND $3 >= conversation_fencing_token($1, $2)
RETURNING flow, step, data, version, fencing_token, updated_at
"""

_READ = """
SELECT flow, step, data, version, fencing_token, updated_at
FROM workflow_state WHERE tenant_id = $1 AND conversation_id = $2
"""

_DIAGNOSE = """
SELECT conversation_fencing_token($1, $2) AS current_token,
       w.version, w.fencing_token AS row_token
FROM (SELECT 1) AS one
LEFT JOIN workflow_state w ON w.tenant_id = $1 AND w.conversation_id = $2
"""


@dataclass(frozen=True, slots=True)
class WorkflowState:
    """Where a conversation is in a flow, and the version an update must name."""

    flow: str
    step: str
    data: Mapping[str, Any]
    version: int
    fencing_token: int
    updated_at: datetime


class WorkflowStore:
    """Reads and writes ``workflow_state`` rows of any tenant through one pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def read(self, tenant_id: str, conversation_id: str) -> WorkflowState | None:
        """The conversation's workflow state, or ``None`` when it is in no flow."""
        row = await self._pool.fetchrow(_READ, tenant_id, conversation_id)
        return _state(row) if row is not None else None

    async def create(
        self,
        tenant_id: str,
        conversation_id: str,
        *,
        flow: str,
        step: str,
        data: Mapping[str, Any],
        fencing_token: int,
    ) -> WorkflowState:
        """Start a flow (version 1); a conversation already in one raises ``WorkflowConflict``."""
        row = await self._pool.fetchrow(
            _CREATE, tenant_id, conversation_id, flow, step, _json(data), fencing_token
        )
        if row is not None:
            return _state(row)
        raise await self._refusal(tenant_id, conversation_id, fencing_token, None)

    async def update(
        self,
        tenant_id: str,
        conversation_id: str,
        *,
        expected_version: int,
        fencing_token: int,
        step: str,
        data: Mapping[str, Any],
        flow: str | None = None,
    ) -> WorkflowState:
        """Move to ``step`` with ``data`` (and ``flow`` if given) if at ``expected_version``."""
        row = await self._pool.fetchrow(
            _UPDATE,
            tenant_id,
            conversation_id,
            flow,
            step,
            _json(data),
            fencing_token,
            expected_version,
        )
        if row is not None:
            return _state(row)
        raise await self._refusal(tenant_id, conversation_id, fencing_token, expected_version)

    async def delete(
        self, tenant_id: str, conversation_id: str, *, expected_version: int, fencing_token: int
    ) -> None:
        """End the flow: remove the row if still at ``expected_version``."""
        row = await self._pool.fetchrow(
            _DELETE, tenant_id, conversation_id, fencing_token, expected_version
        )
        if row is None:
            raise await self._refusal(tenant_id, conversation_id, fencing_token, expected_version)

    async def _refusal(
        self, tenant_id: str, conversation_id: str, token: int, expected_version: int | None
    ) -> Exception:
        """Why a guarded write changed nothing (read after the fact, for the message only)."""
        found = await self._pool.fetchrow(_DIAGNOSE, tenant_id, conversation_id)
        assert found is not None  # the LEFT JOIN from one row always returns one row
        where = f"conversation {conversation_id!r} of tenant {tenant_id!r}"
        if found["current_token"] is None:
            return UnknownConversation(f"{where} does not exist")
        newest = max(found["current_token"], found["row_token"] or 0)
        if token < newest:
            return StaleFencingToken(
                f"workflow write to {where} refused: fencing token {token} is older than the "
                f"current {newest}"
            )
        if expected_version is None:
            return WorkflowConflict(
                f"{where} is already in a flow (version {found['version']}); update it instead"
            )
        if found["version"] is None:
            return WorkflowNotFound(f"{where} has no workflow state to change")
        return WorkflowConflict(
            f"workflow of {where} changed: expected version {expected_version}, "
            f"found {found['version']}; read it again and retry"
        )


def _json(data: Mapping[str, Any]) -> str:
    if not isinstance(data, Mapping):
        raise TypeError(f"workflow data must be a JSON object, got {type(data).__name__}")
    return json.dumps(dict(data), ensure_ascii=False)


def _state(row: asyncpg.Record) -> WorkflowState:
    return WorkflowState(
        flow=row["flow"],
        step=row["step"],
        data=json.loads(row["data"]),
        version=row["version"],
        fencing_token=row["fencing_token"],
        updated_at=row["updated_at"],
    )
