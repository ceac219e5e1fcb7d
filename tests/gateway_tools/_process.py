"""A gateway in a process of its own: ``python -m tests.gateway_tools._process``.

It answers ``--calls`` requests of the seeded turn (call ids ``<prefix>-<n>``) for
``notes.count``, limited to ``--limit``, and prints how they ended as JSON on its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter

import redis.asyncio as aioredis

from libs.keys import KeySpace
from libs.postgres import open_pool
from tests.gateway_tools._support import make_gateway, request
from tests.tool_support import SeededConversation
from tool_gateway import AgentProfilesConfig


async def main(args: argparse.Namespace) -> None:
    """Answer the requests and report their outcomes."""
    seeded = SeededConversation(**json.loads(args.seeded))
    agents = AgentProfilesConfig.model_validate(
        [
            {
                "tenant": seeded.tenant_id,
                "profile": "support",
                "tools": ["notes.count"],
                "rate_limits": {"notes.count": args.limit},
            }
        ]
    )
    redis = aioredis.Redis.from_url(args.redis_url)
    try:
        async with open_pool(args.dsn, min_size=1, max_size=2) as pool:
            gateway = make_gateway(redis, KeySpace(args.namespace), pool, agents=agents)
            outcomes: Counter[str] = Counter()
            for n in range(args.calls):
                answer = await gateway.handle(
                    request(seeded, "notes.count", call_id=f"{args.prefix}-{n}")
                )
                outcomes[answer.error.code if answer.error else answer.outcome] += 1
    finally:
        await redis.aclose()
    print(json.dumps(dict(outcomes)), flush=True)


def parse(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--seeded", required=True, help="the SeededConversation as JSON")
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--limit", default="5/minute")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
