"""Migrations, the initial schema, the pool and the embedded Postgres, against a real server."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import typer
from pgvector import Vector
from typer.testing import CliRunner

from atende.commands import migrate as migrate_command
from libs.embedded.postgres import EmbeddedPostgres
from libs.errors import MigrationError
from libs.migrations import apply_migrations, load_migrations, migration_status
from libs.postgres import (
    PostgresUnavailable,
    describe_dsn,
    dsn_with_database,
    open_connection,
    open_pool,
    ping,
)
from tests.pg_fixtures import run_async_in_thread, scratch_folder

TABLES = {
    "tenants", "channels", "contacts", "conversations", "messages", "turns", "workflow_state",
    "facts", "memory_chunks", "tool_calls", "event_archive", "schema_migrations",
}  # fmt: skip


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, sql in files.items():
        (folder / name).write_text(sql)
    return folder


# --- the runner -------------------------------------------------------------------------------


def shipped_versions() -> list[int]:
    """Versions of the migrations shipped in the package, in order."""
    return [migration.version for migration in load_migrations()]


async def test_migrations_apply_on_an_empty_database(pg_empty_dsn: str) -> None:
    async with open_connection(pg_empty_dsn) as conn:
        assert await apply_migrations(conn) == shipped_versions()
        tables = {row["tablename"] for row in await conn.fetch("SELECT tablename FROM pg_tables")}
        assert tables >= TABLES
        assert await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'vector'")


async def test_a_second_run_applies_nothing_and_the_run_is_recorded(pg_empty_dsn: str) -> None:
    async with open_connection(pg_empty_dsn) as conn:
        await apply_migrations(conn)
        assert await apply_migrations(conn) == []
        rows = await conn.fetch("SELECT * FROM schema_migrations")
    assert [(row["version"], row["name"], row["checksum"]) for row in rows] == [
        (migration.version, migration.name, migration.checksum) for migration in load_migrations()
    ]
    assert rows[0]["name"] == "initial"
    assert rows[0]["applied_at"] is not None


async def test_status_lists_pending_then_applied(pg_empty_dsn: str) -> None:
    async with open_connection(pg_empty_dsn) as conn:
        assert {s.state for s in await migration_status(conn)} == {"pending"}
        await apply_migrations(conn)
        statuses = await migration_status(conn)
    assert [s.version for s in statuses] == shipped_versions()
    assert (statuses[0].version, statuses[0].name) == (1, "initial")
    assert all(s.state == "applied" and s.applied_at is not None for s in statuses)


async def test_a_changed_migration_is_refused_by_name(pg_empty_dsn: str, tmp_path: Path) -> None:
    source = _write(tmp_path, {"0001_first.sql": "CREATE TABLE a (id int);"})
    async with open_connection(pg_empty_dsn) as conn:
        assert await apply_migrations(conn, source=source) == [1]
        (source / "0001_first.sql").write_text("CREATE TABLE a (id bigint);")
        _write(source, {"0002_second.sql": "CREATE TABLE b (id int);"})
        with pytest.raises(MigrationError, match=r"0001_first\.sql differs"):
            await apply_migrations(conn, source=source)
        assert [s.state for s in await migration_status(conn, source=source)] == [
            "changed",
            "pending",
        ]
        assert await conn.fetchval("SELECT to_regclass('b')") is None


async def test_line_endings_do_not_count_as_a_change(pg_empty_dsn: str, tmp_path: Path) -> None:
    source = _write(tmp_path, {"0001_first.sql": "CREATE TABLE a (id int);\n"})
    async with open_connection(pg_empty_dsn) as conn:
        await apply_migrations(conn, source=source)
        (source / "0001_first.sql").write_bytes(b"CREATE TABLE a (id int);\r\n")
        assert await apply_migrations(conn, source=source) == []


async def test_an_applied_migration_without_its_file_is_refused(
    pg_empty_dsn: str, tmp_path: Path
) -> None:
    source = _write(tmp_path, {"0001_first.sql": "SELECT 1;", "0002_second.sql": "SELECT 2;"})
    async with open_connection(pg_empty_dsn) as conn:
        await apply_migrations(conn, source=source)
        (source / "0002_second.sql").unlink()
        with pytest.raises(MigrationError, match=r"0002_second\.sql applied but no such file"):
            await apply_migrations(conn, source=source)


async def test_a_pending_migration_older_than_an_applied_one_is_refused(
    pg_empty_dsn: str, tmp_path: Path
) -> None:
    files = {"0001_a.sql": "SELECT 1;", "0002_b.sql": "SELECT 2;", "0003_c.sql": "SELECT 3;"}
    source = _write(tmp_path, files)
    async with open_connection(pg_empty_dsn) as conn:
        await apply_migrations(conn, source=_write(tmp_path / "old", {"0001_a.sql": "SELECT 1;"}))
        third = load_migrations(source)[2]
        await conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (3, 'c', $1)",
            third.checksum,
        )
        with pytest.raises(MigrationError, match=r"0002_b\.sql is pending but 0003"):
            await apply_migrations(conn, source=source)


async def test_a_failing_migration_is_rolled_back_and_named(
    pg_empty_dsn: str, tmp_path: Path
) -> None:
    source = _write(
        tmp_path,
        {
            "0001_good.sql": "CREATE TABLE good (id int);",
            "0002_bad.sql": "CREATE TABLE half (id int);\nCREATE TABLE broken (id nosuchtype);",
        },
    )
    async with open_connection(pg_empty_dsn) as conn:
        with pytest.raises(MigrationError, match=r"0002_bad\.sql failed at line 2"):
            await apply_migrations(conn, source=source)
        assert await conn.fetchval("SELECT to_regclass('good')") is not None
        assert await conn.fetchval("SELECT to_regclass('half')") is None
        assert [s.state for s in await migration_status(conn, source=source)] == [
            "applied",
            "pending",
        ]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"0001_a.sql": "", "0003_c.sql": ""}, r"0003_c\.sql follows a gap: no file has v"),
        ({"0001_a.sql": "", "0001_b.sql": ""}, r"0001_a\.sql and 0001_b\.sql share version"),
        ({"0002_a.sql": ""}, r"0002_a\.sql follows a gap"),
        ({"1_a.sql": ""}, r"1_a\.sql is misnamed"),
        ({"0001_Bad-Name.sql": ""}, r"0001_Bad-Name\.sql is misnamed"),
    ],
)
def test_misnumbered_or_misnamed_files_are_refused(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    with pytest.raises(MigrationError, match=message):
        load_migrations(_write(tmp_path, files))


def test_non_sql_files_are_ignored(tmp_path: Path) -> None:
    source = _write(tmp_path, {"0001_a.sql": "SELECT 1;", "README.md": "notes"})
    assert [m.filename for m in load_migrations(source)] == ["0001_a.sql"]


async def test_concurrent_runners_apply_each_migration_once(pg_empty_dsn: str) -> None:
    async with (
        open_connection(pg_empty_dsn) as first,
        open_connection(pg_empty_dsn) as second,
        open_connection(pg_empty_dsn) as third,
    ):
        results = await asyncio.gather(
            apply_migrations(first), apply_migrations(second), apply_migrations(third)
        )
        assert sorted(results) == [[], [], shipped_versions()]
        assert await first.fetchval("SELECT count(*) FROM schema_migrations") == len(
            shipped_versions()
        )


async def _until_the_lock_is_held(conn: asyncpg.Connection) -> None:
    async with asyncio.timeout(5):
        while True:
            held = await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            )
            if held:
                return
            await asyncio.sleep(0.01)


async def test_a_runner_gives_up_when_the_lock_stays_taken(
    pg_empty_dsn: str, tmp_path: Path
) -> None:
    slow = _write(tmp_path, {"0001_slow.sql": "SELECT pg_sleep(1);"})
    async with open_connection(pg_empty_dsn) as first, open_connection(pg_empty_dsn) as second:
        holder = asyncio.create_task(apply_migrations(first, source=slow))
        await _until_the_lock_is_held(second)
        with pytest.raises(MigrationError, match="held the lock"):
            await apply_migrations(second, source=slow, lock_timeout_s=0.2)
        assert await holder == [1]
        assert await second.fetchval("SHOW lock_timeout") == "0"


async def test_migrating_through_a_pool_renews_its_connections(pg_empty_dsn: str) -> None:
    async with open_pool(pg_empty_dsn, min_size=1, max_size=1) as pool:
        assert await apply_migrations(pool) == shipped_versions()
        # The connection opened before `vector` existed was replaced by one that knows it.
        assert isinstance(await pool.fetchval("SELECT '[1,2]'::vector"), Vector)


# --- the schema -------------------------------------------------------------------------------


async def _conversation(pool: asyncpg.Pool, tenant: str = "acme") -> None:
    await pool.execute("INSERT INTO tenants (tenant_id, name) VALUES ($1, 'Acme')", tenant)
    await pool.execute(
        "INSERT INTO channels (tenant_id, channel_id, provider, external_id) "
        "VALUES ($1, 'wa-main', 'whatsapp', $2), ($1, 'tg', 'telegram', $3)",
        tenant,
        f"{tenant}-phone",
        f"{tenant}-bot",
    )
    await pool.execute(
        "INSERT INTO contacts (tenant_id, contact_id, provider, provider_contact_id) "
        "VALUES ($1, 'c1', 'whatsapp', '5511999990000')",
        tenant,
    )
    await pool.execute(
        "INSERT INTO conversations (tenant_id, conversation_id, channel_id, contact_id) "
        "VALUES ($1, 'conv1', 'wa-main', 'c1')",
        tenant,
    )


_INSERT_INBOUND = """
INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, provider_message_id,
                      seq, kind, body)
