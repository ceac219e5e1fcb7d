"""Working memory: a conversation's recent turns, pending tool states and scratch values in Redis.

It lives as long as the conversation is active: every write renews the time to live of both
keys, and an idle conversation's working memory expires. It is bounded:

- turns: at most ``max_turns`` and ``max_turn_bytes`` together; the oldest are dropped first,
  in the same Lua script that appends, so no reader ever sees an over-full list;
- values (scratch and pending tool states): at most ``max_values`` of at most
  ``max_value_bytes`` each; a write past either bound is refused (``WorkingMemoryFull``)
  rather than evicting a value some step still counts on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import redis.asyncio as aioredis

from libs.keys import KeySpace
from memory_manager.config import WorkingMemoryConfig
from memory_manager.errors import WorkingMemoryFull
from memory_manager.keys import WorkingMemoryKeys

TurnRole = Literal["contact", "agent", "operator", "tool"]

_SCRATCH = "scratch:"
_TOOL = "tool:"

# KEYS: turns, values. ARGV: entry, max_turns, max_bytes, ttl_ms. Returns the turns kept.
# The byte loop runs at most max_turns times and always keeps the newest entry (whose size the
# caller checked against max_bytes).
_APPEND_TURN = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
local entries = redis.call('LRANGE', KEYS[1], 0, -1)
local total = 0
for i = 1, #entries do total = total + #entries[i] end
local drop = 0
while total > tonumber(ARGV[3]) and drop < #entries - 1 do
  drop = drop + 1
  total = total - #entries[drop]
end
if drop > 0 then redis.call('LTRIM', KEYS[1], drop, -1) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return #entries - drop
"""

# KEYS: turns, values. ARGV: field, value, max_values, ttl_ms. Returns -1 when full.
_SET_VALUE = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0
    and redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[3]) then
  return -1
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return redis.call('HLEN', KEYS[2])
"""

# KEYS: turns, values. ARGV: field, ttl_ms. Returns 1 when the field existed.
_DELETE_VALUE = """
local removed = redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return removed
"""


@dataclass(frozen=True, slots=True)
class WorkingTurn:
    """One turn remembered in working memory."""

    role: TurnRole
    text: str
    at: datetime


@dataclass(frozen=True, slots=True)
class WorkingMemorySnapshot:
    """Everything a conversation's working memory holds, read at one instant."""

    turns: tuple[WorkingTurn, ...]
    scratch: Mapping[str, Any]
    pending_tools: Mapping[str, Any]

    @property
    def empty(self) -> bool:
        """Whether nothing is remembered (never written, cleared, or expired)."""
        return not (self.turns or self.scratch or self.pending_tools)


