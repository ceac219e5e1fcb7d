"""Timing one consumer process from ``go`` until its group has read and acked every entry."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import redis.asyncio as aioredis

_POLL_S = 0.005
_READY_TIMEOUT_S = 60.0
_EXIT_TIMEOUT_S = 30.0


class BenchFailed(Exception):
    """A consumer process did not start, did not finish in time, or exited badly."""


@dataclass(frozen=True, slots=True)
class Measurement:
    """One consumer run: wall time from ``go`` to all acked, and the CPU time it used."""

    wall_s: float
    cpu_s: float


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a consumer group is over some stream keys."""

    read: int
    pending: int


async def group_progress(redis: aioredis.Redis, keys: Sequence[str], group: str) -> Progress:
    """Sum entries read and entries pending of ``group`` over ``keys``."""
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.xinfo_groups(key)
        answers = await pipe.execute()
    read = pending = 0
    for groups in answers:
        for info in groups:
            if info["name"] == group.encode():
                read += info.get("entries-read") or 0
                pending += info["pending"]
    return Progress(read, pending)


async def time_consumer(
    argv: Sequence[str],
    redis: aioredis.Redis,
    keys: Sequence[str],
    group: str,
    count: int,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
) -> Measurement:
    """Run the consumer process ``argv``; time it from ``go`` until all ``count`` are acked."""
    with tempfile.NamedTemporaryFile(prefix="bench-bus-", suffix=".log") as log:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env=env,
        )
        try:
            wall_s = await _drive(child, redis, keys, group, count, timeout_s)
            cpu_s = await _stop(child)
        except BaseException as exc:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
            if isinstance(exc, BenchFailed):
                tail = await asyncio.to_thread(_tail, Path(log.name))
                raise BenchFailed(f"{exc}; its log ends with:\n{tail}") from None
            raise
        return Measurement(wall_s, cpu_s)


async def _drive(
    child: asyncio.subprocess.Process,
    redis: aioredis.Redis,
    keys: Sequence[str],
    group: str,
    count: int,
    timeout_s: float,
) -> float:
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        line = await asyncio.wait_for(child.stdout.readline(), _READY_TIMEOUT_S)
    except TimeoutError:
        raise BenchFailed(f"consumer not ready within {_READY_TIMEOUT_S:.0f}s") from None
    if line.strip() != b"ready":
        raise BenchFailed(f"consumer exited before it was ready (said {line!r})")
    child.stdin.write(b"go\n")
    await child.stdin.drain()
    started = perf_counter()
    progress = Progress(0, 0)
    try:
        async with asyncio.timeout(timeout_s):
            while progress.read < count or progress.pending:
                if child.returncode is not None:
                    raise BenchFailed(f"consumer exited with {child.returncode} at {progress}")
                await asyncio.sleep(_POLL_S)
                progress = await group_progress(redis, keys, group)
    except TimeoutError:
        raise BenchFailed(f"consumer took longer than {timeout_s:.0f}s; at {progress}") from None
    return perf_counter() - started


async def _stop(child: asyncio.subprocess.Process) -> float:
    """Ask the child to stop; return the CPU seconds it reports, once it exited cleanly."""
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdin.write(b"stop\n")
    await child.stdin.drain()
    child.stdin.close()
    try:
        async with asyncio.timeout(_EXIT_TIMEOUT_S):
            report = await child.stdout.readline()
            code = await child.wait()
    except TimeoutError:
        raise BenchFailed(f"consumer did not exit within {_EXIT_TIMEOUT_S:.0f}s") from None
    if code != 0:
        raise BenchFailed(f"consumer exited with {code}")
    name, _, value = report.decode().partition(" ")
    if name != "cpu_s":
        raise BenchFailed(f"consumer reported {report!r} instead of its CPU time")
    return float(value)


def _tail(path: Path, chars: int = 2_000) -> str:
    return path.read_text(errors="replace")[-chars:]
