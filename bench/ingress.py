"""Webhooks per second through the full ingress, against a bare handler doing one XADD.

Each round starts ``atende ingress`` (a WhatsApp channel from a generated config file), the
bare aiohttp handler of ``bench._bare_ingress`` and, as a reference, the same bare handler with
batched appends, as their own processes on the same Redis, and sends each the same number of
signed WhatsApp text webhooks (unique message ids, contacts spread over many conversations)
from 32 keep-alive connections of one load generator. The last line is one JSON object:
requests per second of the ingress and the bare handler, their ratio, and the ingress's median
p50/p99 latency over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from statistics import median

import redis.asyncio as aioredis
from rich.console import Console

from bench._load import LoadResult, http_request, run_load
from bench._report import Machine
from bench._server import bench_redis_url, child_environment, delete_keys, server_version
from libs.embedded.process import free_port

APP_SECRET = "bench-app-secret"
CHANNEL = "wa-bench"
PHONE_NUMBER_ID = "106540352242922"
_READY_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 30.0
TARGET_RATIO = 1.0
# The ingress, the target's baseline, and a reference: the baseline with batched appends.
CONTENDERS = ("atende", "bare", "batched")
TARGET_P99_MS = 30.0


def whatsapp_text_webhook(index: int, run_id: str, contacts: int) -> bytes:
    """A WhatsApp Cloud API text-message webhook with a unique ``wamid``."""
    sender = f"55119{index % contacts:08d}"
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": PHONE_NUMBER_ID,
                            },
                            "contacts": [{"profile": {"name": "Ana Souza"}, "wa_id": sender}],
                            "messages": [
                                {
                                    "from": sender,
                                    "id": f"wamid.{run_id}.{index:09d}",
                                    "timestamp": "1717430401",
                                    "type": "text",
                                    "text": {"body": f"Oi, vocês abrem no sábado? ({index})"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def signed_requests(count: int, port: int, contacts: int) -> list[bytes]:
    """``count`` signed webhook requests, ready to write to a socket."""
    run_id = secrets.token_hex(4)
    prepared = []
    for index in range(count):
        body = whatsapp_text_webhook(index, run_id, contacts)
        digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}
        prepared.append(
            http_request(f"/webhooks/whatsapp/{CHANNEL}", f"127.0.0.1:{port}", headers, body)
        )
    return prepared


def config_file(folder: Path) -> Path:
    """A config with one WhatsApp channel whose rate limit the benchmark never reaches."""
    path = folder / "atende.yaml"
    path.write_text(
        "tenants:\n"
        "  - id: bench\n"
        "    channels:\n"
        f"      - id: {CHANNEL}\n"
        "        provider: whatsapp\n"
        f"        phone_number_id: '{PHONE_NUMBER_ID}'\n"
        "        rate_limit: 1000000/second\n"
        "        secrets:\n"
        "          app_secret: {env: BENCH_WA_APP_SECRET}\n"
        "          verify_token: {env: BENCH_WA_VERIFY_TOKEN}\n",
        encoding="utf-8",
    )
    return path


@contextlib.asynccontextmanager
async def server(argv: list[str], env: dict[str, str], port: int) -> AsyncIterator[int]:
    """Run a server process until the block ends; wait until ``port`` answers."""
    with tempfile.TemporaryFile() as log:
        child = await asyncio.create_subprocess_exec(
            *argv, stdout=log, stderr=log, env=env, stdin=asyncio.subprocess.DEVNULL
        )
        try:
            await _wait_listening(port, child)
            yield child.pid
        finally:
            if child.returncode is None:
                child.terminate()
                try:
                    await asyncio.wait_for(child.wait(), _STOP_TIMEOUT_S)
                except TimeoutError:
                    child.kill()
                    await child.wait()


async def _wait_listening(port: int, child: asyncio.subprocess.Process) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _READY_TIMEOUT_S
    while loop.time() < deadline:
        if child.returncode is not None:
            raise RuntimeError(f"server exited with {child.returncode} before listening")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise RuntimeError(f"server did not listen on port {port} within {_READY_TIMEOUT_S} s")


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds process ``pid`` has used (Linux ``/proc``)."""
    # The command name (field 2) may hold spaces; the fields after it are space-separated.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    kind: str, url: str, namespace: str, args: argparse.Namespace, folder: Path
) -> tuple[LoadResult, float]:
    """Start one contender, warm it up, load it, stop it."""
    port = free_port()
    env = child_environment()
    if kind == "atende":
        env |= {
            "REDIS_URL": url,
            "ATENDE_NAMESPACE": namespace,
            "ATENDE_CONFIG": str(config_file(folder)),
            "ATENDE_HTTP_PORT": str(port),
            "ATENDE_HTTP_HOST": "127.0.0.1",
            "LOG_LEVEL": "INFO",
            "BENCH_WA_APP_SECRET": APP_SECRET,
            "BENCH_WA_VERIFY_TOKEN": "bench-verify",
        }
        argv = [sys.executable, "-m", "atende", "ingress"]
    else:
        argv = [sys.executable, "-m", "bench._bare_ingress", url, f"{namespace}:{kind}", str(port)]
        argv += ["--batched"] if kind == "batched" else []
    requests = signed_requests(args.warmup + args.requests, port, args.contacts)
    async with server(argv, env, port) as process:
        await run_load("127.0.0.1", port, requests[: args.warmup], connections=args.connections)
        before = cpu_s(process)
        result = await run_load(
            "127.0.0.1", port, requests[args.warmup :], connections=args.connections
        )
        return result, (cpu_s(process) - before) / result.requests * 1e6