VALUES ('acme', 'conv1', $1, 'in', $2, $3, 'text', '{"text": "oi"}')
ON CONFLICT (tenant_id, channel_id, provider_message_id) DO NOTHING
RETURNING message_id
"""


async def test_a_provider_message_is_stored_once_per_channel(pg_pool: asyncpg.Pool) -> None:
    await _conversation(pg_pool)
    assert await pg_pool.fetchval(_INSERT_INBOUND, "wa-main", "wamid.1", 1) is not None
    assert await pg_pool.fetchval(_INSERT_INBOUND, "wa-main", "wamid.1", 2) is None
    with pytest.raises(asyncpg.UniqueViolationError, match="messages_provider_message_uq"):
        await pg_pool.execute(
            "INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, "
            "provider_message_id, seq, kind) VALUES ('acme', 'conv1', 'wa-main', 'in', "
            "'wamid.1', 3, 'text')"
        )
    # The same id on another channel is another message.
    assert await pg_pool.fetchval(_INSERT_INBOUND, "tg", "wamid.1", 4) is not None


async def test_at_most_one_open_turn_per_conversation(pg_pool: asyncpg.Pool) -> None:
    await _conversation(pg_pool)
    insert = (
        "INSERT INTO turns (tenant_id, turn_id, conversation_id, fencing_token, first_seq, "
        "last_seq) VALUES ('acme', $1, 'conv1', $2, 1, 1)"
    )
    await pg_pool.execute(insert, "t1", 1)
    with pytest.raises(asyncpg.UniqueViolationError, match="turns_one_open_uq"):
        await pg_pool.execute(insert, "t2", 2)
    await pg_pool.execute(
        "UPDATE turns SET status = 'superseded', closed_at = now() WHERE turn_id = 't1'"
    )
    await pg_pool.execute(insert, "t2", 2)


async def test_rows_cannot_point_at_another_tenants_rows(pg_pool: asyncpg.Pool) -> None:
    await _conversation(pg_pool, "acme")
    await pg_pool.execute("INSERT INTO tenants (tenant_id, name) VALUES ('other', 'Other')")
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await pg_pool.execute(
            "INSERT INTO workflow_state (tenant_id, conversation_id, flow, step) "
            "VALUES ('other', 'conv1', 'booking', 'start')"
        )


def _embedding(*head: float) -> list[float]:
    return [*head, *([0.0] * (384 - len(head)))]


async def test_memory_chunks_rank_by_cosine_distance_within_a_tenant(
    pg_pool: asyncpg.Pool,
) -> None:
    await pg_pool.execute("INSERT INTO tenants (tenant_id, name) VALUES ('acme', 'A'), ('b', 'B')")
    chunks = [
        ("acme", "far", _embedding(0.0, 1.0)),
        ("acme", "near", _embedding(1.0, 0.1)),
        ("acme", "middle", _embedding(1.0, 1.0)),
        ("b", "other tenant, nearest", _embedding(1.0, 0.0)),
    ]
    await pg_pool.executemany(
        "INSERT INTO memory_chunks (tenant_id, source_kind, document_key, chunk_index, content, "
        "content_sha256, embedding, embedding_model) "
        "VALUES ($1, 'document', 'faq', $2, $3, repeat('0', 64), $4, 'test')",
        [(tenant, index, text, vector) for index, (tenant, text, vector) in enumerate(chunks)],
    )
    rows = await pg_pool.fetch(
        "SELECT content, embedding, embedding <=> $1 AS distance FROM memory_chunks "
        "WHERE tenant_id = 'acme' ORDER BY embedding <=> $1 LIMIT 3",
        _embedding(1.0, 0.0),
    )
    assert [row["content"] for row in rows] == ["near", "middle", "far"]
    assert isinstance(rows[0]["embedding"], Vector)
    assert rows[0]["embedding"].to_list()[:2] == pytest.approx([1.0, 0.1])
    assert rows[2]["distance"] == pytest.approx(1.0)


# --- the pool -----------------------------------------------------------------------------------


async def test_ping_answers_with_the_round_trip(pg_pool: asyncpg.Pool) -> None:
    assert 0 <= await ping(pg_pool) < 2


async def test_an_unreachable_server_is_reported_without_the_password() -> None:
    dsn = "postgresql://atende:s3cret@127.0.0.1:9/atende"
    with pytest.raises(PostgresUnavailable, match="cannot connect") as caught:
        async with open_pool(dsn, connect_timeout_s=1):
            pass
    assert "s3cret" not in str(caught.value)
    assert "postgresql://atende@127.0.0.1:9/atende" in str(caught.value)


def test_dsn_helpers_keep_socket_hosts_and_drop_passwords() -> None:
    dsn = "postgresql://postgres:pw@/atende?host=/tmp/pg&port=5432&password=pw"
    assert describe_dsn(dsn) == "postgresql://postgres@/atende?host=/tmp/pg&port=5432"
    assert dsn_with_database(dsn, "t_1").startswith("postgresql://postgres:pw@/t_1?host=/tmp/pg")


# --- the command --------------------------------------------------------------------------------


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    migrate_command.register(app)
    return app


async def test_the_migrate_command_applies_then_reports(pg_empty_dsn: str) -> None:
    runner, env = CliRunner(), {"DATABASE_URL": pg_empty_dsn}
    # The command runs its own event loop, so it gets a thread of its own.
    first = await asyncio.to_thread(runner.invoke, _cli(), ["migrate"], env=env)
    assert first.exit_code == 0, first.output
    versions = shipped_versions()
    listed = ", ".join(f"{version:04d}" for version in versions)
    assert f"applied {len(versions)} migration(s): {listed}" in first.output
    status = await asyncio.to_thread(runner.invoke, _cli(), ["migrate", "--status"], env=env)
    assert status.exit_code == 0, status.output
    assert "initial" in status.output
    assert "applied" in status.output


def test_the_migrate_command_fails_in_one_line() -> None:
    result = CliRunner().invoke(
        _cli(), ["migrate"], env={"DATABASE_URL": "postgresql://x:pw@127.0.0.1:9/x"}
    )
    assert result.exit_code == 1
    assert result.output.strip().startswith("atende migrate: cannot connect to Postgres")
    assert len(result.output.strip().splitlines()) == 1


# --- the embedded server ------------------------------------------------------------------------


@pytest.fixture
def pg_folder() -> Iterator[Path]:
    """A data folder the server's account may reach (pytest's tmp root is private)."""
    base = scratch_folder("atende-pg-test-")
    yield base / "postgres"
    shutil.rmtree(base, ignore_errors=True)


def _server_pids(pgdata: Path) -> list[int]:
    """Pids of every process running in ``pgdata``: the postmaster and all its children."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == pgdata:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _wait_until_gone(pgdata: Path, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _server_pids(pgdata) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _server_pids(pgdata) == []


