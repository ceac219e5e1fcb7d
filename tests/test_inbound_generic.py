"""Generic JSON channel inbound: signature, replay window and the strict body format.

Fixtures under ``tests/fixtures/generic`` are written from the format documented in
``channels.generic.inbound``; every signature here is computed in the test with
``hmac`` directly, never by the adapter.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict

from channels.generic.inbound import GenericInbound
from channels.inbound import (
    Inbound,
    InboundAdapter,
    InboundMessage,
    InboundStatus,
    PayloadInvalid,
    SignatureInvalid,
    WebhookRequest,
)
from events.types import (
    DeliveryError,
    DeliveryStatusUpdated,
    InboundContacts,
    InboundEdit,
    InboundInteractive,
    InboundLocation,
    InboundMedia,
    InboundReaction,
    InboundText,
    InboxMessageReceived,
)
from ingress.webhooks import inbox_payload
from tests.inbound_support import mutated, parse_or_refusal

FIXTURES = Path(__file__).parent / "fixtures" / "generic"
SECRET = "gen-2c9d7e41b0a3"
NOW = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)
SIGNATURE = "X-Atende-Signature"
TIMESTAMP = "X-Atende-Timestamp"
ADAPTER = GenericInbound(SECRET, now=lambda: NOW)


def signed_headers(body: bytes, *, at: datetime = NOW, secret: str = SECRET) -> dict[str, str]:
    timestamp = str(int(at.timestamp()))
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return {SIGNATURE: "sha256=" + mac.hexdigest(), TIMESTAMP: timestamp}


def webhook(body: bytes, headers: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url="https://atende.example.com/webhooks/generic/app-main",
        headers=CIMultiDict(headers if headers is not None else signed_headers(body)),
        body=body,
        content_type="application/json",
        received_at=NOW,
    )


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def body_of(document: object) -> bytes:
    return json.dumps(document).encode()


def messages() -> list[InboundMessage]:
    request = webhook(fixture("messages.json"))
    ADAPTER.verify(request)
    items = ADAPTER.parse(request)
    assert all(isinstance(item, InboundMessage) for item in items)
    found = [item for item in items if isinstance(item, InboundMessage)]
    for item in found:
        as_event(item)
    return found


def as_event(item: InboundMessage) -> InboxMessageReceived:
    """The event the ingress would append from the item: proves it fits the contract."""
    return inbox_payload(item, channel_id="app-main", provider="generic", received_at=NOW)


def single(message: dict[str, Any]) -> bytes:
    """A body holding one message, starting from the first of the fixture."""
    base = json.loads(fixture("messages.json"))["messages"][0]
    base.pop("text")
    base.update(message)
    return body_of({"messages": [base]})


# --- verification -------------------------------------------------------------------------


def test_the_adapter_meets_the_inbound_contract() -> None:
    adapter: InboundAdapter = ADAPTER
    assert adapter.provider == "generic"


@pytest.mark.parametrize("name", sorted(path.name for path in FIXTURES.glob("*.json")))
def test_every_fixture_verifies_with_the_secret(name: str) -> None:
    ADAPTER.verify(webhook(fixture(name)))


@pytest.mark.parametrize("missing", [SIGNATURE, TIMESTAMP])
def test_a_missing_header_is_refused_naming_it(missing: str) -> None:
    body = fixture("messages.json")
    headers = signed_headers(body)
    del headers[missing]
    with pytest.raises(SignatureInvalid) as refused:
        ADAPTER.verify(webhook(body, headers))
    assert refused.value.check == missing


def test_a_wrong_secret_is_refused() -> None:
    body = fixture("messages.json")
    with pytest.raises(SignatureInvalid) as refused:
        ADAPTER.verify(webhook(body, signed_headers(body, secret=SECRET + "!")))
    assert refused.value.check == SIGNATURE
    assert str(refused.value) == "X-Atende-Signature does not match the channel's secret"


def test_a_signature_without_its_scheme_is_refused() -> None:
    body = fixture("messages.json")
    headers = signed_headers(body)
    headers[SIGNATURE] = headers[SIGNATURE].removeprefix("sha256=")
    with pytest.raises(SignatureInvalid) as refused:
        ADAPTER.verify(webhook(body, headers))
    assert refused.value.check == SIGNATURE
    assert "sha256=" in str(refused.value)


def test_uppercase_hex_is_accepted() -> None:
    body = fixture("messages.json")
    headers = signed_headers(body)
    headers[SIGNATURE] = "sha256=" + headers[SIGNATURE].removeprefix("sha256=").upper()
    ADAPTER.verify(webhook(body, headers))


@pytest.mark.parametrize(
    ("offset_s", "words"),
    [(-301, "301 s old"), (-86_400, "86400 s old"), (301, "301 s in the future")],
)
def test_a_timestamp_beyond_five_minutes_is_refused_saying_by_how_much(
    offset_s: int, words: str
) -> None:
    body = fixture("messages.json")
    headers = signed_headers(body, at=NOW + timedelta(seconds=offset_s))
    with pytest.raises(SignatureInvalid) as refused:
        ADAPTER.verify(webhook(body, headers))
    assert refused.value.check == TIMESTAMP
    assert words in str(refused.value)


# --- messages and statuses ----------------------------------------------------------------


def test_every_content_kind_maps_to_its_contract_type() -> None:
    text, media, location, contacts, interactive, reaction, edit = messages()
    assert text.message == InboundText(text="Oi! Quero remarcar minha consulta.")
    assert media.message == InboundMedia(
        media_kind="image",
        url="https://files.example.com/u-7/receita.jpg",
        mime_type="image/jpeg",
        caption="A receita",
        size_bytes=201334,
    )
    assert location.message == InboundLocation(
        latitude=-22.9068, longitude=-43.1729, name="Clínica Centro"
    )
    assert isinstance(contacts.message, InboundContacts)
    card = contacts.message.contacts[0]
    assert (card.name, card.phones[0].number, card.emails) == (
        "Dr. Paulo Lima",
        "+55 21 3333-4444",
        ("paulo@example.com",),
    )
    assert interactive.message == InboundInteractive(
        interaction="button_reply", reply_id="slot-2024-05-03T10:00", title="Sexta 10h"
    )
    assert reaction.message == InboundReaction(target_message_id="r-9", emoji="👍")
    assert edit.message == InboundEdit(
        target_message_id="m-1001", text="Oi! Quero cancelar minha consulta."
    )


def test_keys_contact_reply_and_time() -> None:
    text, media, *_ = messages()
    assert (text.conversation_key, text.dedup_key, text.provider_message_id) == (
        "c-42",
        "m-1001",
        "m-1001",
    )
    assert text.contact.provider_user_id == "u-7"
    assert text.contact.display_name == "Ana"
    assert text.contact.phone == "+5511999990000"
    assert text.contact.username == "ana"
    assert text.provider_timestamp == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert text.provider_timestamp.tzinfo is UTC
    assert media.reply_to == "m-1001"
    assert media.provider_timestamp is None


def test_a_reaction_without_emoji_takes_it_back() -> None:
    (item,) = ADAPTER.parse(webhook(single({"reaction": {"message_id": "r-9"}})))
    assert isinstance(item, InboundMessage)
    assert item.message == InboundReaction(target_message_id="r-9", removed=True)


def test_statuses_become_delivery_statuses() -> None:
    delivered, read, failed = ADAPTER.parse(webhook(fixture("statuses.json")))
    assert isinstance(delivered, InboundStatus)
    assert isinstance(read, InboundStatus)
    assert isinstance(failed, InboundStatus)
    assert (delivered.provider_message_id, delivered.status) == ("r-9", "delivered")
    assert delivered.conversation_key == "c-42"
    assert delivered.provider_timestamp == datetime(2024, 5, 1, 12, 0, 2, tzinfo=UTC)
    assert delivered.dedup_key != read.dedup_key
    assert failed.error == DeliveryError(code="blocked", title="User blocked the app")
    for status in (delivered, read, failed):
        DeliveryStatusUpdated(
            channel_id="app-main",
            provider_message_id=status.provider_message_id,
            status=status.status,
            error=status.error,
            provider_timestamp=status.provider_timestamp,
        )


def test_an_empty_batch_yields_nothing() -> None:
    assert ADAPTER.parse(webhook(b"{}")) == []


def test_a_full_batch_is_accepted() -> None:
    document = json.loads(fixture("messages.json"))
    template = document["messages"][0]
    document["messages"] = [dict(template, id=f"m-{n}") for n in range(100)]
    assert len(ADAPTER.parse(webhook(body_of(document)))) == 100


# --- malformed bodies ---------------------------------------------------------------------


def _batch_over_the_bound() -> bytes:
    document = json.loads(fixture("messages.json"))
    statuses = json.loads(fixture("statuses.json"))["statuses"]
    document["messages"] = [dict(document["messages"][0], id=f"m-{n}") for n in range(60)]
    document["statuses"] = [dict(statuses[0], message_id=f"r-{n}") for n in range(41)]
    return body_of(document)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (b"{", "body", "not valid JSON"),
        (b"[]", "body", "invalid"),
        (b'{"messages": [], "extra": 1}', "extra", "not a field"),
        (single({}), "messages[0]", "exactly one of text"),
        (single({"text": "a", "edit": {"message_id": "m", "text": "b"}}), "messages[0]",
         "found text, edit"),
        (single({"txt": "a"}), "messages[0].txt", "not a field"),
        (single({"text": ""}), "messages[0].text", "at least 1 character"),
        (single({"text": "a", "sender": {}}), "messages[0].sender.id", "is missing"),
        (single({"text": "a", "sender": {"id": 7}}), "messages[0].sender.id", "valid string"),
        (single({"text": "a", "sender": {"id": "u", "phone": "11 9999"}}),
         "messages[0].sender.phone", "pattern"),
        (single({"text": "a", "timestamp": "2024-05-01T12:00:00"}), "messages[0].timestamp",
         "timezone"),
        (single({"text": "a", "timestamp": 1714564800}), "messages[0].timestamp", "datetime"),
        (single({"text": "a", "timestamp": "0001-01-01T00:00:00+01:00"}),
         "messages[0].timestamp", "out of range"),
        (single({"media": {"kind": "gif", "url": "https://x.example/a.gif"}}),
         "messages[0].media.kind", "invalid"),
        (single({"media": {"kind": "image", "url": "file:///etc/passwd"}}),
         "messages[0].media.url", "pattern"),
        (b'{"messages": [{"id": "m", "conversation_id": "c", "sender": {"id": "u"}, '
         b'"location": {"latitude": NaN, "longitude": 0}}]}', "messages[0].location.latitude",
         "finite number"),
        (single({"location": {"latitude": 91, "longitude": 0}}),
         "messages[0].location.latitude", "less than or equal"),
        (single({"contacts": []}), "messages[0].contacts", "at least 1"),
        (single({"contacts": [{"name": "A", "emails": ["nope"]}]}),
         "messages[0].contacts[0].emails[0]", "pattern"),
        (single({"interactive": {"type": "callback_query", "id": "x"}}),
         "messages[0].interactive.type", "invalid"),
        (b'{"statuses": [{"message_id": "r", "status": "seen"}]}', "statuses[0].status",
         "invalid"),
        (b'{"statuses": [{"message_id": "r", "status": "read", "error": {"code": "1"}}]}',
         "statuses[0]", "only allowed with status failed"),
        (_batch_over_the_bound(), "body", "at most 100 items"),
    ],
)  # fmt: skip
def test_malformed_body_names_the_field(body: bytes, field: str, words: str) -> None:
    with pytest.raises(PayloadInvalid) as refused:
        ADAPTER.parse(webhook(body))
    assert refused.value.field == field
    assert words in str(refused.value)


def test_more_than_a_hundred_messages_are_refused() -> None:
    document = json.loads(fixture("messages.json"))
    document["messages"] = [dict(document["messages"][0], id=f"m-{n}") for n in range(101)]
    with pytest.raises(PayloadInvalid) as refused:
        ADAPTER.parse(webhook(body_of(document)))
    assert refused.value.field == "messages"


# --- fuzz ---------------------------------------------------------------------------------

_ODD_VALUES: list[Any] = [
    None, True, 0, -1, 10**40, 0.5, "", "x", "read", "image", "+5511999990000",
    "2024-05-01T12:00:00Z", [], [{}], {}, {"id": "u"}, {"message_id": "m"},
]  # fmt: skip


def _mutated(document: Any, rng: random.Random) -> Any:
    return mutated(document, rng, _ODD_VALUES, most_changes=2, replace_share=0.5)


def _attempt(body: bytes) -> list[Inbound] | PayloadInvalid:
    """Parse, returning the refusal instead of raising it; anything else propagates."""
    return parse_or_refusal(ADAPTER, webhook(body))


def test_mutated_bodies_only_ever_raise_payload_invalid() -> None:
    rng = random.Random(1971)
    documents = [json.loads(path.read_bytes()) for path in sorted(FIXTURES.glob("*.json"))]
    parsed = refused = 0
    for _ in range(2_000):
        outcome = _attempt(body_of(_mutated(rng.choice(documents), rng)))
        if isinstance(outcome, PayloadInvalid):
            assert outcome.field
            refused += 1
            continue
        parsed += 1
        items = outcome
        for item in items:
            if isinstance(item, InboundMessage):
                as_event(item)
    assert parsed > 100
    assert refused > 200


def test_corrupted_bytes_only_ever_raise_payload_invalid() -> None:
    rng = random.Random(99)
    seeds = [path.read_bytes() for path in sorted(FIXTURES.glob("*.json"))]
    for _ in range(500):
        body = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        with contextlib.suppress(PayloadInvalid):
            ADAPTER.parse(webhook(bytes(body)))
