"""From the config file to ready senders: a real send per provider, missing fields, breakers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, fields
from pathlib import Path
from string import Template

import aiohttp
import pytest
import redis.asyncio as aioredis

from channels.config import ChannelsConfig
from channels.sending_errors import ChannelCircuitOpen, ProviderUnavailable
from channels.sending_fields import ChannelCannotSend
from delivery.senders import (
    OutboundSenders,
    UnknownChannel,
    build_sender,
    prepare_sender,
    sending_problems,
)
from events.types.reply_parts import ReplyPart, ReplyTemplate, ReplyText
from libs.errors import ConfigurationError
from libs.keys import KeySpace
from libs.yaml_config import load_yaml_model
from tests.provider_servers import (
    ChatwootServer,
    GenericAppServer,
    ProviderServer,
    Recorded,
    Scripted,
    TelegramBotServer,
    TwilioServer,
    WhatsAppGraphServer,
    graph_error,
)

FIXTURES = Path(__file__).parent / "fixtures" / "config"
ENV = {
    "WA_APP_SECRET": "wa-app-secret",
    "WA_VERIFY_TOKEN": "wa-verify",
    "WA_ACCESS_TOKEN": "EAAGm0PX4ZCpsBAmain",
    "WA_SECOND_ACCESS_TOKEN": "EAAGm0PX4ZCpsBAsecond",
    "TWILIO_AUTH_TOKEN": "f00dfeedf00dfeedf00dfeedf00dfeed",
    "TG_SECRET_TOKEN": "tg-secret",
    "TG_BOT_TOKEN": "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11",
    "CW_WEBHOOK_SECRET": "cw-webhook-secret",
    "CW_API_TOKEN": "cw-api-token",
    "APP_SIGNING_SECRET": "app-signing-secret",
}
ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
HI: list[ReplyPart] = [ReplyText(text="hi")]


@dataclass(frozen=True, slots=True)
class Providers:
    """One local server per provider API, plus a second Graph API for ``wa-second``."""

    whatsapp: WhatsAppGraphServer
    whatsapp_second: WhatsAppGraphServer
    twilio: TwilioServer
    telegram: TelegramBotServer
    chatwoot: ChatwootServer
    generic: GenericAppServer

    def urls(self) -> dict[str, str]:
        """The values of the fixture file's URL placeholders (``$whatsapp_url``…)."""
        return {f"{f.name}_url": getattr(self, f.name).base_url for f in fields(self)}


@pytest.fixture
async def providers() -> AsyncIterator[Providers]:
    async with AsyncExitStack() as stack:
        yield Providers(
            whatsapp=await stack.enter_async_context(
                WhatsAppGraphServer(ENV["WA_ACCESS_TOKEN"], "106540352242922")
            ),
            whatsapp_second=await stack.enter_async_context(
                WhatsAppGraphServer(ENV["WA_SECOND_ACCESS_TOKEN"], "106540352249999")
            ),
            twilio=await stack.enter_async_context(
                TwilioServer(ACCOUNT_SID, ENV["TWILIO_AUTH_TOKEN"])
            ),
            telegram=await stack.enter_async_context(TelegramBotServer(ENV["TG_BOT_TOKEN"])),
            chatwoot=await stack.enter_async_context(ChatwootServer(7, ENV["CW_API_TOKEN"])),
            generic=await stack.enter_async_context(GenericAppServer(ENV["APP_SIGNING_SECRET"])),
        )


def load(
    tmp_path: Path,
    fixture: str,
    urls: Mapping[str, str] | None = None,
    env: Mapping[str, str] = ENV,
) -> ChannelsConfig:
    """A fixture file with its URL placeholders filled in, loaded as the CLI loads it."""
    text = (FIXTURES / fixture).read_text()
    path = tmp_path / fixture
    path.write_text(Template(text).substitute(urls or {}))
    return load_yaml_model(path, ChannelsConfig, env)


@pytest.fixture
def config(tmp_path: Path, providers: Providers) -> ChannelsConfig:
    return load(tmp_path, "sending.yaml", providers.urls())


