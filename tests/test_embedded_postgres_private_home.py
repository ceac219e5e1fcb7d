"""The embedded Postgres started by root from a private home (mode 0700, as /root is).

Postgres refuses to run as root, so it runs as an unprivileged account that cannot enter such
a home: its cluster goes to a folder it can enter, and the data outlives a restart.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from libs.embedded.postgres import EmbeddedPostgres
from libs.embedded.postgres_host import reachable_cluster_folder, service_account
from libs.errors import EmbeddedServerError
from libs.postgres import open_connection
from tests.pg_fixtures import run_async_in_thread, scratch_folder

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root's server runs as another account"
)


@pytest.fixture
def private_home() -> Iterator[Path]:
    base = scratch_folder("atende-private-home-")
    base.chmod(0o700)
    yield base
    for data_dir in base.rglob("data"):
        account = service_account()
        assert account is not None
        shutil.rmtree(reachable_cluster_folder(data_dir.resolve(), account), ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)


async def _scalar(dsn: str, sql: str) -> object:
    async with open_connection(dsn) as conn:
        return await conn.fetchval(sql)


@pytest.mark.slow
def test_a_data_folder_in_a_private_home_runs_and_keeps_its_data(private_home: Path) -> None:
    data_dir = private_home / "checkout" / ".atende" / "data"
    with EmbeddedPostgres(data_dir, durable=False) as server:
        assert not server.pgdata.is_relative_to(private_home), "the cluster is reachable"
        run_async_in_thread(lambda: _scalar(server.dsn, "CREATE TABLE kept AS SELECT 7 AS x"))
    location = (data_dir / "pgdata.location").read_text().strip()
    assert location == str(server.pgdata)

    with EmbeddedPostgres(data_dir, durable=False) as again:
        assert again.pgdata == server.pgdata
        assert run_async_in_thread(lambda: _scalar(again.dsn, "SELECT x FROM kept")) == 7
    assert oct(private_home.stat().st_mode & 0o777) == "0o700", "the home was left private"


def test_a_relocation_folder_others_may_write_is_refused(private_home: Path) -> None:
    account = service_account()
    assert account is not None
    data_dir = (private_home / "data").resolve()
    folder = reachable_cluster_folder(data_dir, account)
    try:
        folder.chmod(0o777)
        with pytest.raises(EmbeddedServerError, match="only it may write"):
            reachable_cluster_folder(data_dir, account)
    finally:
        folder.chmod(0o711)


def test_a_reachable_data_folder_is_used_as_it_is() -> None:
    account = service_account()
    assert account is not None
    base = scratch_folder("atende-open-home-")
    try:
        assert reachable_cluster_folder(base, account) == base
    finally:
        shutil.rmtree(base, ignore_errors=True)
