"""Remembers what turns learned: facts, summaries, embedded texts (memory.update.requested)."""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from dispatcher.turns import TurnGuard
from events.streams import MEMORY_UPDATE_REQUESTED
from events.types.memory import MemoryUpdateRequested
from libs.errors import Drop, Reject
from libs.resources import Resources
from libs.streams import Consumer, Handler, Received
from memory_manager.config import MemoryConfig
from memory_manager.embedders import Embedder, build_embedder
from memory_manager.errors import EmbeddingDimensionMismatch, UnknownConversation
from memory_manager.updates import MemoryUpdater
from memory_manager.vector_search import check_embedding_dimension

_log = structlog.get_logger("atende.memory")


def memory_handler(
    pool: asyncpg.Pool, embedder: Embedder, config: MemoryConfig, *, turns: TurnGuard
) -> Handler:
    """Return a handler applying each memory update once; stale turns' updates are dropped.

    The embedder's and the table's dimensions are checked against the config before the first
    update is applied; a mismatch fails every delivery with a message saying what to change.
    """
    if embedder.dimension != config.dimension:
        raise EmbeddingDimensionMismatch(
            f"embedder {embedder.model} makes {embedder.dimension}-dimension vectors but "
            f"memory.dimension is {config.dimension}"
        )
    updater = MemoryUpdater(pool, embedder, turns=turns, chunking=config.chunking)
    checked = asyncio.Event()
    check_lock = asyncio.Lock()

    async def ensure_checked() -> None:
        async with check_lock:
            if not checked.is_set():
                async with pool.acquire() as connection:
                    await check_embedding_dimension(connection, config.dimension)
                checked.set()

    async def remember(received: Received) -> None:
        if not checked.is_set():
            await ensure_checked()
        envelope = received.envelope
        if not isinstance(envelope.payload, MemoryUpdateRequested):
            raise Reject(f"expected a memory update, got {envelope.type}")
        try:
            outcome = await updater.apply(envelope)
        except UnknownConversation as exc:
            raise Reject(str(exc)) from exc
        if outcome.status == "stale":
            raise Drop(
                f"memory update {envelope.id} is from a stale turn: token "
                f"{envelope.payload.fencing_token} < current {outcome.current_token}"
            )
        _log.debug(
            "memory updated",
            facts_changed=outcome.facts_changed,
            chunks_written=outcome.chunks_written,
        )

    return remember


def _build(resources: Resources) -> Handler:
    if resources.postgres is None:
        raise RuntimeError("the memory manager needs Postgres (DATABASE_URL)")
    config = resources.section("memory", MemoryConfig) or MemoryConfig()
    embedder = build_embedder(config)
    turns = TurnGuard(
        resources.postgres,
        resources.redis,
        resources.keys,
        partitions=resources.settings.stream_partitions,
    )
    return memory_handler(resources.postgres, embedder, config, turns=turns)


consumer = Consumer(
    name="memory-manager",
    streams=(MEMORY_UPDATE_REQUESTED,),
    handler_factory=_build,
    accepts={MEMORY_UPDATE_REQUESTED: frozenset({MemoryUpdateRequested.event_version})},
    tags=frozenset({"postgres"}),
)
