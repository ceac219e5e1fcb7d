"""A small HTTP/1.1 load generator: N keep-alive connections sending prepared requests.

It writes pre-built request bytes and reads each response by its ``Content-Length``, so the
client spends microseconds per request and the server, not the generator, is what is measured.
Both contenders of a benchmark face the same generator in the same run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from statistics import quantiles
from time import perf_counter

_HEADER_END = b"\r\n\r\n"


class LoadFailed(Exception):
    """The server answered something other than the expected status, or not at all."""


@dataclass(slots=True)
class LoadResult:
    """Requests answered, wall time, and each request's latency in seconds."""

    requests: int = 0
    wall_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        """Requests answered per second."""
        return self.requests / self.wall_s if self.wall_s else 0.0

    def percentile_ms(self, percent: int) -> float:
        """Latency percentile in milliseconds (1..99)."""
        if len(self.latencies_s) < 2:
            return 1000 * (self.latencies_s[0] if self.latencies_s else 0.0)
        return 1000 * quantiles(self.latencies_s, n=100, method="inclusive")[percent - 1]


def http_request(path: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    """The bytes of one keep-alive ``POST``."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def run_load(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    connections: int,
    expect_status: int = 200,
    timeout_s: float = 30.0,
) -> LoadResult:
    """Send every request once over ``connections`` connections; time each one."""
    result = LoadResult()
    cursor = iter(range(len(requests)))
    started = perf_counter()
    workers = [
        _connection(host, port, requests, cursor, result, expect_status, timeout_s)
        for _ in range(connections)
    ]
    await asyncio.gather(*workers)
    result.wall_s = perf_counter() - started
    return result


async def _connection(
    host: str,
    port: int,
    requests: Sequence[bytes],
    cursor: Iterator[int],
    result: LoadResult,
    expect_status: int,
    timeout_s: float,
) -> None:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    try:
        for index in cursor:  # shared iterator: bounded by len(requests) in all
            sent = perf_counter()
            writer.write(requests[index])
            status = await asyncio.wait_for(_read_response(reader), timeout_s)
            result.latencies_s.append(perf_counter() - sent)
            result.requests += 1
            if status != expect_status:
                raise LoadFailed(f"request {index} answered {status}, expected {expect_status}")
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(_HEADER_END)
    status_line, _, headers = head.partition(b"\r\n")
    length = 0
    for line in headers.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return int(status_line.split(b" ", 2)[1])
