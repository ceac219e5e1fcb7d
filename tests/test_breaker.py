"""Shared circuit breakers against a real Redis, across processes."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from libs.breaker import SharedCircuitBreaker
from libs.embedded.process import free_port
from libs.errors import CircuitOpen
from libs.keys import KeySpace
from tests.helpers_breaker import (
    FAIL_MAX,
    LONG_RESET_TIMEOUT_S,
    RESET_TIMEOUT_S,
    SHORT_TRIAL_TIMEOUT_S,
    DependencyDown,
    shared_breaker,
)

CALLERS_PER_REPLICA = 10


class Calls:
    """A guarded dependency that records whether it ran."""

    def __init__(self) -> None:
        self.count = 0

    async def ok(self) -> str:
        self.count += 1
        return "ok"

    async def down(self) -> str:
        self.count += 1
        raise DependencyDown("the dependency is down")


@pytest.fixture
def name() -> str:
    """A breaker name (and metric label) no other test uses."""
    return f"dep-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def other_process(
    redis_url: str, namespace: str, name: str, repo_root: Path
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Run the breaker in another Python process and return the state it ends with."""

    async def run(reset_timeout_s: float, *action: str) -> dict[str, Any]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.helpers_breaker",
            redis_url,
            namespace,
            name,
            str(reset_timeout_s),
            *action,
            cwd=repo_root,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(60):
                out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, err.decode()
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return result

    return run


@pytest.fixture
async def breaker(redis: aioredis.Redis, namespace: str, name: str) -> SharedCircuitBreaker:
    """This process's breaker, with a short reset timeout, as the other process's."""
    return shared_breaker(redis, namespace, name, RESET_TIMEOUT_S)


@pytest.fixture
async def slow_breaker(redis: aioredis.Redis, namespace: str, name: str) -> SharedCircuitBreaker:
    """This process's breaker, staying open long enough for any assertion."""
    return shared_breaker(redis, namespace, name, LONG_RESET_TIMEOUT_S)


@pytest.fixture
async def replicas(
    redis_url: str, namespace: str, name: str
) -> AsyncIterator[list[SharedCircuitBreaker]]:
    """Two replicas' breakers, each on its own client; a trial has all the time it needs."""
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
    try:
        yield [
            shared_breaker(client, namespace, name, RESET_TIMEOUT_S, LONG_RESET_TIMEOUT_S)
            for client in clients
        ]
    finally:
        for client in clients:
            await client.aclose()


@pytest.fixture
async def unreachable_redis() -> AsyncIterator[aioredis.Redis]:
    """A client pointed at a port nobody listens on."""
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    yield client
    await client.aclose()


async def _call_when_admitted(
    breaker: SharedCircuitBreaker, fn: Callable[[], Awaitable[str]]
) -> str:
    """Call ``fn`` as soon as the breaker lets a call through (after its reset timeout)."""
    async with asyncio.timeout(10):
        while True:
            try:
                return await breaker.call(fn)
            except CircuitOpen:
                await asyncio.sleep(0.05)


async def _call_all_at_once(replicas: list[SharedCircuitBreaker]) -> tuple[int, int]:
    """Call through every replica concurrently; return how many calls ran and how many were refused.

    An admitted call holds until every other one has been admitted or refused, so a trial is
    still under way while the others ask.
    """
    ran = refused = 0
    everyone_asked = asyncio.Event()

    async def hold() -> None:
        nonlocal ran
        ran += 1
        await everyone_asked.wait()

    async def caller(breaker: SharedCircuitBreaker) -> None:
        nonlocal refused
        try:
            await breaker.call(hold)
        except CircuitOpen:
            refused += 1

    total = CALLERS_PER_REPLICA * len(replicas)
    async with asyncio.timeout(30), asyncio.TaskGroup() as group:
        for breaker in replicas * CALLERS_PER_REPLICA:
            group.create_task(caller(breaker))
        while ran + refused < total:
            await asyncio.sleep(0.01)
        everyone_asked.set()
    return ran, refused


