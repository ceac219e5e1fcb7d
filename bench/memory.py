"""Semantic memory: top-10 search latency and recall@10 over 100,000+ chunks of 384 dimensions.

One tenant owns ``--rows`` chunks among several tenants; the vectors are clustered (see
``bench._memory_data``), bulk-loaded with COPY, and the HNSW index of the initial migration is
built after loading. Latency is measured through ``VectorIndex.search``, the function the
knowledge base and the ``knowledge.search`` tool use (tenant filter, ``hnsw.ef_search``,
iterative scan); recall@10 compares its hits with an exact scan (index scans disabled) of the
same query in the same run. The last line printed is the JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import quantiles

from rich.console import Console

from bench._memory_data import MODEL, ClusteredVectors, copy_rows, rows
from bench._report import Machine
from libs.embedded.postgres import EmbeddedPostgres
from libs.migrations import apply_migrations
from libs.postgres import dsn_with_database, open_connection, open_pool
from libs.settings import Settings
from memory_manager.config import SearchConfig
from memory_manager.vector_search import VectorIndex, VectorQuery, pgvector_version

TARGET_P95_MS = 10.0
TARGET_RECALL = 0.95
TOP_K = 10
TENANT = "bench-t0"
_WARMUP_QUERIES = 20

_DROP_INDEX = "DROP INDEX memory_chunks_embedding_idx"
# The same index as the initial migration's (pgvector's defaults: m = 16, ef_construction = 64).
_CREATE_INDEX = """
CREATE INDEX memory_chunks_embedding_idx ON memory_chunks USING hnsw (embedding vector_cosine_ops)
"""
_EXACT = """
SELECT document_key FROM memory_chunks
WHERE tenant_id = $1 AND source_kind = 'document' AND embedding_model = $3
ORDER BY embedding <=> $2
LIMIT $4
"""


@contextmanager
def admin_dsn() -> Iterator[str]:
    """DATABASE_URL (its role must create databases), else an embedded Postgres in RAM."""
    configured = Settings().database_url
    if configured:
        yield configured
        return
    ram = Path("/dev/shm")
    parent = ram if ram.is_dir() else None
    base = Path(tempfile.mkdtemp(prefix="atende-bench-memory-", dir=parent))
    base.chmod(0o711)  # under root the server runs as another account that must pass through
    try:
        with EmbeddedPostgres(base / "postgres", durable=False) as server:
            yield server.maintenance_dsn
    finally:
        shutil.rmtree(base, ignore_errors=True)


async def load(
    dsn: str, args: argparse.Namespace, vectors: ClusteredVectors, console: Console
) -> dict[str, float]:
    """Migrate, COPY every tenant's rows, then build the HNSW index; return the timings."""
    tenants = [TENANT, *(f"bench-t{n}" for n in range(1, args.other_tenants + 1))]
    async with open_connection(dsn, command_timeout_s=None) as connection:
        await apply_migrations(connection)
    # A fresh connection: the one that created the extension does not know the vector type.
    async with open_connection(dsn, command_timeout_s=None) as connection:
        await connection.executemany(
            "INSERT INTO tenants (tenant_id, name) VALUES ($1, $1)", [(t,) for t in tenants]
        )
        await connection.execute(_DROP_INDEX)
        started = time.perf_counter()
        loaded = 0
        for number, tenant in enumerate(tenants):
            count = args.rows if tenant == TENANT else args.other_rows
            loaded += await copy_rows(connection, rows(vectors, tenant, count, seed=number))
            console.print(f"loaded {loaded:,} rows ({tenant})")
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        await connection.execute("SET maintenance_work_mem = '2GB'")
        await connection.execute(_CREATE_INDEX)
        await connection.execute("ANALYZE memory_chunks")
        index_s = time.perf_counter() - started
        console.print(f"HNSW index built in {index_s:.1f}s")
    return {"rows": loaded, "load_s": load_s, "index_s": index_s}