async def run(args: argparse.Namespace, url: str, console: Console) -> dict[str, float | str]:
    """Interleave the contenders' rounds; return the summary."""
    run_namespace = f"bench-ingress-{secrets.token_hex(3)}"
    redis = aioredis.Redis.from_url(url, socket_timeout=30)
    rates: dict[str, list[float]] = {kind: [] for kind in CONTENDERS}
    cpu_us: dict[str, list[float]] = {kind: [] for kind in CONTENDERS}
    p50: list[float] = []
    p99: list[float] = []
    try:
        server_name = await server_version(redis)
        with tempfile.TemporaryDirectory(prefix="bench-ingress-") as folder:
            for round_no in range(1, args.rounds + 1):
                for kind in CONTENDERS:
                    namespace = f"{run_namespace}.{round_no}.{kind}"
                    result, cpu = await measure(kind, url, namespace, args, Path(folder))
                    rates[kind].append(result.rps)
                    cpu_us[kind].append(cpu)
                    line = f"round {round_no}: {kind}: {result.rps:,.0f} webhooks/s"
                    line += f", server CPU {cpu:.0f} µs/webhook"
                    line += f", p50 {result.percentile_ms(50):.2f} ms"
                    line += f", p99 {result.percentile_ms(99):.2f} ms"
                    console.print(line)
                    if kind == "atende":
                        p50.append(result.percentile_ms(50))
                        p99.append(result.percentile_ms(99))
                    await delete_keys(redis, f"{namespace}:")
    finally:
        await delete_keys(redis, f"{run_namespace}.")
        await redis.aclose()
    atende_rps, bare_rps = median(rates["atende"]), median(rates["bare"])
    machine = Machine.this()
    console.print(
        f"{machine.cpu}, {machine.cores} cores, Python {machine.python}, {server_name}, "
        f"rev {machine.revision}; {args.requests:,} webhooks x {args.rounds} rounds, "
        f"{args.connections} connections; server CPU per webhook (median): "
        + ", ".join(f"{kind} {median(cpu_us[kind]):.0f} µs" for kind in CONTENDERS)
    )
    console.print(
        f"reference, batched bare handler (batching alone, no other work): "
        f"{median(rates['batched']):,.0f} webhooks/s, "
        f"{median(rates['batched']) / bare_rps:.2f}x the bare handler"
    )
    return {
        "bench": "ingress",
        "atende_rps": round(atende_rps),
        "bare_rps": round(bare_rps),
        "ratio": round(atende_rps / bare_rps, 3),
        "p50_ms": round(median(p50), 2),
        "p99_ms": round(median(p99), 2),
    }


def parse(argv: list[str]) -> argparse.Namespace:
    """Command-line options of the ingress benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.ingress", description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000, help="webhooks per round")
    parser.add_argument("--warmup", type=int, default=2_000, help="webhooks before timing")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per contender")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--contacts", type=int, default=1_000, help="distinct conversations")
    args = parser.parse_args(argv)
    if min(args.requests, args.rounds, args.connections, args.contacts) < 1 or args.warmup < 0:
        parser.error("counts must be positive")
    return args


def main(argv: list[str]) -> None:
    """Run the benchmark; the last line printed is the JSON summary."""
    args = parse(argv)
    console = Console(width=120, highlight=False)
    with bench_redis_url() as url:
        summary = asyncio.run(run(args, url, console))
    verdict = float(summary["ratio"]) >= TARGET_RATIO and float(summary["p99_ms"]) <= TARGET_P99_MS
    console.print(
        f"targets: ratio >= {TARGET_RATIO}, p99 <= {TARGET_P99_MS} ms: "
        f"{'met' if verdict else 'NOT met'}"
    )
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
