"""``atende kb ingest`` as a user runs it: a real process against the test's database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from memory_manager.embedders.deterministic import HashedNgramEmbedder
from memory_manager.knowledge import KnowledgeBase
from tests.memory_support import KB_DOCUMENTS
from tests.tool_support import seed_conversation


async def kb_ingest(
    dsn: str,
    data_dir: Path,
    *args: str,
    config: Path | None = None,
    secrets: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m atende kb ingest ARGS`` with DATABASE_URL set to ``dsn``."""
    env = {k: v for k, v in os.environ.items() if k not in {"ATENDE_CONFIG", "REDIS_URL"}}
    env |= {"DATABASE_URL": dsn, "ATENDE_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    env |= secrets or {}
    if config is not None:
        env["ATENDE_CONFIG"] = str(config)
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "atende", "kb", "ingest", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=False,
    )


def write_docs(folder: Path) -> Path:
    """The sample knowledge base as files, one of them in a subfolder, plus a file to ignore."""
    for name, text in KB_DOCUMENTS.items():
        target = folder / ("help" if name == "account.md" else "") / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    (folder / "logo.png").write_bytes(b"\x89PNG not a document")
    return folder


async def chunk_rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    """Every chunk's document, index and update time."""
    return await pool.fetch(
        "SELECT document_key, chunk_index, updated_at FROM memory_chunks"
        " WHERE tenant_id = 'acme' ORDER BY document_key, chunk_index"
    )


async def test_ingest_loads_a_folder_then_skips_unchanged_and_replaces_changed_files(
    pg_dsn: str, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    await seed_conversation(pg_pool, "acme")
    docs = write_docs(tmp_path / "kb")
    first = await kb_ingest(pg_dsn, tmp_path, str(docs), "--tenant", "acme", "--tag", "faq")
    assert first.returncode == 0, first.stderr
    assert "4 file(s) into tenant acme: 4 created" in first.stdout
    rows = await chunk_rows(pg_pool)
    assert {row["document_key"] for row in rows} == {
        "help/account.md",
        "payments.md",
        "returns.md",
        "shipping.md",
    }
    knowledge = KnowledgeBase(pg_pool, HashedNgramEmbedder())
    [hit] = await knowledge.search(
        "acme", "I forgot my password", top_k=1, min_score=0.0, tags=("faq",)
    )
    assert hit.document_key == "help/account.md"

    again = await kb_ingest(pg_dsn, tmp_path, str(docs), "--tenant", "acme", "--tag", "faq")
    assert again.returncode == 0, again.stderr
    assert "4 unchanged; 0 chunk(s) embedded" in again.stdout
    assert await chunk_rows(pg_pool) == rows

    (docs / "shipping.md").write_text("# Shipping\n\nWe only ship by boat now.", encoding="utf-8")
    changed = await kb_ingest(pg_dsn, tmp_path, str(docs), "--tenant", "acme", "--tag", "faq")
    assert changed.returncode == 0, changed.stderr
    assert "1 replaced, 3 unchanged; 1 chunk(s) embedded" in changed.stdout
    shipping = [row for row in await chunk_rows(pg_pool) if row["document_key"] == "shipping.md"]
    assert [row["chunk_index"] for row in shipping] == [0]


async def test_bad_paths_and_tenants_exit_2_naming_them(
    pg_dsn: str, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    await seed_conversation(pg_pool, "acme")
    missing = await kb_ingest(pg_dsn, tmp_path, str(tmp_path / "nope"), "--tenant", "acme")
    assert missing.returncode == 2
    assert "nope does not exist" in missing.stderr
    image = tmp_path / "logo.png"
    image.write_bytes(b"\x89PNG")
    wrong = await kb_ingest(pg_dsn, tmp_path, str(image), "--tenant", "acme")
    assert wrong.returncode == 2
    assert "logo.png is not a markdown or text file" in wrong.stderr
    single = tmp_path / "faq.md"
    single.write_text("# FAQ\n\nHello.", encoding="utf-8")
    unknown = await kb_ingest(pg_dsn, tmp_path, str(single), "--tenant", "umbrella")
    assert unknown.returncode == 2
    assert "tenant 'umbrella' does not exist" in unknown.stderr
    config = tmp_path / "atende.yaml"
    config.write_text("memory:\n  dimension: 768\n", encoding="utf-8")
    wide = await kb_ingest(pg_dsn, tmp_path, str(single), "--tenant", "acme", config=config)
    assert wide.returncode == 2
    assert "memory.dimension is 768 but memory_chunks.embedding is vector(384)" in wide.stderr
    assert await chunk_rows(pg_pool) == []


async def test_a_tenant_declared_only_in_the_config_file_can_be_loaded(
    pg_dsn: str, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    config = tmp_path / "atende.yaml"
    config.write_text(
        "tenants:\n"
        "  - id: demo\n"
        "    name: Demo Dental\n"
        "    channels:\n"
        "      - id: demo-tg\n"
        "        provider: telegram\n"
        "        secrets: {secret_token: {env: DEMO_TG_SECRET}}\n",
        encoding="utf-8",
    )
    single = tmp_path / "faq.md"
    single.write_text("# FAQ\n\nWe open at nine.", encoding="utf-8")
    secrets = {"DEMO_TG_SECRET": "tg-secret"}

    loaded = await kb_ingest(
        pg_dsn, tmp_path, str(single), "--tenant", "demo", config=config, secrets=secrets
    )

    assert loaded.returncode == 0, loaded.stderr
    assert "1 file(s) into tenant demo: 1 created" in loaded.stdout
    tenant = await pg_pool.fetchrow("SELECT tenant_id, name FROM tenants")
    assert tuple(tenant or ()) == ("demo", "Demo Dental")
    channel = await pg_pool.fetchrow("SELECT channel_id, provider, enabled FROM channels")
    assert tuple(channel or ()) == ("demo-tg", "telegram", True)
    unset = await kb_ingest(pg_dsn, tmp_path, str(single), "--tenant", "demo", config=config)
    assert unset.returncode == 2
    assert "environment variable DEMO_TG_SECRET is not set" in unset.stderr