@pytest.fixture
async def senders(
    config: ChannelsConfig, redis: aioredis.Redis, keys: KeySpace
) -> AsyncIterator[OutboundSenders]:
    async with OutboundSenders(config, redis=redis, keys=keys) as built:
        yield built


def check_whatsapp(request: Recorded, reply_id: str) -> None:
    assert request.path == "/v21.0/106540352242922/messages"
    body = request.json()
    assert body["biz_opaque_callback_data"] == reply_id
    assert body["to"] == "5511987654321"


def check_twilio(request: Recorded, reply_id: str) -> None:
    form = dict(request.form())
    assert form["From"] == "whatsapp:+14155238886"
    assert form["To"] == "whatsapp:+5511987654321"
    # No status_callback_url configured: statuses go to the channel's public webhook URL.
    assert form["StatusCallback"] == (
        f"https://hooks.acme.example/webhooks/twilio/sms?atende_reply_id={reply_id}"
    )
    assert request.headers["X-Atende-Reply-Id"] == reply_id


def check_telegram(request: Recorded, reply_id: str) -> None:
    assert request.match["method"] == "sendMessage"
    assert request.json() == {"chat_id": "5511987654321", "text": "hi"}
    assert request.headers["X-Atende-Reply-Id"] == reply_id


def check_chatwoot(request: Recorded, reply_id: str) -> None:
    assert request.path == "/api/v1/accounts/7/conversations/42/messages"
    assert request.json()["content_attributes"] == {"atende_reply_id": reply_id}


def check_generic(request: Recorded, reply_id: str) -> None:
    assert request.json()["reply_id"] == reply_id
    assert request.headers["Idempotency-Key"] == reply_id


@pytest.mark.parametrize(
    ("channel_id", "server", "recipient", "message_id", "check"),
    [
        ("wa-main", "whatsapp", "+5511987654321", "wamid.HBgM000001", check_whatsapp),
        ("sms", "twilio", "+5511987654321", f"SM{1:032x}", check_twilio),
        ("tg-bot", "telegram", "5511987654321", "100", check_telegram),
        ("cw-inbox", "chatwoot", "42", "5000", check_chatwoot),
        ("app", "generic", "contact-9", "app-1", check_generic),
    ],
)
async def test_each_provider_sends_with_what_its_channel_config_says(
    senders: OutboundSenders,
    providers: Providers,
    channel_id: str,
    server: str,
    recipient: str,
    message_id: str,
    check: Callable[[Recorded, str], None],
) -> None:
    sender = senders.get("acme", channel_id)
    assert sender.channel_id == channel_id
    sent = await sender.send(recipient, HI, reply_id="reply-1")
    # Each server answers bad credentials with an error, so an id means it accepted them.
    assert [(m.provider_message_id, m.reply_id, m.part_index) for m in sent] == [
        (message_id, "reply-1", 0)
    ]
    recorded: ProviderServer = getattr(providers, server)
    assert len(recorded.requests) == 1
    check(recorded.requests[0], "reply-1")


async def test_twilio_templates_use_the_content_sids_of_the_config(
    senders: OutboundSenders, providers: Providers
) -> None:
    template = ReplyTemplate(name="appointment_reminder", language="en", parameters=("Ana",))
    await senders.get("acme", "sms").send("+5511987654321", [template], reply_id="reply-2")
    form = dict(providers.twilio.requests[0].form())
    assert form["ContentSid"] == "HX0123456789abcdef0123456789abcdef"
    assert form["ContentVariables"] == '{"1": "Ana"}'


async def test_the_retry_policy_comes_from_the_channels_sending_section(
    senders: OutboundSenders, providers: Providers
) -> None:
    unavailable = Scripted(500, {"ok": False, "error_code": 500, "description": "Internal"})
    providers.telegram.script(unavailable, unavailable)
    sent = await senders.get("acme", "tg-bot").send("5511987654321", HI, reply_id="reply-3")
    assert len(providers.telegram.requests) == 3, "max_attempts: 3 in the config"
    assert [m.provider_message_id for m in sent] == ["100"]
    providers.whatsapp.script(graph_error(131000, "Something went wrong", status=500))
    with pytest.raises(ProviderUnavailable):
        await senders.get("acme", "wa-main").send("5511987654321", HI, reply_id="reply-4")
    assert len(providers.whatsapp.requests) == 1, "max_attempts: 1 in the config"


