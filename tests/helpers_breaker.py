"""A shared circuit breaker in a process of its own, driven by tests/test_breaker.py.

``python -m tests.helpers_breaker REDIS_URL NAMESPACE BREAKER RESET_TIMEOUT_S fail N`` records
N failures; ``... state`` only syncs. Either prints the breaker's state as JSON on the last line.
``... die-in-trial`` waits for the trial call (with a short trial deadline), prints
``{"trial": true}`` from inside it and exits at once, as a replica that crashes mid-trial.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys

import redis.asyncio as aioredis

from libs.breaker import SharedCircuitBreaker
from libs.errors import CircuitOpen
from libs.keys import KeySpace

FAIL_MAX = 3
RESET_TIMEOUT_S = 0.4
"""Short, for tests that wait for the trial call."""
LONG_RESET_TIMEOUT_S = 60.0
"""For tests that must see the circuit still open however slow the machine is."""
SHORT_TRIAL_TIMEOUT_S = 0.5
"""The trial deadline of the replica that dies in its trial: others wait this long for it."""


class DependencyDown(Exception):
    """The failure the helper's guarded call raises."""


async def _failing_call() -> None:
    raise DependencyDown("the dependency is down")


def shared_breaker(
    redis: aioredis.Redis,
    namespace: str,
    name: str,
    reset_timeout_s: float,
    trial_timeout_s: float | None = None,
) -> SharedCircuitBreaker:
    """The breaker both processes use, with the same thresholds."""
    return SharedCircuitBreaker(
        redis,
        KeySpace(namespace),
        name,
        fail_max=FAIL_MAX,
        reset_timeout_s=reset_timeout_s,
        trial_timeout_s=trial_timeout_s,
    )


async def _die_in_trial(breaker: SharedCircuitBreaker) -> None:
    async def die() -> None:
        print(json.dumps({"trial": True}), flush=True)
        os._exit(0)  # no report, no release: what a killed replica leaves behind

    async with asyncio.timeout(10):
        while True:
            try:
                await breaker.call(die)
            except CircuitOpen:
                await asyncio.sleep(0.05)


async def main(argv: list[str]) -> None:
    """Run the action named on the command line and print the resulting state."""
    url, namespace, name, reset_timeout_s, action, *rest = argv
    client = aioredis.Redis.from_url(url)
    try:
        if action == "die-in-trial":
            trial_breaker = shared_breaker(
                client, namespace, name, float(reset_timeout_s), SHORT_TRIAL_TIMEOUT_S
            )
            await _die_in_trial(trial_breaker)
        breaker = shared_breaker(client, namespace, name, float(reset_timeout_s))
        if action == "fail":
            for _ in range(int(rest[0])):
                with contextlib.suppress(DependencyDown):
                    await breaker.call(_failing_call)
        await breaker.sync()
    finally:
        await client.aclose()
    print(json.dumps({"state": breaker.state, "failures": breaker.fail_counter}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
