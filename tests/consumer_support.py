"""Running discovered consumers in a test the way a worker process runs them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from atende.composition import build_runners, close_handlers
from libs.resources import Resources
from libs.streams import Consumer, ConsumerRunner


@asynccontextmanager
async def consumers_running(
    consumers: Sequence[Consumer], resources: Resources
) -> AsyncIterator[list[ConsumerRunner]]:
    """Start a runner per consumer on ``resources``; stop them and close their handlers after."""
    runners = build_runners(list(consumers), resources)
    for runner in runners:
        await runner.start()
    try:
        yield runners
    finally:
        for runner in runners:
            await runner.stop()
        await close_handlers(runners)