async def measure(
    dsn: str, args: argparse.Namespace, vectors: ClusteredVectors
) -> dict[str, float]:
    """Latency of the product's search and its recall@10 against an exact scan."""
    rng = random.Random(10_000)
    queries = [vectors.vector(rng) for _ in range(args.queries + _WARMUP_QUERIES)]
    async with open_pool(dsn, min_size=1, max_size=2) as pool:
        index = VectorIndex(pool, ef_search=args.ef_search)
        latencies_ms: list[float] = []
        found: list[list[str]] = []
        for number, vector in enumerate(queries):
            query = VectorQuery(TENANT, vector, MODEL, top_k=TOP_K)
            started = time.perf_counter()
            hits = await index.search(query)
            elapsed_ms = (time.perf_counter() - started) * 1000
            if number >= _WARMUP_QUERIES:
                latencies_ms.append(elapsed_ms)
                found.append([hit.document_key for hit in hits])
        recalls: list[float] = []
        for vector, approximate in zip(queries[_WARMUP_QUERIES:], found, strict=True):
            async with pool.acquire() as connection, connection.transaction():
                await connection.execute("SET LOCAL enable_indexscan = off")
                exact = await connection.fetch(_EXACT, TENANT, vector, MODEL, TOP_K)
            truth = {row["document_key"] for row in exact}
            recalls.append(len(truth & set(approximate)) / TOP_K)
        async with pool.acquire() as connection:
            version = ".".join(str(part) for part in await pgvector_version(connection))
            server = await connection.fetchval("SHOW server_version")
    cuts = quantiles(latencies_ms, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49], 2),
        "p95_ms": round(cuts[94], 2),
        "recall_at_10": round(sum(recalls) / len(recalls), 4),
        "pgvector": version,
        "postgres": server,
    }


async def run(admin: str, args: argparse.Namespace, console: Console) -> dict[str, object]:
    """Load and measure in a database of the run's own, dropped afterwards."""
    name = f"bench_memory_{uuid.uuid4().hex[:8]}"
    async with open_connection(admin) as connection:
        await connection.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = dsn_with_database(admin, name)
        vectors = ClusteredVectors.make(clusters=args.clusters, spread=args.spread)
        loaded = await load(dsn, args, vectors, console)
        measured = await measure(dsn, args, vectors)
    finally:
        async with open_connection(admin) as connection:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return {**loaded, **measured}


def parse(argv: list[str]) -> argparse.Namespace:
    """Command-line options of the memory benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000, help="chunks of the measured tenant")
    parser.add_argument("--other-tenants", type=int, default=3, help="tenants beside it")
    parser.add_argument("--other-rows", type=int, default=10_000, help="chunks of each other")
    parser.add_argument("--queries", type=int, default=300, help="measured queries (>= 200)")
    parser.add_argument(
        "--ef-search", type=int, default=SearchConfig().ef_search, help="hnsw.ef_search"
    )
    parser.add_argument("--clusters", type=int, default=256, help="topics in the vectors")
    parser.add_argument("--spread", type=float, default=0.6, help="offset from the centres")
    args = parser.parse_args(argv)
    if args.rows < TOP_K or args.queries < 1 or args.other_tenants < 0:
        parser.error("--rows must be at least 10, --queries positive, --other-tenants >= 0")
    return args


def main(argv: list[str]) -> None:
    """Run the benchmark; print the machine, the figures and, last, the JSON line."""
    args = parse(argv)
    console = Console(width=120, highlight=False)
    machine = Machine.this()
    with admin_dsn() as admin:
        results = asyncio.run(run(admin, args, console))
    console.print(
        f"machine: {machine.cores} cores, {machine.cpu}, Python {machine.python}, "
        f"Postgres {results['postgres']}, pgvector {results['pgvector']}, "
        f"revision {machine.revision}; ef_search {args.ef_search}"
    )
    console.print(
        f"{results['rows']:,} rows loaded in {results['load_s']:.1f}s, "
        f"index built in {results['index_s']:.1f}s; "
        f"p50 {results['p50_ms']} ms, p95 {results['p95_ms']} ms (target <= {TARGET_P95_MS}), "
        f"recall@10 {results['recall_at_10']} (target >= {TARGET_RECALL})"
    )
    summary = {
        "bench": "memory",
        "rows": results["rows"],
        "p50_ms": results["p50_ms"],
        "p95_ms": results["p95_ms"],
        "recall_at_10": results["recall_at_10"],
    }
    print(json.dumps(summary, separators=(",", ":")))


if __name__ == "__main__":
    main(sys.argv[1:])
