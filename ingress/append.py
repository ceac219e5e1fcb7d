"""Claim, number and append inbound events, each in one atomic step.

A Lua script on the conversation's partition slot claims the dedup key (with a TTL),
increments the conversation's ``seq`` for messages, and appends the event: a duplicate webhook
appends nothing, and no crash between steps can leave a claim without its event or a ``seq``
without its message. The envelope is serialized once with a marker where ``seq`` goes; the
script splices the number in, so Redis never parses JSON.

The script never trims: entries leave a stream only once every group has acknowledged or
dead-lettered them (``libs.streams``). A partition's stream that already holds ``capacity``
entries refuses the event instead (``BacklogFull``), before anything is claimed or counted.

Every key of a conversation carries its partition's hash tag, so one script call can append
all the events of a batch that fall in the same partition: a batch costs one call per
partition, not one per event, and stays valid on Redis Cluster.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from events.envelope import Envelope
from events.partitions import partition_for
from events.registry import encode
from libs.keys import KeySpace

# A seq no conversation reaches; serialized as the top-level payload field it marks.
SEQ_MARKER = 4_611_686_018_427_387_903
_MARKER_JSON = f'"seq":{SEQ_MARKER}'.encode()

# KEYS: per event, its dedup key, sequence key and stream (one partition's slot).
# ARGV[1]: the capacity of a partition's stream; then per event: dedup TTL, type, version, head,
# tail (empty tail: not numbered). Replies three values per event: 1, entry id, seq (or '')
# when appended; 0, the original entry id, '' when the dedup key was already claimed; 2, the
# stream's length, '' when the stream is at capacity.
#
# Why each step sits inside the one script: the claim is looked up and the length read in the
# same instant the event is appended, so no concurrent webhook can slip between the check and
# the write (two copies cannot both see "unclaimed", two events cannot both take the last
# place). A duplicate is answered before the length is read: an event already stored stays a
# duplicate, not a refusal, however full its stream is. A refused event has written nothing,
# no claim (its retry must not pass for a duplicate), no seq (the conversation's numbering
# keeps no gap), no entry. The claim is written after the entry so that it names it.
_APPEND = """
local replies = {}
local capacity = tonumber(ARGV[1])
for i = 0, #KEYS / 3 - 1 do
  local dedup, sequence, stream = KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3]
  local a = 1 + 5 * i
  local original = redis.call('GET', dedup)
  if original then
    replies[#replies + 1] = 0
    replies[#replies + 1] = original
    replies[#replies + 1] = ''
  else
    local length = redis.call('XLEN', stream)
    if length >= capacity then
      replies[#replies + 1] = 2
      replies[#replies + 1] = length
      replies[#replies + 1] = ''
    else
      local envelope, seq = ARGV[a + 4], ''
      if ARGV[a + 5] ~= '' then
        seq = redis.call('INCR', sequence)
        envelope = envelope .. seq .. ARGV[a + 5]
      end
      local id = redis.call('XADD', stream, '*',
        'type', ARGV[a + 2], 'version', ARGV[a + 3], 'envelope', envelope)
      redis.call('SET', dedup, id, 'EX', ARGV[a + 1])
      replies[#replies + 1] = 1
      replies[#replies + 1] = id
      replies[#replies + 1] = seq
    end
  end
end
return replies
"""
_APPEND_SHA = hashlib.sha1(_APPEND.encode()).hexdigest()  # noqa: S324 - Redis names scripts so
_FULL = 2  # the script's first reply value for an event refused at capacity


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


@dataclass(frozen=True, slots=True)
class BacklogFull:
    """The outcome of a refused append: the partition's stream already held ``capacity`` entries.

    Nothing of the event was written: no dedup claim, no ``seq``, no entry.
    """

    stream: str
    partition: int
    length: int
    capacity: int


AppendResult = Appended | BacklogFull


@dataclass(slots=True)
class _PartitionCall:
    """The events of a batch that fall in one partition, and where their results go."""

    partition: int
    positions: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    args: list[bytes | str | int] = field(default_factory=list)


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
        capacity: int,
        dedup_ttl_s: int = 7 * 24 * 3600,
    ) -> None:
        if dedup_ttl_s < 1:
            raise ValueError(f"dedup_ttl_s must be positive, got {dedup_ttl_s}")
        if capacity < 1:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self._redis = redis
        self._keys = keys
        self._partitions = partitions
        self._capacity = capacity
        self._dedup_ttl_s = dedup_ttl_s

    async def append(
        self, envelope: Envelope[Any], dedup_scope: str, dedup_key: str, *, numbered: bool
    ) -> AppendResult:
        """Append ``envelope`` unless ``dedup_key`` was seen within the dedup TTL."""
        request = AppendRequest(envelope, dedup_scope, dedup_key, numbered=numbered)
        return (await self.append_many([request]))[0]

    async def append_many(self, items: list[AppendRequest]) -> list[AppendResult]:
        """Append several events in one round trip: one script call per partition.

        Each event's result is ``Appended`` or, when its partition's stream is at capacity,
        ``BacklogFull``; the events of one batch are refused or appended independently.

        The script is called by its SHA; only when Redis answers NOSCRIPT (first use, or after
        a restart or SCRIPT FLUSH) is it loaded and the refused calls sent again. A refused
        call ran nothing, so sending it again cannot append twice.
        """
        calls = self._calls(items)
        replies = await self._evalsha(calls)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            await self._redis.script_load(_APPEND)
            retried = await self._evalsha([calls[i] for i in missing])
            for index, reply in zip(missing, retried, strict=True):
                replies[index] = reply
        results: list[AppendResult | None] = [None] * len(items)
        for call, reply in zip(calls, replies, strict=True):
            if isinstance(reply, Exception):
                raise reply
            for n, position in enumerate(call.positions):
                values = reply[3 * n : 3 * n + 3]
                if int(values[0]) == _FULL:
                    results[position] = BacklogFull(
                        items[position].envelope.stream,
                        call.partition,
                        int(values[1]),
                        self._capacity,
                    )
                else:
                    results[position] = parse_reply(values)
        return [result for result in results if result is not None]

    def _calls(self, items: list[AppendRequest]) -> list[_PartitionCall]:
        by_partition: dict[int, _PartitionCall] = {}
        for position, item in enumerate(items):
            envelope = item.envelope
            partition = partition_for(
                envelope.tenant_id, envelope.conversation_id, self._partitions
            )
            call = by_partition.get(partition)
            if call is None:
                call = by_partition[partition] = _PartitionCall(partition, args=[self._capacity])
            call.positions.append(position)
            call.keys += (
                self._keys.dedup(item.dedup_scope, partition, item.dedup_key),
                self._keys.sequence(partition, envelope.tenant_id, envelope.conversation_id),
                self._keys.stream(envelope.stream, partition),
            )
            head, tail = _split_at_seq(envelope, numbered=item.numbered)
            ttl = item.dedup_ttl_s or self._dedup_ttl_s
            call.args += (ttl, envelope.type, envelope.version, head, tail)
        return list(by_partition.values())

    async def _evalsha(self, calls: list[_PartitionCall]) -> list[Any]:
        if not calls:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for call in calls:
                pipe.execute_command("EVALSHA", _APPEND_SHA, len(call.keys), *call.keys, *call.args)
            return list(await pipe.execute(raise_on_error=False))


def _split_at_seq(envelope: Envelope[Any], *, numbered: bool) -> tuple[bytes, bytes]:
    """The serialized envelope cut where ``seq`` goes (head ends with ``"seq":``)."""
    data = encode(envelope)
    if not numbered:
        return data, b""
    head, marker, tail = data.partition(_MARKER_JSON)
    if not marker:
        raise ValueError(f"{envelope.type} has no seq marker to number")
    return head + b'"seq":', tail


def parse_reply(reply: list[Any]) -> Appended:
    """Turn one event's three reply values into an ``Appended``."""
    entry_id = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
    if int(reply[0]) == 0:
        return Appended(duplicate=True, entry_id=entry_id, seq=None)
    seq = int(reply[2]) if reply[2] not in (b"", "", None) else None
    return Appended(duplicate=False, entry_id=entry_id, seq=seq)
