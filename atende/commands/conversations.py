"""``atende conversations release``: hand a conversation a human holds back to the AI.

Uses the Redis and Postgres the workers use (``REDIS_URL``, ``DATABASE_URL``; the embedded
ones under the data folder when unset, as ``atende dev`` does). Exit codes: 0 released,
2 bad input (no such conversation, one in several tenants without ``--tenant``, or one no
human holds: nothing changed), 1 anything else (e.g. Redis or the database unreachable).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import asyncpg
import typer
from redis.exceptions import RedisError
from rich.console import Console
from rich.markup import escape

from atende.servers import ServerUrls, servers
from atende.setup import load_settings
from dispatcher.assignment import (
    ConversationNotFound,
    ConversationRelease,
    Released,
    tenants_with_conversation,
)
from dispatcher.mailbox import Mailbox
from libs.errors import AtendeError, ConfigurationError
from libs.keys import KeySpace
from libs.partition_layout import check_partition_count
from libs.postgres import open_pool
from libs.redis_client import make_redis
from libs.settings import Settings


class BadInput(AtendeError):
    """The conversation named cannot be released as asked."""


def register(app: typer.Typer) -> None:
    """Add the ``conversations`` command group to ``app``."""
    group = typer.Typer(
        name="conversations", help="Conversations and who holds them.", no_args_is_help=True
    )
    group.command("release")(release)
    app.add_typer(group, name="conversations")


def release(
    conversation_id: Annotated[
        str, typer.Argument(metavar="ID", help="The conversation, e.g. wa-main:5511987654321.")
    ],
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="Its tenant; needed when several have this id."),
    ] = None,
) -> None:
    """Return conversation ID, held by a human, to the AI; its next message gets an answer."""
    settings = load_settings()
    try:
        with _servers(settings) as urls:
            released = asyncio.run(_release(settings, urls, conversation_id, tenant))
    except (BadInput, ConversationNotFound, ConfigurationError) as exc:
        _fail(str(exc), code=2)
    except (AtendeError, OSError, RedisError, asyncpg.PostgresError) as exc:
        _fail(str(exc), code=1)
    if not released.was_human:
        _fail(
            f"conversation '{conversation_id}' of tenant '{released.tenant_id}' is not held "
            "by a human; nothing changed",
            code=2,
        )
    dropped = f"; {released.dropped} message(s) left to the human" if released.dropped else ""
    Console().print(
        f"conversation {escape(conversation_id)} of tenant {escape(released.tenant_id)} "
        f"returned to the AI{dropped}",
        soft_wrap=True,
        highlight=False,
    )


@contextmanager
def _servers(settings: Settings) -> Iterator[ServerUrls]:
    """The configured Redis and Postgres; embedded ones only for what is not configured."""
    if settings.redis_url and settings.database_url:
        yield ServerUrls(settings.redis_url, settings.database_url)
        return
    with servers(settings) as urls:
        yield urls


async def _release(
    settings: Settings, urls: ServerUrls, conversation_id: str, tenant: str | None
) -> Released:
    if urls.database_url is None:  # servers() starts one when DATABASE_URL is unset
        raise BadInput("a database is needed to release a conversation")
    redis = make_redis(urls.redis_url)
    keys = KeySpace(settings.namespace)
    try:
        await check_partition_count(redis, keys, settings.stream_partitions)
        async with open_pool(urls.database_url, min_size=1, max_size=2) as pool:
            tenant_id = tenant or await _only_tenant(pool, conversation_id)
            mailbox = Mailbox(
                redis, keys, partitions=settings.stream_partitions, holder="atende-cli"
            )
            return await ConversationRelease(pool, mailbox).release(
                tenant_id, conversation_id, released_by="operator"
            )
    finally:
        await redis.aclose()


async def _only_tenant(pool: asyncpg.Pool, conversation_id: str) -> str:
    tenants = await tenants_with_conversation(pool, conversation_id)
    if not tenants:
        raise BadInput(f"no tenant has a conversation '{conversation_id}'")
    if len(tenants) > 1:
        raise BadInput(
            f"conversation '{conversation_id}' exists in tenants {', '.join(tenants)}; "
            "name one with --tenant"
        )
    return tenants[0]


def _fail(message: str, *, code: int) -> NoReturn:
    Console(stderr=True).print(
        f"[bold red]atende conversations release:[/] {escape(message)}",
        soft_wrap=True,
        highlight=False,
    )
    raise typer.Exit(code=code)
