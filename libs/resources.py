"""What a process hands to handler factories: its clients, publisher and settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import asyncpg
import redis.asyncio as aioredis

from events.registry import EventRegistry
from libs.keys import KeySpace
from libs.settings import Settings
from libs.streams.publisher import Publisher

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Resources:
    """Dependencies built once by the composition root and passed to every consumer."""

    settings: Settings
    redis: aioredis.Redis
    keys: KeySpace
    registry: EventRegistry
    publisher: Publisher
    postgres: asyncpg.Pool | None = None
    # Sections of the config file (``ATENDE_CONFIG``) by their top-level key, e.g. ``agents``;
    # libs cannot name their types, so each consumer asks for its own with ``section``.
    config: Mapping[str, object] = field(default_factory=dict)

    def section(self, key: str, kind: type[S]) -> S | None:
        """The config section under ``key`` if the file has one, checked to be a ``kind``."""
        value = self.config.get(key)
        if value is None:
            return None
        if not isinstance(value, kind):
            raise TypeError(f"config section {key!r} is a {type(value).__name__}, not {kind}")
        return value
