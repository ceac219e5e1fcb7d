"""What a process hands to handler factories: its clients, publisher and settings."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis

from events.registry import EventRegistry
from libs.keys import KeySpace
from libs.settings import Settings
from libs.streams.publisher import Publisher


@dataclass(frozen=True, slots=True)
class Resources:
    """Dependencies built once by the composition root and passed to every consumer."""

    settings: Settings
    redis: aioredis.Redis
    keys: KeySpace
    registry: EventRegistry
    publisher: Publisher
    postgres: asyncpg.Pool | None = None
