"""Consumer throughput of atende, FastStream and a raw redis-py loop: ``python -m bench.bus``.

Each round pre-fills a fresh stream per contender with the same number of equivalent events,
starts one consumer process, and times it from ``go`` until its consumer group has read and
acknowledged every entry. Rounds interleave the contenders; the report takes the median. The
last line of stdout is one JSON object with the figures and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from rich.console import Console

from bench._child import GROUP
from bench._events import fill_atende, fill_faststream, fill_raw
from bench._harness import Measurement, time_consumer
from bench._report import Machine, Results, print_profile, print_report, print_summary_line
from bench._server import bench_redis_url, child_environment, delete_keys, server_version
from events.streams import INBOX_MESSAGE_RECEIVED
from libs.keys import KeySpace

_REDIS_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Contender:
    """One consumer implementation under test and how to feed and start it."""

    name: str
    label: str
    kind: str
    partitions: int = 1
    spans: bool = False

    def keys(self, namespace: str) -> list[str]:
        """The stream keys this contender reads in ``namespace``."""
        if self.kind == "atende":
            space = KeySpace(namespace)
            return [space.stream(INBOX_MESSAGE_RECEIVED, p) for p in range(self.partitions)]
        return [f"{namespace}:stream"]

    def argv(self, url: str, namespace: str, profile: Path | None = None) -> list[str]:
        """Command line of its consumer process (after the interpreter)."""
        argv = ["-m", "bench._child", self.kind, "--url", url]
        if self.kind == "atende":
            argv += ["--namespace", namespace, "--partitions", str(self.partitions)]
            if self.spans:
                argv.append("--spans")
        else:
            argv += ["--key", self.keys(namespace)[0]]
        if profile is not None:
            argv += ["--profile", str(profile)]
        return argv

    async def fill(self, redis: aioredis.Redis, url: str, namespace: str, count: int) -> None:
        """Write ``count`` events in this contender's format."""
        if self.kind == "atende":
            await fill_atende(redis, KeySpace(namespace), self.partitions, count)
        elif self.kind == "faststream":
            await fill_faststream(url, self.keys(namespace)[0], count)
        else:
            await fill_raw(redis, self.keys(namespace)[0], count)


def contenders(extra_partitions: int) -> list[Contender]:
    """atende, FastStream and raw on one stream; atende with spans exported; and atende on
    ``extra_partitions`` partitions (if > 1)."""
    chosen = [
        Contender("atende", "atende (1 partition)", "atende"),
        Contender("faststream", "FastStream StreamSub, consumer group", "faststream"),
        Contender("raw", "raw redis-py XREADGROUP+XACK", "raw"),
    ]
    chosen.append(
        Contender("atende_spans", "atende, spans exported (1 partition)", "atende", spans=True)
    )
    if extra_partitions > 1:
        chosen.append(
            Contender(
                f"atende_{extra_partitions}p",
                f"atende ({extra_partitions} partitions)",
                "atende",
                extra_partitions,
            )
        )
    return chosen


async def measure_once(
    contender: Contender,
    redis: aioredis.Redis,
    url: str,
    namespace: str,
    args: argparse.Namespace,
    profile: Path | None = None,
) -> Measurement:
    """Fill, consume and clean up once."""
    keys = contender.keys(namespace)
    try:
        await contender.fill(redis, url, namespace, args.events)
        for key in keys:
            try:
                await redis.xgroup_create(key, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if not str(exc).startswith("BUSYGROUP"):
                    raise
        argv = contender.argv(url, namespace, profile)
        return await time_consumer(
            argv, redis, keys, GROUP, args.events, args.timeout_s, env=child_environment()
        )
    finally:
        await delete_keys(redis, f"{namespace}:")


async def run(args: argparse.Namespace, url: str, machine: Machine, console: Console) -> Results:
    """Every round of every contender, interleaved; then the optional profile."""
    run_namespace = f"bench-bus-{secrets.token_hex(3)}"
    redis = aioredis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=_REDIS_TIMEOUT_S)
    try:
        results = Results(args.events, await server_version(redis), machine)
        chosen = contenders(args.extra_partitions)
        for round_no in range(1, args.rounds + 1):
            for contender in chosen:
                namespace = f"{run_namespace}.{contender.name}.{round_no}"
                measured = await measure_once(contender, redis, url, namespace, args)
                results.add(contender.name, measured)
                console.print(
                    f"round {round_no}: {contender.label}: "
                    f"{results.rates[contender.name][-1]:,.0f} events/s, "
                    f"{results.cpu[contender.name][-1]:.1f} µs CPU/event"
                )
        if args.profile is not None:
            namespace = f"{run_namespace}.profile"
            await measure_once(chosen[0], redis, url, namespace, args, args.profile.resolve())
        return results
    finally:
        await delete_keys(redis, f"{run_namespace}.")
        await redis.aclose()


def parse(argv: list[str]) -> argparse.Namespace:
    """Command-line options of the bus benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.bus", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000, help="entries per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per contender")
    parser.add_argument(
        "--extra-partitions",
        type=int,
        default=4,
        help="also run atende on this many partitions (the default layout); 0 to skip",
    )
    parser.add_argument("--timeout-s", type=float, default=600.0, help="limit per consumer run")
    parser.add_argument(
        "--profile",
        type=Path,
        help="after the rounds, run atende once more under cProfile and write the stats here",
    )
    args = parser.parse_args(argv)
    if args.events < 1 or args.rounds < 1:
        parser.error("--events and --rounds must be positive")
    return args


def main(argv: list[str]) -> None:
    """Run the benchmark and print the report, ending with the JSON line."""
    args = parse(argv)
    console = Console(width=120, highlight=False)
    with bench_redis_url() as url:
        results = asyncio.run(run(args, url, Machine.this(), console))
    print_report(console, results, {c.name: c.label for c in contenders(args.extra_partitions)})
    if args.profile is not None:
        print_profile(console, args.profile, args.events)
    print_summary_line(results)


if __name__ == "__main__":
    main(sys.argv[1:])
