"""Claim, number and append an inbound event in one atomic step.

One Lua script on the conversation's partition slot claims the dedup key (with a TTL),
increments the conversation's ``seq`` for messages, and appends the event: a duplicate webhook
appends nothing, and no crash between steps can leave a claim without its event or a ``seq``
without its message. The envelope is serialized once with a marker where ``seq`` goes; the
script splices the number in, so Redis never parses JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from events.envelope import Envelope
from events.partitions import partition_for
from events.registry import encode
from libs.keys import KeySpace

# A seq no conversation reaches; serialized as the top-level payload field it marks.
SEQ_MARKER = 4_611_686_018_427_387_903
_MARKER_JSON = f'"seq":{SEQ_MARKER}'.encode()

_APPEND = """
if not redis.call('SET', KEYS[1], ARGV[7], 'NX', 'EX', ARGV[1]) then
  return {0, redis.call('GET', KEYS[1]) or ''}
end
local seq = ''
if ARGV[6] ~= '' then seq = redis.call('INCR', KEYS[2]) end
local envelope = ARGV[5]
if ARGV[6] ~= '' then envelope = ARGV[5] .. seq .. ARGV[6] end
local id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*',
  'type', ARGV[3], 'version', ARGV[4], 'envelope', envelope)
redis.call('SET', KEYS[1], id, 'XX', 'KEEPTTL')
return {1, id, seq}
"""


@dataclass(frozen=True, slots=True)
class AppendRequest:
    """One event to append unless ``dedup_key`` was claimed within ``dedup_ttl_s``."""

    envelope: Envelope[Any]
    dedup_scope: str
    dedup_key: str
    numbered: bool
    dedup_ttl_s: int | None = None


@dataclass(frozen=True, slots=True)
class Appended:
    """The outcome of one append: the entry id and seq, or the duplicate's original entry."""

    duplicate: bool
    entry_id: str
    seq: int | None


class InboundAppender:
    """Appends inbound events exactly once per dedup key.

    ``numbered`` events (messages) get the conversation's next ``seq`` spliced into their
    payload; status events are appended as they are.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: KeySpace,
        *,
        partitions: int,
        maxlen: int,
        dedup_ttl_s: int = 7 * 24 * 3600,
    ) -> None:
        if dedup_ttl_s < 1:
            raise ValueError(f"dedup_ttl_s must be positive, got {dedup_ttl_s}")
        self._redis = redis
        self._keys = keys
        self._partitions = partitions
        self._maxlen = maxlen
        self._dedup_ttl_s = dedup_ttl_s
        self._script = redis.register_script(_APPEND)

    def arguments(
        self,
        envelope: Envelope[Any],
        dedup_scope: str,
        dedup_key: str,
        *,
        numbered: bool,
        dedup_ttl_s: int | None = None,
    ) -> tuple[list[str], list[bytes | str | int]]:
        """The script's keys and arguments for ``envelope`` (exposed for pipelining)."""
        partition = partition_for(envelope.tenant_id, envelope.conversation_id, self._partitions)
        keys = [
            self._keys.dedup(dedup_scope, partition, dedup_key),
            self._keys.sequence(partition, envelope.tenant_id, envelope.conversation_id),
            self._keys.stream(envelope.stream, partition),
        ]
        data = encode(envelope)
        head, tail = data, b""
        if numbered:
            head, marker, tail = data.partition(_MARKER_JSON)
            if not marker:
                raise ValueError(f"{envelope.type} has no seq marker to number")
            head += b'"seq":'
        args: list[bytes | str | int] = [
            dedup_ttl_s or self._dedup_ttl_s,
            self._maxlen,
            envelope.type,
            envelope.version,
            head,
            tail,
            "claimed",
        ]
        return keys, args

    async def append(
        self, envelope: Envelope[Any], dedup_scope: str, dedup_key: str, *, numbered: bool
    ) -> Appended:
        """Append ``envelope`` unless ``dedup_key`` was seen within the dedup TTL."""
        keys, args = self.arguments(envelope, dedup_scope, dedup_key, numbered=numbered)
        return parse_reply(await self._script(keys=keys, args=args))

    async def append_many(self, items: list[AppendRequest]) -> list[Appended]:
        """Append several events in one pipelined round trip (each still atomic on its own)."""
        if not items:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for item in items:
                keys, args = self.arguments(
                    item.envelope,
                    item.dedup_scope,
                    item.dedup_key,
                    numbered=item.numbered,
                    dedup_ttl_s=item.dedup_ttl_s,
                )
                await self._script(keys=keys, args=args, client=pipe)
            replies = await pipe.execute()
        return [parse_reply(reply) for reply in replies]


def parse_reply(reply: list[Any]) -> Appended:
    """Turn the script's reply into an ``Appended``."""
    if int(reply[0]) == 0:
        original = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
        return Appended(duplicate=True, entry_id=original, seq=None)
    entry_id = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
    seq = int(reply[2]) if reply[2] not in (b"", "", None) else None
    return Appended(duplicate=False, entry_id=entry_id, seq=seq)