async def _scalar(dsn: str, sql: str) -> object:
    async with open_connection(dsn) as conn:
        return await conn.fetchval(sql)


def test_stop_leaves_no_process_and_a_restart_keeps_the_data(pg_folder: Path) -> None:
    server = EmbeddedPostgres(pg_folder, durable=False)
    with server:
        assert server.owned
        assert _server_pids(server.pgdata)
        run_async_in_thread(lambda: _scalar(server.dsn, "CREATE TABLE kept AS SELECT 42 AS x"))
    assert _server_pids(server.pgdata) == []
    server.stop()  # idempotent

    with EmbeddedPostgres(pg_folder, durable=False) as again:
        assert run_async_in_thread(lambda: _scalar(again.dsn, "SELECT x FROM kept")) == 42
    assert _server_pids(server.pgdata) == []


def test_a_server_already_running_is_reused_and_left_to_its_owner(pg_folder: Path) -> None:
    with EmbeddedPostgres(pg_folder, durable=False) as owner:
        guest = EmbeddedPostgres(pg_folder)
        assert guest.start() == owner.dsn
        assert not guest.owned
        guest.stop()
        assert run_async_in_thread(lambda: _scalar(owner.dsn, "SELECT 1")) == 1
    assert _server_pids(owner.pgdata) == []


_CHILD = """
import os, sys
from pathlib import Path
from libs.embedded.postgres import EmbeddedPostgres
server = EmbeddedPostgres(Path(sys.argv[1]), durable=False)
server.start()
print(server.pgdata, flush=True)
if sys.argv[2] == "sigkill":
    os.kill(os.getpid(), 9)
"""


@pytest.mark.parametrize("ending", ["exit", "sigkill"])
def test_the_server_stops_when_its_process_ends(
    pg_folder: Path, repo_root: Path, ending: str
) -> None:
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(pg_folder), ending],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.stdout.strip(), child.stderr
    _wait_until_gone(Path(child.stdout.strip()))
