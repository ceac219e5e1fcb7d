"""Running several consumers in one process until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence

import structlog

from libs.streams.runner import ConsumerRunner

_log = structlog.get_logger("atende.worker")


def stop_on_signals(stop: asyncio.Event) -> None:
    """Set ``stop`` on SIGTERM and SIGINT (Kubernetes sends SIGTERM, a terminal Ctrl-C)."""
    loop = asyncio.get_running_loop()

    def request_stop(signame: str) -> None:
        if stop.is_set():
            _log.warning("already stopping; waiting for in-flight work", signal=signame)
            return
        _log.info("stop requested", signal=signame)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, request_stop, sig.name)


class Worker:
    """Starts consumer runners, waits for a stop request, and stops them all in parallel."""

    def __init__(self, runners: Sequence[ConsumerRunner]) -> None:
        self.runners = list(runners)

    async def start(self) -> None:
        """Start every runner."""
        for runner in self.runners:
            await runner.start()

    async def stop(self) -> None:
        """Stop every runner; each gets its own shutdown grace, in parallel."""
        await asyncio.gather(*(runner.stop() for runner in self.runners))

    async def run_until(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then shut down in phases."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()
