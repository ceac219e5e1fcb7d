"""``email.send`` against a real local SMTP server (aiosmtpd): headers, body, refusals, AUTH."""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from pydantic import ValidationError

from libs.keys import KeySpace
from tests.tool_support import SeededConversation, tool_context, tool_services
from tool_gateway.tool import ToolArgumentsInvalid, ToolContext, ToolFailed, ToolUnavailable
from tool_gateway.tools.email import EMAIL_SEND, EmailConfig, SendEmailInput

SEEDED = SeededConversation("acme", "acme-wa", "c1", "acme-conversation-1", "acme-turn-1", 1)
REFUSED = "nobody@example.com"


@dataclass
class Mailbox:
    """What the SMTP server received and how it behaves."""

    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    deferred: set[str] = field(default_factory=set)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address == REFUSED:
            return "550 5.1.1 no such mailbox"
        if address in self.deferred:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        assert isinstance(envelope.content, bytes)
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((str(envelope.mail_from), list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == b"mail-pw"
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)  # the server answers 235 or 535


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
def smtp_port(mailbox: Mailbox) -> Iterator[int]:
    """A plain SMTP server offering AUTH without TLS (the STARTTLS test requires both)."""
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=mailbox.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    yield controller.port
    controller.stop()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made by the openssl command line)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return key, cert


def config(port: int, **overrides: Any) -> EmailConfig:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": "atende",
        "password": {"env": "SMTP_PASSWORD"},
        "from_address": "help@shop.example",
        "from_name": "Loja Exemplo",
    }
    values.update(overrides)
    return EmailConfig.model_validate(values, context={"env": {"SMTP_PASSWORD": "mail-pw"}})


def context_for(
    redis: aioredis.Redis, keys: KeySpace, email: EmailConfig | None, **options: Any
) -> ToolContext:
    services = tool_services(redis, keys, None, settings=SimpleNamespace(email=email))
    return tool_context(SEEDED, services, **options)


def email(**overrides: Any) -> SendEmailInput:
    values: dict[str, Any] = {
        "to": ["maria@example.com"],
        "subject": "Seu orçamento",
        "text": "Olá Maria,\nsegue o orçamento: R$ 120,00.\n",
    }
    values.update(overrides)
    return SendEmailInput.model_validate(values)


async def test_the_server_receives_the_message_with_its_headers(
    redis: aioredis.Redis, keys: KeySpace, mailbox: Mailbox, smtp_port: int
) -> None:
    context = context_for(redis, keys, config(smtp_port))
    result = await EMAIL_SEND.run(context, email(reply_to="sales@shop.example"))

    [(sender, recipients, received)] = mailbox.messages
    assert (sender, recipients) == ("help@shop.example", ["maria@example.com"])
    assert mailbox.logins == ["atende"]
    assert received["From"] == "Loja Exemplo <help@shop.example>"
    assert received["To"] == "maria@example.com"
    assert received["Subject"] == "Seu orçamento"
    assert received["Reply-To"] == "sales@shop.example"
    assert received["X-Atende-Tool-Call"] == "acme-turn-1 call-1"
    assert received["Message-ID"] == result.message_id
    assert result.message_id.endswith("@shop.example>")
    assert received["Date"] is not None
    assert received.get_content_charset() == "utf-8"
    body = received.get_content().replace("\r\n", "\n")
    assert body == "Olá Maria,\nsegue o orçamento: R$ 120,00.\n"
    assert (result.accepted, result.refused, result.dry_run) == (1, [], False)


async def test_a_resend_of_the_same_call_has_the_same_message_id(
    redis: aioredis.Redis, keys: KeySpace, mailbox: Mailbox, smtp_port: int
) -> None:
    first = await EMAIL_SEND.run(context_for(redis, keys, config(smtp_port)), email())
    again = await EMAIL_SEND.run(context_for(redis, keys, config(smtp_port)), email())
    other = await EMAIL_SEND.run(
        context_for(redis, keys, config(smtp_port), tool_call_id="call-2"), email()
    )

    assert first.message_id == again.message_id != other.message_id
    assert [m[2]["Message-ID"] for m in mailbox.messages] == [
        first.message_id,
        first.message_id,
        other.message_id,
    ]


async def test_a_refused_recipient_fails_the_call(
    redis: aioredis.Redis, keys: KeySpace, mailbox: Mailbox, smtp_port: int
) -> None:
    with pytest.raises(ToolFailed, match=r"refused every recipient.*550 5\.1\.1 no such mailbox"):
        await EMAIL_SEND.run(context_for(redis, keys, config(smtp_port)), email(to=[REFUSED]))
    assert mailbox.messages == []


async def test_one_refused_recipient_among_others_is_reported(
    redis: aioredis.Redis, keys: KeySpace, mailbox: Mailbox, smtp_port: int
) -> None:
    context = context_for(redis, keys, config(smtp_port))
    result = await EMAIL_SEND.run(context, email(to=["maria@example.com", REFUSED]))

    assert (result.accepted, result.refused) == (1, [REFUSED])
    assert mailbox.messages[0][1] == ["maria@example.com"]


