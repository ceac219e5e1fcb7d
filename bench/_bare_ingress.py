"""The baseline of the ingress benchmark: an aiohttp handler that does one XADD of the body.

No signature check, no parsing, no dedup, no sequence: the least a webhook endpoint can do
and still store what it was sent. Run as ``python -m bench._bare_ingress URL STREAM PORT``;
prints ``ready`` when it listens and stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import redis.asyncio as aioredis
from aiohttp import web


def bare_app(redis: aioredis.Redis, stream: str) -> web.Application:
    """One route, one XADD."""

    async def webhook(request: web.Request) -> web.Response:
        body = await request.read()
        await redis.xadd(stream, {"body": body})
        return web.json_response({"status": "accepted"})

    app = web.Application()
    app.router.add_post("/webhooks/{provider}/{channel_id}", webhook)
    return app


async def serve(url: str, stream: str, port: int) -> None:
    """Listen on 127.0.0.1:``port`` until SIGTERM."""
    redis = aioredis.Redis.from_url(url, socket_timeout=10, max_connections=64)
    runner = web.AppRunner(bare_app(redis, stream), access_log=None)
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
    asyncio.run(serve(sys.argv[1], sys.argv[2], int(sys.argv[3])))
