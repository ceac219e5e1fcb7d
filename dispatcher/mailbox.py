"""A conversation's mailbox and its one open turn, kept in Redis (see docs/CONVERSATIONS.md).

Messages wait in the mailbox in ``seq`` order; a turn takes them and holds a fencing token
that only grows. Each transition is one script (``dispatcher.mailbox_scripts``) on the
conversation's partition slot, so a crash between two steps cannot lose or double a message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from dispatcher import mailbox_scripts
from events.ids import new_event_id
from events.partitions import partition_for
from libs.keys import KeySpace
from libs.leases import DEFAULT_FENCE_RETENTION_MS, slot_name

MAX_MESSAGES_PER_TURN = 100
Policy = Literal["enqueue", "merge", "interrupt", "reject", "human"]


@dataclass(frozen=True, slots=True)
class WaitingMessage:
    """An inbound message as the mailbox keeps it: enough to name it in the turn's event."""

    seq: int
    event_id: str
    provider_message_id: str

    def member(self) -> str:
        """The sorted-set member (compact JSON; the scripts read ``seq`` from it)."""
        return json.dumps(
            {"seq": self.seq, "event_id": self.event_id, "id": self.provider_message_id},
            separators=(",", ":"),
        )

    @classmethod
    def from_member(cls, raw: bytes | str) -> WaitingMessage:
        """Parse a member written by ``member``."""
        data = json.loads(raw)
        return cls(int(data["seq"]), str(data["event_id"]), str(data["id"]))


@dataclass(frozen=True, slots=True)
class ConversationRef:
    """A conversation and its partition."""

    tenant_id: str
    conversation_id: str
    partition: int

    @property
    def member(self) -> str:
        """How the per-partition due sets name it (tenant ids hold no ':')."""
        return f"{self.tenant_id}:{self.conversation_id}"


@dataclass(frozen=True, slots=True)
class Turn:
    """An open turn: its id, its token, which attempt, and the messages it answers."""

    conversation: ConversationRef
    turn_id: str
    token: int
    attempt: int
    messages: tuple[WaitingMessage, ...]


@dataclass(frozen=True, slots=True)
class MergePolicy:
    """How long a ``merge`` conversation waits after its last and its first message."""

    window_ms: int = 1_500
    max_wait_ms: int = 6_000


Outcome = Literal[
    "opened",  # a turn was opened (or resumed): ``turn`` is it
    "superseded",  # interrupt: ``turn`` replaces ``superseded`` (turn id, token)
    "queued",  # a turn is open; the message waits for the next
    "waiting",  # merge window or sequence gap: the turn may open at ``due_ms``
    "rejected",  # reject: a turn is open; the message joins none
    "duplicate",  # already admitted; ``turn`` is set when its turn is still open
    "human",  # the conversation is a human's: no turn
    "busy",  # a turn is open
    "empty",  # nothing waits
    "closed",  # the turn closed; ``turn`` is the next one if one opened
    "stale",  # the token is not the open turn's
    "exhausted",  # a stalled turn ran out of attempts: hand it to a human, then close it
    "not_due",  # the turn's deadline (or the wake-up) has not come yet
    "gone",  # no turn is open
]


@dataclass(frozen=True, slots=True)
class Transition:
    """What a mailbox operation did."""

    outcome: Outcome
    turn: Turn | None = None
    superseded: tuple[str, int] | None = None
    due_ms: int | None = None
    handed_over: tuple[WaitingMessage, ...] = ()