async def _trip(breaker: SharedCircuitBreaker, calls: Calls, times: int = FAIL_MAX) -> None:
    for _ in range(times):
        with pytest.raises(DependencyDown):
            await breaker.call(calls.down)


async def test_failures_in_one_process_open_the_circuit_for_another(
    slow_breaker: SharedCircuitBreaker,
    other_process: Callable[..., Awaitable[dict[str, Any]]],
    name: str,
) -> None:
    assert (await other_process(LONG_RESET_TIMEOUT_S, "fail", str(FAIL_MAX)))["state"] == "open"
    calls = Calls()

    with pytest.raises(CircuitOpen, match=f"circuit breaker '{name}' is open.*until"):
        await slow_breaker.call(calls.ok)

    assert calls.count == 0
    assert slow_breaker.state == "open"
    assert REGISTRY.get_sample_value("circuit_breaker_state", {"breaker": name}) == 2


async def test_a_successful_trial_closes_it_for_every_process(
    breaker: SharedCircuitBreaker, other_process: Callable[..., Awaitable[dict[str, Any]]]
) -> None:
    await other_process(RESET_TIMEOUT_S, "fail", str(FAIL_MAX))
    calls = Calls()

    assert await _call_when_admitted(breaker, calls.ok) == "ok"

    assert calls.count == 1
    assert breaker.state == "closed"
    assert await other_process(RESET_TIMEOUT_S, "state") == {"state": "closed", "failures": 0}


async def test_a_failing_trial_opens_it_again(
    breaker: SharedCircuitBreaker, other_process: Callable[..., Awaitable[dict[str, Any]]]
) -> None:
    await other_process(RESET_TIMEOUT_S, "fail", str(FAIL_MAX))
    calls = Calls()

    with pytest.raises(DependencyDown):
        await _call_when_admitted(breaker, calls.down)
    with pytest.raises(CircuitOpen):
        await breaker.call(calls.ok)

    assert calls.count == 1
    assert (await other_process(RESET_TIMEOUT_S, "state"))["state"] == "open"


async def test_after_the_reset_timeout_one_trial_runs_across_replicas(
    replicas: list[SharedCircuitBreaker], name: str
) -> None:
    await _trip(replicas[0], Calls())
    await asyncio.sleep(RESET_TIMEOUT_S)

    assert await _call_all_at_once(replicas) == (1, 2 * CALLERS_PER_REPLICA - 1)

    # The trial succeeded: closed for both replicas.
    calls = Calls()
    for replica in replicas:
        await replica.sync()
        assert replica.state == "closed"
        assert await replica.call(calls.ok) == "ok"
    assert REGISTRY.get_sample_value("circuit_breaker_state", {"breaker": name}) == 0


async def test_a_trial_whose_replica_died_is_replaced_after_its_deadline(
    replicas: list[SharedCircuitBreaker],
    other_process: Callable[..., Awaitable[dict[str, Any]]],
) -> None:
    await other_process(RESET_TIMEOUT_S, "fail", str(FAIL_MAX))
    assert await other_process(RESET_TIMEOUT_S, "die-in-trial") == {"trial": True}
    await asyncio.sleep(SHORT_TRIAL_TIMEOUT_S)

    assert await _call_all_at_once(replicas) == (1, 2 * CALLERS_PER_REPLICA - 1)
    for replica in replicas:
        await replica.sync()
        assert replica.state == "closed"


async def test_a_cancelled_trial_frees_the_slot_at_once(
    replicas: list[SharedCircuitBreaker],
) -> None:
    await _trip(replicas[0], Calls())
    await asyncio.sleep(RESET_TIMEOUT_S)
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(60)
        return "late"

    trial = asyncio.create_task(replicas[0].call(slow))
    async with asyncio.timeout(5):
        await started.wait()
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial

    # The trial's deadline is a minute away; the other replica is let through now.
    calls = Calls()
    assert await replicas[1].call(calls.ok) == "ok"
    assert calls.count == 1


