"""The baselines of the ingress benchmark: aiohttp handlers that only store the raw body.

- ``bare``: one XADD per webhook — the least a webhook endpoint can do and still store what
  it was sent. The benchmark's target compares against this one.
- ``batched``: the same handler, but concurrent webhooks share one pipeline of XADDs
  (``libs.group_commit``, as the ingress batches its appends). No signature check, parsing,
  dedup, sequence, log or metrics: the ceiling of what batching alone can buy.

Run as ``python -m bench._bare_ingress URL STREAM PORT [--batched]``; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from aiohttp import web

from libs.group_commit import GroupCommit


def bare_app(redis: aioredis.Redis, stream: str) -> web.Application:
    """One route, one XADD per webhook."""

    async def webhook(request: web.Request) -> web.Response:
        body = await request.read()
        await redis.xadd(stream, {"body": body})
        return web.json_response({"status": "accepted"})

    return _one_route(webhook)


def batched_app(redis: aioredis.Redis, stream: str) -> web.Application:
    """One route; concurrent webhooks' XADDs go out in one pipeline."""

    async def append(bodies: list[bytes]) -> list[object]:
        async with redis.pipeline(transaction=False) as pipe:
            for body in bodies:
                pipe.xadd(stream, {"body": body})
            return list(await pipe.execute())

    commit: GroupCommit[bytes, object] = GroupCommit(append)

    async def webhook(request: web.Request) -> web.Response:
        await commit.submit([await request.read()])
        return web.json_response({"status": "accepted"})

    return _one_route(webhook)


def _one_route(handler: Callable[[web.Request], Awaitable[web.Response]]) -> web.Application:
    app = web.Application()
    app.router.add_post("/webhooks/{provider}/{channel_id}", handler)
    return app


async def serve(url: str, stream: str, port: int, *, batched: bool) -> None:
    """Listen on 127.0.0.1:``port`` until SIGTERM."""
    redis = aioredis.Redis.from_url(url, socket_timeout=10, max_connections=64)
    app = (batched_app if batched else bare_app)(redis, stream)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print("ready", flush=True)
        await stopped.wait()
    finally:
        await runner.cleanup()
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(
        serve(sys.argv[1], sys.argv[2], int(sys.argv[3]), batched="--batched" in sys.argv[4:])
    )