class Mailbox:
    """Mailboxes and turns of every conversation under one key namespace.

    ``turn_ttl_ms`` is a turn's deadline: a turn neither closed nor extended by then is
    resumed by the sweep. ``gap_wait_ms`` is how long messages wait for a missing ``seq``
    before it is given up on. ``holder`` names this process in the lease.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: KeySpace,
        *,
        partitions: int,
        holder: str,
        turn_ttl_ms: int = 120_000,
        gap_wait_ms: int = 5_000,
        fence_retention_ms: int = DEFAULT_FENCE_RETENTION_MS,
    ) -> None:
        if turn_ttl_ms <= 0 or gap_wait_ms < 0:
            raise ValueError(
                f"need turn_ttl_ms > 0 and gap_wait_ms >= 0, got {turn_ttl_ms}, {gap_wait_ms}"
            )
        self._redis = redis
        self._keys = keys
        self._partitions = partitions
        self._holder = holder
        self._turn_ttl_ms = turn_ttl_ms
        self._gap_wait_ms = gap_wait_ms
        self._fence_ttl_ms = max(fence_retention_ms, turn_ttl_ms)
        self._admit = redis.register_script(mailbox_scripts.ADMIT)
        self._open_waiting = redis.register_script(mailbox_scripts.OPEN_WAITING)
        self._close = redis.register_script(mailbox_scripts.CLOSE)
        self._resume = redis.register_script(mailbox_scripts.RESUME)
        self._extend = redis.register_script(mailbox_scripts.EXTEND)
        self._release = redis.register_script(mailbox_scripts.RELEASE)

    def conversation(self, tenant_id: str, conversation_id: str) -> ConversationRef:
        """The reference of a conversation, with its partition."""
        partition = partition_for(tenant_id, conversation_id, self._partitions)
        return ConversationRef(tenant_id, conversation_id, partition)

    def turn_lease_name(self, conversation: ConversationRef) -> str:
        """Name of the conversation's turn lease (``dispatcher.turns`` checks its fence)."""
        return self._keys.turn_lease_name(
            conversation.partition, conversation.tenant_id, conversation.conversation_id
        )

    async def admit(
        self,
        conversation: ConversationRef,
        message: WaitingMessage,
        policy: Policy,
        merge: MergePolicy | None = None,
    ) -> Transition:
        """Put ``message`` in the mailbox and open a turn if ``policy`` allows."""
        merge = merge or MergePolicy()
        extra: list[str | int] = [message.member(), policy, merge.window_ms, merge.max_wait_ms]
        reply = await self._run(self._admit, conversation, message.seq, extra)
        return self._transition(conversation, reply)

    async def open_waiting(self, conversation: ConversationRef) -> Transition:
        """A wake-up came due (merge window, sequence gap): open a turn over what may go.

        ``busy`` when a turn is open, ``not_due`` when the wake-up was pushed back,
        ``waiting`` when a gap still holds the messages back, ``empty`` when none wait.
        """
        reply = await self._run(self._open_waiting, conversation, 0)
        return self._transition(conversation, reply)

    async def close(
        self, conversation: ConversationRef, token: int, policy: Policy, merge: MergePolicy
    ) -> Transition:
        """Close the open turn if ``token`` is its own; open the next one over the mailbox.

        With ``policy`` ``human`` (the turn ended in a handoff) the waiting messages are
        handed over with it (``handed_over``) instead.
        """
        reply = await self._run(self._close, conversation, token, [policy, merge.window_ms])
        transition = self._transition(conversation, reply)
        if transition.outcome in ("opened", "waiting", "empty"):
            # Closed; and the next turn opened at once, or waits behind a gap, or none waits.
            return Transition("closed", transition.turn, due_ms=transition.due_ms)
        return transition

    async def resume(self, conversation: ConversationRef, max_attempts: int) -> Transition:
        """Reopen the turn under a new token if its deadline passed; ``exhausted`` past
        ``max_attempts``."""
        reply = await self._run(self._resume, conversation, 0, [max_attempts])
        return self._transition(conversation, reply)

    async def extend(self, conversation: ConversationRef, token: int) -> bool:
        """Push the open turn's deadline a turn TTL from now; ``False`` if not its token."""
        return bool(await self._run(self._extend, conversation, token))

    async def release(self, conversation: ConversationRef) -> int:
        """Forget what waits for a conversation a human held; return how many messages (not
        tombstones) were dropped. Its next new message opens a turn at once."""
        reply = await self._run(self._release, conversation, 0)
        assert isinstance(reply, list)
        return int(reply[0])

    async def current(self, conversation: ConversationRef) -> Turn | None:
        """The conversation's open turn (without its messages), if one is open."""
        turn_id, token, attempt = await self._redis.hmget(
            self._keys_of(conversation)[1], ["turn_id", "token", "attempt"]
        )
        if turn_id is None or token is None:
            return None
        return Turn(conversation, _text(turn_id), int(token), int(attempt or 1), ())

    async def due_turns(self, partition: int, limit: int) -> list[ConversationRef]:
        """Up to ``limit`` conversations of ``partition`` whose turn passed its deadline."""
        return await self._due(self._keys.turns_due(partition), partition, limit)

    async def due_wakeups(self, partition: int, limit: int) -> list[ConversationRef]:
        """Up to ``limit`` conversations of ``partition`` whose merge window or gap wait
        ended (``open_waiting`` each)."""
        return await self._due(self._keys.wake_due(partition), partition, limit)

    async def _due(self, key: str, partition: int, limit: int) -> list[ConversationRef]:
        seconds, micros = await self._redis.time()
        now_ms = seconds * 1000 + micros // 1000
        members = await self._redis.zrangebyscore(key, "-inf", now_ms, start=0, num=limit)
        refs = []
        for raw in members:
            assert isinstance(raw, bytes | str)
            tenant_id, _, conversation_id = _text(raw).partition(":")
            refs.append(ConversationRef(tenant_id, conversation_id, partition))
        return refs

    async def _run(
        self,
        script: AsyncScript,
        conversation: ConversationRef,
        first: int,
        extra: Sequence[str | int] = (),
    ) -> list[bytes] | int:
        args = [
            first,
            self._holder,
            self._turn_ttl_ms,
            self._fence_ttl_ms,
            conversation.member,
            new_event_id(),
            MAX_MESSAGES_PER_TURN,
            self._gap_wait_ms,
            *extra,
        ]
        return await script(keys=self._keys_of(conversation), args=args)  # type: ignore[no-any-return]

    def _keys_of(self, conversation: ConversationRef) -> list[str]:
        where = (conversation.partition, conversation.tenant_id, conversation.conversation_id)
        lease = slot_name(self.turn_lease_name(conversation))
        return [
            self._keys.mailbox(*where),
            self._keys.turn(*where),
            self._keys.lease(lease),
            self._keys.fence(lease),
            self._keys.turns_due(conversation.partition),
            self._keys.wake_due(conversation.partition),
        ]

    def _transition(self, conversation: ConversationRef, reply: list[bytes] | int) -> Transition:
        assert isinstance(reply, list)
        parts = [_text(part) for part in reply]
        outcome: Outcome = parts[0]  # type: ignore[assignment]
        if outcome == "superseded":
            superseded = (parts[1], int(parts[2]))
            return Transition(outcome, _turn(conversation, parts[3:]), superseded=superseded)
        if outcome in ("opened", "exhausted") or (outcome == "duplicate" and len(parts) > 1):
            return Transition(outcome, _turn(conversation, parts[1:]))
        if outcome == "closed" and len(parts) > 1:
            return Transition(
                outcome, handed_over=tuple(map(WaitingMessage.from_member, parts[1:]))
            )
        if outcome == "waiting":
            return Transition(outcome, due_ms=int(float(parts[1])))
        return Transition(outcome)


def _turn(conversation: ConversationRef, parts: list[str]) -> Turn:
    turn_id, token, attempt, *members = parts
    messages = tuple(WaitingMessage.from_member(member) for member in members)
    return Turn(conversation, turn_id, int(token), int(attempt), messages)


def _text(value: bytes | str | int) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