async def test_failures_of_two_replicas_add_up(redis_url: str, namespace: str, name: str) -> None:
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
    try:
        breakers = [
            shared_breaker(client, namespace, name, LONG_RESET_TIMEOUT_S) for client in clients
        ]
        calls = Calls()
        # Alternate replicas: neither alone reaches FAIL_MAX, together they do.
        for i in range(FAIL_MAX):
            with pytest.raises(DependencyDown):
                await breakers[i % 2].call(calls.down)
        for replica in breakers:
            await replica.sync()
            with pytest.raises(CircuitOpen):
                await replica.call(calls.ok)
    finally:
        for client in clients:
            await client.aclose()

    assert calls.count == FAIL_MAX
    assert REGISTRY.get_sample_value("circuit_breaker_failures_total", {"breaker": name}) == (
        FAIL_MAX
    )


async def test_a_success_resets_the_shared_failure_count(
    breaker: SharedCircuitBreaker, other_process: Callable[..., Awaitable[dict[str, Any]]]
) -> None:
    calls = Calls()
    await _trip(breaker, calls, times=FAIL_MAX - 1)
    assert await breaker.call(calls.ok) == "ok"

    assert await other_process(RESET_TIMEOUT_S, "fail", str(FAIL_MAX - 1)) == {
        "state": "closed",
        "failures": FAIL_MAX - 1,
    }


async def test_excluded_exceptions_do_not_count(
    redis: aioredis.Redis, keys: KeySpace, name: str
) -> None:
    breaker = SharedCircuitBreaker(
        redis, keys, name, fail_max=2, reset_timeout_s=RESET_TIMEOUT_S, exclude=(KeyError,)
    )

    async def rejected_input() -> None:
        raise KeyError("customer 42")

    for _ in range(5):
        with pytest.raises(KeyError):
            await breaker.call(rejected_input)

    assert breaker.state == "closed"
    assert breaker.fail_counter == 0


async def test_a_cancelled_call_is_neither_success_nor_failure(
    breaker: SharedCircuitBreaker,
) -> None:
    calls = Calls()
    await _trip(breaker, calls, times=FAIL_MAX - 1)
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(60)
        return "late"

    task = asyncio.create_task(breaker.call(slow))
    async with asyncio.timeout(5):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert breaker.fail_counter == FAIL_MAX - 1
    assert breaker.state == "closed"


async def test_guard_works_as_a_context_manager(slow_breaker: SharedCircuitBreaker) -> None:
    calls = Calls()
    async with slow_breaker.guard():
        await calls.ok()
    await _trip(slow_breaker, calls)

    with pytest.raises(CircuitOpen):
        async with slow_breaker.guard():
            pytest.fail("the block must not run while the circuit is open")


async def test_without_redis_the_breaker_keeps_working_locally(
    unreachable_redis: aioredis.Redis, keys: KeySpace, name: str
) -> None:
    breaker = SharedCircuitBreaker(
        unreachable_redis,
        keys,
        name,
        fail_max=FAIL_MAX,
        reset_timeout_s=RESET_TIMEOUT_S,
        redis_timeout_ms=100,
    )
    calls = Calls()

    assert await breaker.call(calls.ok) == "ok"
    await _trip(breaker, calls)
    with pytest.raises(CircuitOpen):
        await breaker.call(calls.ok)
    assert await _call_when_admitted(breaker, calls.ok) == "ok"

    assert breaker.state == "closed"
    assert calls.count == FAIL_MAX + 2


@pytest.mark.parametrize(
    "kwargs",
    [{"fail_max": 0}, {"reset_timeout_s": 0}, {"success_threshold": 0}, {"redis_timeout_ms": 0}],
)
def test_bad_settings_are_rejected(
    redis: aioredis.Redis, keys: KeySpace, kwargs: dict[str, Any]
) -> None:
    settings: dict[str, Any] = {"fail_max": 1, "reset_timeout_s": 1.0, **kwargs}
    with pytest.raises(ValueError, match="breaker 'x'"):
        SharedCircuitBreaker(redis, keys, "x", **settings)