class WorkingMemory:
    """Reads and writes working memory of any conversation of one deployment."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: KeySpace,
        *,
        partitions: int,
        config: WorkingMemoryConfig | None = None,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._partitions = partitions
        self.config = config or WorkingMemoryConfig()
        self._ttl_ms = self.config.ttl_s * 1000
        self._append = redis.register_script(_APPEND_TURN)
        self._set = redis.register_script(_SET_VALUE)
        self._delete = redis.register_script(_DELETE_VALUE)

    def keys_of(self, tenant_id: str, conversation_id: str) -> WorkingMemoryKeys:
        """Where ``conversation_id``'s working memory lives."""
        return WorkingMemoryKeys.of(
            self._keys, tenant_id, conversation_id, partitions=self._partitions
        )

    async def append_turn(
        self, tenant_id: str, conversation_id: str, role: TurnRole, text: str
    ) -> int:
        """Remember a turn; drop the oldest past the bounds. Return how many turns are kept."""
        entry = json.dumps(
            {"role": role, "text": text, "at": datetime.now(UTC).isoformat()},
            ensure_ascii=False,
        )
        size = len(entry.encode())
        if size > self.config.max_turn_bytes:
            raise WorkingMemoryFull(
                f"working memory of conversation {conversation_id!r}: a turn of {size} bytes "
                f"exceeds max_turn_bytes ({self.config.max_turn_bytes})"
            )
        where = self.keys_of(tenant_id, conversation_id)
        kept = await self._append(
            keys=[where.turns, where.values],
            args=[entry, self.config.max_turns, self.config.max_turn_bytes, self._ttl_ms],
        )
        return int(kept)

    async def set_scratch(
        self, tenant_id: str, conversation_id: str, name: str, value: object
    ) -> None:
        """Remember ``value`` (JSON-serialisable) under ``name``, replacing what was there."""
        await self._set_value(tenant_id, conversation_id, _SCRATCH + _field_name(name), value)

    async def delete_scratch(self, tenant_id: str, conversation_id: str, name: str) -> bool:
        """Forget the scratch value ``name``; whether it was there."""
        return await self._delete_value(tenant_id, conversation_id, _SCRATCH + _field_name(name))

    async def set_pending_tool(
        self, tenant_id: str, conversation_id: str, tool_call_id: str, state: Mapping[str, Any]
    ) -> None:
        """Remember the state of a tool call the turn is waiting for."""
        field = _TOOL + _field_name(tool_call_id)
        await self._set_value(tenant_id, conversation_id, field, dict(state))

    async def clear_pending_tool(
        self, tenant_id: str, conversation_id: str, tool_call_id: str
    ) -> bool:
        """Forget a tool call once its result arrived; whether it was pending."""
        field = _TOOL + _field_name(tool_call_id)
        return await self._delete_value(tenant_id, conversation_id, field)

    async def read(self, tenant_id: str, conversation_id: str) -> WorkingMemorySnapshot:
        """Everything remembered, both keys read in one MULTI so they agree."""
        where = self.keys_of(tenant_id, conversation_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lrange(where.turns, 0, -1)
            pipe.hgetall(where.values)
            raw_turns, raw_values = await pipe.execute()
        turns = tuple(_turn(raw) for raw in raw_turns)
        scratch: dict[str, Any] = {}
        pending: dict[str, Any] = {}
        for raw_field, raw_value in raw_values.items():
            field = _text(raw_field)
            value = json.loads(raw_value)
            if field.startswith(_SCRATCH):
                scratch[field.removeprefix(_SCRATCH)] = value
            elif field.startswith(_TOOL):
                pending[field.removeprefix(_TOOL)] = value
        return WorkingMemorySnapshot(turns, scratch, pending)

    async def clear(self, tenant_id: str, conversation_id: str) -> None:
        """Forget everything about the conversation (e.g. when it closes)."""
        where = self.keys_of(tenant_id, conversation_id)
        await self._redis.delete(where.turns, where.values)

    async def _set_value(
        self, tenant_id: str, conversation_id: str, field: str, value: object
    ) -> None:
        try:
            encoded = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise WorkingMemoryFull(
                f"working memory value {field!r} is not JSON-serialisable: {exc}"
            ) from exc
        size = len(encoded.encode())
        if size > self.config.max_value_bytes:
            raise WorkingMemoryFull(
                f"working memory value {field!r} of conversation {conversation_id!r} has "
                f"{size} bytes, more than max_value_bytes ({self.config.max_value_bytes})"
            )
        where = self.keys_of(tenant_id, conversation_id)
        count = await self._set(
            keys=[where.turns, where.values],
            args=[field, encoded, self.config.max_values, self._ttl_ms],
        )
        if int(count) < 0:
            raise WorkingMemoryFull(
                f"working memory of conversation {conversation_id!r} already holds "
                f"max_values ({self.config.max_values}) values; delete one before adding "
                f"{field!r}"
            )

    async def _delete_value(self, tenant_id: str, conversation_id: str, field: str) -> bool:
        where = self.keys_of(tenant_id, conversation_id)
        removed = await self._delete(keys=[where.turns, where.values], args=[field, self._ttl_ms])
        return int(removed) > 0


def _field_name(name: str) -> str:
    if not name or len(name) > 256:
        raise ValueError(f"working memory names must have 1 to 256 characters, got {name!r}")
    return name


def _turn(raw: bytes | str) -> WorkingTurn:
    data = json.loads(raw)
    return WorkingTurn(role=data["role"], text=data["text"], at=datetime.fromisoformat(data["at"]))


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