async def test_a_failing_channel_opens_its_own_breaker_not_its_siblings(
    senders: OutboundSenders,
    providers: Providers,
    config: ChannelsConfig,
    redis: aioredis.Redis,
    keys: KeySpace,
) -> None:
    failing = senders.get("acme", "wa-main")
    providers.whatsapp.script(*[graph_error(131000, "Something went wrong", status=500)] * 2)
    for _ in range(2):  # breaker_fail_max: 2
        with pytest.raises(ProviderUnavailable):
            await failing.send("5511987654321", HI, reply_id="reply-5")
    with pytest.raises(ChannelCircuitOpen, match="circuit breaker 'channel:wa-main' is open"):
        await failing.send("5511987654321", HI, reply_id="reply-5")
    assert len(providers.whatsapp.requests) == 2, "an open breaker calls nobody"
    sibling = await senders.get("acme", "wa-second").send("5511987654321", HI, reply_id="r-6")
    assert [m.provider_message_id for m in sibling] == ["wamid.HBgM000001"]
    assert providers.whatsapp_second.requests[0].json()["to"] == "5511987654321"
    # Another replica, built from the same config, sees the shared state in Redis.
    async with OutboundSenders(config, redis=redis, keys=keys) as replica:
        with pytest.raises(ChannelCircuitOpen):
            await replica.get("acme", "wa-main").send("5511987654321", HI, reply_id="reply-7")
        await replica.get("acme", "wa-second").send("5511987654321", HI, reply_id="reply-8")
    assert len(providers.whatsapp.requests) == 2
    assert len(providers.whatsapp_second.requests) == 2


async def test_unknown_channels_fail_lookup_without_naming_other_tenants_channels(
    senders: OutboundSenders,
) -> None:
    with pytest.raises(UnknownChannel) as unknown:
        senders.get("acme", "wa-nope")
    assert str(unknown.value) == (
        "tenant 'acme' has no channel 'wa-nope' to send through; its channels: wa-main, "
        "wa-second, sms, tg-bot, cw-inbox, app"
    )
    with pytest.raises(UnknownChannel) as foreign:
        senders.get("beta", "wa-main")
    assert str(foreign.value) == (
        "tenant 'beta' has no channel 'wa-main' to send through; its channels: beta-tg"
    )
    with pytest.raises(UnknownChannel, match="no tenant 'gamma' is configured"):
        senders.get("gamma", "wa-main")
    assert senders.get("beta", "beta-tg").channel_id == "beta-tg"


RECEIVE_ONLY_PROBLEMS = [
    "tenants[0].channels[0].phone_number_id: missing; replies cannot be sent without the "
    "number's Cloud API id",
    "tenants[0].channels[0].secrets.access_token: missing; replies cannot be sent without a "
    "Cloud API access token ({env: NAME})",
    "tenants[0].channels[1].account_sid: missing; replies cannot be sent without the account "
    "SID (AC…)",
    "tenants[0].channels[1].sender: missing; replies cannot be sent without a From number, "
    "whatsapp:+… address or messaging service SID",
    "tenants[0].channels[2].secrets.bot_token: missing; replies cannot be sent without the "
    "bot's token ({env: NAME})",
    "tenants[0].channels[3].api_base_url: missing; replies cannot be sent without the "
    "Chatwoot installation's URL",
    "tenants[0].channels[3].account_id: missing; replies cannot be sent without the Chatwoot "
    "account id",
    "tenants[0].channels[3].secrets.api_access_token: missing; replies cannot be sent without "
    "an agent bot's access token ({env: NAME})",
    "tenants[0].channels[4].callback_url: missing; replies cannot be sent without the app's "
    "URL that receives replies",
    "tenants[0].channels[5].sender: missing; replies cannot be sent without a From number, "
    "whatsapp:+… address or messaging service SID",
]