async def test_a_deferred_recipient_means_unavailable(
    redis: aioredis.Redis, keys: KeySpace, mailbox: Mailbox, smtp_port: int
) -> None:
    mailbox.deferred.add("maria@example.com")
    with pytest.raises(ToolUnavailable, match=r"451 4\.3\.0"):
        await EMAIL_SEND.run(context_for(redis, keys, config(smtp_port)), email())


async def test_wrong_credentials_mean_unavailable(
    redis: aioredis.Redis, keys: KeySpace, mailbox: Mailbox, smtp_port: int
) -> None:
    bad = EmailConfig.model_validate(
        config(smtp_port).model_dump() | {"password": {"env": "SMTP_PASSWORD"}},
        context={"env": {"SMTP_PASSWORD": "wrong"}},
    )
    with pytest.raises(ToolUnavailable, match="refused our credentials: 535"):
        await EMAIL_SEND.run(context_for(redis, keys, bad), email())
    assert mailbox.messages == []


async def test_a_server_that_is_down_is_unavailable(redis: aioredis.Redis, keys: KeySpace) -> None:
    port = free_port()
    with pytest.raises(ToolUnavailable, match=f"127.0.0.1:{port} could not be reached"):
        await EMAIL_SEND.run(context_for(redis, keys, config(port)), email())


async def test_starttls_with_a_private_ca(
    redis: aioredis.Redis, keys: KeySpace, mailbox: Mailbox, certificate: tuple[Path, Path]
) -> None:
    key, cert = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=server_tls,
        require_starttls=True,
        authenticator=mailbox.authenticate,
        auth_required=True,
    )
    controller.start()
    try:
        secure = config(controller.port, security="starttls", ca_file=str(cert))
        await EMAIL_SEND.run(context_for(redis, keys, secure), email())
        untrusted = config(controller.port, security="starttls")
        with pytest.raises(ToolUnavailable, match=r"could not be reached: .*CERTIFICATE_VERIFY"):
            await EMAIL_SEND.run(context_for(redis, keys, untrusted), email())
    finally:
        controller.stop()
    assert len(mailbox.messages) == 1
    assert mailbox.logins == ["atende"]


async def test_recipient_rules_of_the_config(
    redis: aioredis.Redis, keys: KeySpace, mailbox: Mailbox, smtp_port: int
) -> None:
    strict = config(smtp_port, allowed_recipient_domains=["example.com"], max_recipients=2)
    context = context_for(redis, keys, strict)
    with pytest.raises(
        ToolArgumentsInvalid, match=r"only go to example\.com; not to evil\.example"
    ):
        await EMAIL_SEND.run(context, email(to=["x@evil.example"]))
    with pytest.raises(ToolArgumentsInvalid, match="at most 2 recipients per email, got 3"):
        await EMAIL_SEND.run(context, email(to=[f"{n}@example.com" for n in "abc"]))
    assert mailbox.messages == []


async def test_a_dry_run_sends_nothing(
    redis: aioredis.Redis, keys: KeySpace, mailbox: Mailbox, smtp_port: int
) -> None:
    assert EMAIL_SEND.simulate is not None
    context = context_for(redis, keys, config(smtp_port), dry_run=True)
    result = await EMAIL_SEND.simulate(context, email())

    assert (result.dry_run, result.accepted, result.subject) == (True, 1, "Seu orçamento")
    assert result.message_id.startswith("<atende.")
    assert mailbox.messages == []


async def test_no_email_config_means_unavailable(redis: aioredis.Redis, keys: KeySpace) -> None:
    with pytest.raises(ToolUnavailable, match="email is not configured"):
        await EMAIL_SEND.run(context_for(redis, keys, None), email())


@pytest.mark.parametrize(
    "overrides",
    [
        {"to": ["maria@example.com\r\nBcc: all@example.com"]},
        {"to": ["Maria <maria@example.com>"]},
        {"to": []},
        {"subject": "hi\r\nBcc: all@example.com"},
        {"reply_to": "a@b.example, c@d.example"},
    ],
)
def test_header_injection_is_refused_by_the_schema(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        email(**overrides)


@pytest.mark.parametrize("separator", ["\u2028", "\x0b", "\x85"])
async def test_a_subject_with_another_line_separator_is_refused_and_nothing_sent(
    redis: aioredis.Redis, keys: KeySpace, smtp_port: int, mailbox: Mailbox, separator: str
) -> None:
    with pytest.raises(ToolArgumentsInvalid, match="the email cannot be built"):
        await EMAIL_SEND.run(
            context_for(redis, keys, config(smtp_port)), email(subject=f"hi{separator}there")
        )
    assert mailbox.messages == []


def test_recipients_are_marked_sensitive() -> None:
    assert EMAIL_SEND.sensitive_fields() == frozenset({"to", "reply_to"})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"password": None}, "username and password go together"),
        ({"allowed_recipient_domains": ["Example.COM"]}, "not a lower-case domain"),
        ({"security": "ssl"}, "security"),
        ({"from_address": "not-an-address"}, "from_address"),
    ],
)
def test_bad_email_config_is_refused_with_a_reason(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(25, **overrides)