def test_sending_problems_name_every_missing_field_of_receive_only_channels(
    tmp_path: Path,
) -> None:
    assert sending_problems(load(tmp_path, "receive_only.yaml")) == RECEIVE_ONLY_PROBLEMS


def test_sending_problems_are_empty_when_every_channel_can_send(
    config: ChannelsConfig,
) -> None:
    assert sending_problems(config) == []


def test_a_malformed_secret_is_a_sending_problem_of_its_channel(
    tmp_path: Path, providers: Providers
) -> None:
    env = {**ENV, "TG_BOT_TOKEN": "not-a-bot-token"}
    config = load(tmp_path, "sending.yaml", providers.urls(), env)
    problems = sending_problems(config)
    expected = "bot_token must look like '123456:ABC-DEF…' (as BotFather gives it)"
    assert problems == [
        f"tenants[0].channels[3]: {expected}",
        f"tenants[1].channels[0]: {expected}",
    ]
    with pytest.raises(ChannelCannotSend) as failure:
        prepare_sender(config.tenants[1].channels[0])
    assert str(failure.value) == f"telegram channel 'beta-tg' cannot send: {expected}"


async def test_a_receive_only_channel_fails_lookup_and_build_naming_what_to_set(
    tmp_path: Path, redis: aioredis.Redis, keys: KeySpace
) -> None:
    config = load(tmp_path, "receive_only.yaml")
    async with OutboundSenders(config, redis=redis, keys=keys) as senders:
        with pytest.raises(ChannelCannotSend) as failure:
            senders.get("beta", "wa-inbound")
    assert str(failure.value) == (
        "whatsapp channel 'wa-inbound' of tenant 'beta' cannot send: phone_number_id: missing; "
        "replies cannot be sent without the number's Cloud API id; secrets.access_token: "
        "missing; replies cannot be sent without a Cloud API access token ({env: NAME})"
    )
    assert isinstance(failure.value, ConfigurationError)
    tenant = config.tenants[0]
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ChannelCannotSend, match="'sms-half' of tenant 'beta' cannot send: s"):
            build_sender(tenant, tenant.channels[5], session=session, redis=redis, keys=keys)


async def test_a_given_session_stays_open_and_an_owned_one_closes_on_exit(
    config: ChannelsConfig, redis: aioredis.Redis, keys: KeySpace
) -> None:
    async with aiohttp.ClientSession() as session:
        async with OutboundSenders(config, redis=redis, keys=keys, session=session) as senders:
            senders.get("acme", "app")
        assert not session.closed
        with pytest.raises(RuntimeError, match="not started"):
            senders.get("acme", "app")
    async with OutboundSenders(config, redis=redis, keys=keys) as owning:
        kept = owning.get("acme", "app")
    with pytest.raises(RuntimeError, match="Session is closed"):
        await kept.send("contact-9", HI, reply_id="reply-9")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("HX0123456789abcdef0123456789abcdef", "HX-not-a-sid"),
            "tenants[0].channels[2].twilio.content_sids.appointment_reminder: String should "
            "match pattern",
        ),
        (
            ("backoff_max_s: 0.02", "backoff_max_s: 0.001"),
            "tenants[0].channels[3].telegram.sending: backoff_max_s (0.001) must be >= "
            "backoff_initial_s (0.01)",
        ),
        (
            ("list_button_label: Choose", "list_button_label: A label far too long to show"),
            "tenants[0].channels[1].whatsapp.list_button_label: String should have at most 20",
        ),
        (
            ("max_attempts: 3", "max_attempts: 0"),
            "tenants[0].channels[3].telegram.sending.max_attempts: Input should be greater",
        ),
    ],
)
def test_bad_sending_fields_fail_the_load_naming_the_field(
    tmp_path: Path, providers: Providers, edit: tuple[str, str], message: str
) -> None:
    text = (FIXTURES / "sending.yaml").read_text().replace(*edit)
    path = tmp_path / "atende.yaml"
    path.write_text(Template(text).substitute(providers.urls()))
    with pytest.raises(ConfigurationError) as failure:
        load_yaml_model(path, ChannelsConfig, ENV)
    assert message in str(failure.value)
