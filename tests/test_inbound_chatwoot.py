"""Chatwoot inbound: signed, timestamped webhooks and normalization of a contact's messages.

Fixtures under ``tests/fixtures/chatwoot`` follow the webhook payloads Chatwoot documents;
every signature here is computed in the test with ``hmac`` directly, never by the adapter.
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

from channels.chatwoot.inbound import ChatwootInbound
from channels.inbound import (
    Inbound,
    InboundAdapter,
    InboundMessage,
    InboundRelease,
    PayloadInvalid,
    SignatureInvalid,
    WebhookRequest,
)
from events.types import (
    InboundLocation,
    InboundMedia,
    InboundText,
    InboundUnsupported,
    InboxMessageReceived,
)
from ingress.webhooks import inbox_payload
from tests.inbound_support import mutated, parse_or_refusal

FIXTURES = Path(__file__).parent / "fixtures" / "chatwoot"
SECRET = "cw-4f0e9b2d71c84a6e"
NOW = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)
SIGNATURE = "X-Chatwoot-Signature"
TIMESTAMP = "X-Chatwoot-Timestamp"
DELIVERY = "X-Chatwoot-Delivery"
ADAPTER = ChatwootInbound(SECRET, now=lambda: NOW)


def signed_headers(
    body: bytes, *, at: datetime = NOW, secret: str = SECRET, delivery: str | None = None
) -> dict[str, str]:
    timestamp = str(int(at.timestamp()))
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    headers = {SIGNATURE: f"sha256={digest.hexdigest()}", TIMESTAMP: timestamp}
    if delivery is not None:
        headers[DELIVERY] = delivery
    return headers


def webhook(body: bytes, headers: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url="https://atende.example.com/webhooks/chatwoot/cw-main",
        headers=CIMultiDict(headers if headers is not None else signed_headers(body)),
        body=body,
        content_type="application/json",
        received_at=NOW,
    )


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(name: str, delivery: str | None = None) -> list[InboundMessage]:
    body = fixture(name)
    request = webhook(body, signed_headers(body, delivery=delivery))
    ADAPTER.verify(request)
    items = ADAPTER.parse(request)
    assert all(isinstance(item, InboundMessage) for item in items)
    messages = [item for item in items if isinstance(item, InboundMessage)]
    for item in messages:
        as_event(item)
    return messages


def as_event(item: InboundMessage) -> InboxMessageReceived:
    """The event the ingress would append from the item: proves it fits the contract."""
    return inbox_payload(item, channel_id="cw-main", provider="chatwoot", received_at=NOW)


def body_of(document: object) -> bytes:
    return json.dumps(document).encode()


# --- verification -------------------------------------------------------------------------


def test_the_adapter_meets_the_inbound_contract() -> None:
    adapter: InboundAdapter = ADAPTER
    assert adapter.provider == "chatwoot"


@pytest.mark.parametrize("name", sorted(path.name for path in FIXTURES.glob("*.json")))
def test_every_fixture_verifies_with_the_secret(name: str) -> None:
    ADAPTER.verify(webhook(fixture(name)))


def test_header_names_are_case_insensitive() -> None:
    body = fixture("message_created_text.json")
    headers = {name.lower(): value for name, value in signed_headers(body).items()}
    ADAPTER.verify(webhook(body, headers))


@pytest.mark.parametrize("missing", [SIGNATURE, TIMESTAMP])
def test_a_missing_header_is_refused_naming_it(missing: str) -> None:
    body = fixture("message_created_text.json")
    headers = signed_headers(body)
    del headers[missing]
    with pytest.raises(SignatureInvalid) as refused:
        ADAPTER.verify(webhook(body, headers))
    assert refused.value.check == missing
    assert "missing" in str(refused.value)


def test_a_signature_with_another_secret_is_refused() -> None:
    body = fixture("message_created_text.json")
    with pytest.raises(SignatureInvalid) as refused:
        ADAPTER.verify(webhook(body, signed_headers(body, secret="someone-else")))
    assert refused.value.check == SIGNATURE
    assert "does not match" in str(refused.value)


def test_a_changed_body_is_refused() -> None:
    body = fixture("message_created_text.json")
    headers = signed_headers(body)
    with pytest.raises(SignatureInvalid) as refused:
        ADAPTER.verify(webhook(body.replace(b"4021", b"4029"), headers))
    assert refused.value.check == SIGNATURE


def test_a_signature_for_another_timestamp_is_refused() -> None:
    body = fixture("message_created_text.json")
    headers = signed_headers(body)
    headers[TIMESTAMP] = str(int(headers[TIMESTAMP]) + 1)
    with pytest.raises(SignatureInvalid) as refused:
        ADAPTER.verify(webhook(body, headers))
    assert refused.value.check == SIGNATURE


@pytest.mark.parametrize(
    "signature", ["", "deadbeef", "sha1=" + "0" * 40, "sha256=", "sha256=ç" + "0" * 63]
)
def test_a_malformed_signature_is_refused(signature: str) -> None:
    body = fixture("message_created_text.json")
    headers = signed_headers(body)
    headers[SIGNATURE] = signature
    with pytest.raises(SignatureInvalid) as refused:
        ADAPTER.verify(webhook(body, headers))
    assert refused.value.check == SIGNATURE


@pytest.mark.parametrize("timestamp", ["soon", "-5", "1.5", "9" * 13, "١٢٣"])
def test_a_timestamp_that_is_not_unix_seconds_is_refused(timestamp: str) -> None:
    body = fixture("message_created_text.json")
    headers = signed_headers(body)
    headers[TIMESTAMP] = timestamp
    with pytest.raises(SignatureInvalid) as refused:
        ADAPTER.verify(webhook(body, headers))
    assert refused.value.check == TIMESTAMP


def test_an_old_timestamp_is_refused_saying_how_old() -> None:
    body = fixture("message_created_text.json")
    headers = signed_headers(body, at=NOW - timedelta(seconds=412))
    with pytest.raises(SignatureInvalid) as refused:
        ADAPTER.verify(webhook(body, headers))
    assert refused.value.check == TIMESTAMP
    assert str(refused.value) == "X-Chatwoot-Timestamp is 412 s old; at most 300 s are accepted"


def test_a_future_timestamp_is_refused_saying_how_far() -> None:
    body = fixture("message_created_text.json")
    headers = signed_headers(body, at=NOW + timedelta(seconds=301))
    with pytest.raises(SignatureInvalid) as refused:
        ADAPTER.verify(webhook(body, headers))
    assert refused.value.check == TIMESTAMP
    assert "301 s in the future" in str(refused.value)


@pytest.mark.parametrize("offset_s", [-300, 0, 300])
def test_timestamps_within_five_minutes_are_accepted(offset_s: int) -> None:
    body = fixture("message_created_text.json")
    ADAPTER.verify(webhook(body, signed_headers(body, at=NOW + timedelta(seconds=offset_s))))


def test_an_empty_secret_is_refused_when_the_adapter_is_built() -> None:
    with pytest.raises(ValueError, match="secret"):
        ChatwootInbound("")


# --- messages -----------------------------------------------------------------------------


def test_incoming_text_keys_contact_and_time() -> None:
    (item,) = parse("message_created_text.json")
    assert item.message == InboundText(text="Boa tarde, meu pedido ainda não chegou")
    assert item.conversation_key == "58"
    assert item.dedup_key == "message_created:4021"
    assert item.provider_message_id == "4021"
    assert item.contact.provider_user_id == "311"
    assert item.contact.display_name == "Ana Souza"
    assert item.contact.phone == "+5511912345678"
    assert item.provider_timestamp == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert item.reply_to is None


def test_the_dedup_key_comes_from_the_signed_body_never_the_delivery_header() -> None:
    # The delivery header is not signed: a captured webhook replayed with fresh delivery ids
    # must still be one message.
    keys = {
        item.dedup_key
        for delivery in (None, "9b7c1d0e-delivery", "another-delivery", "d" * 300)
        for item in parse("message_created_text.json", delivery=delivery)
    }
    assert keys == {"message_created:4021"}


def test_attachments_become_media_with_the_text_as_first_caption() -> None:
    image, document = parse("message_created_image.json", delivery="d-1")
    assert isinstance(image.message, InboundMedia)
    assert image.message.media_kind == "image"
    assert image.message.caption == "Chegou assim"
    assert image.message.url is not None
    assert image.message.url.endswith("/caixa.jpg")
    assert image.message.size_bytes == 184220
    assert isinstance(document.message, InboundMedia)
    assert document.message.media_kind == "document"
    assert document.message.filename == "nota fiscal.pdf"
    assert document.message.caption is None
    assert [image.dedup_key, document.dedup_key] == [
        "message_created:4022:0",
        "message_created:4022:1",
    ]
    assert [image.provider_message_id, document.provider_message_id] == ["4022:0", "4022:1"]
    assert image.reply_to == document.reply_to == "4019"


def test_text_too_long_for_a_caption_comes_first_on_its_own() -> None:
    document = json.loads(fixture("message_created_image.json"))
    document["content"] = "x" * 5_000
    document["attachments"] = document["attachments"][:1]
    body = body_of(document)
    text, image = ADAPTER.parse(webhook(body))
    assert isinstance(text, InboundMessage)
    assert isinstance(image, InboundMessage)
    assert isinstance(text.message, InboundText)
    assert isinstance(image.message, InboundMedia)
    assert image.message.caption is None


def test_location_attachment_is_a_place() -> None:
    (item,) = parse("message_created_location.json")
    assert item.message == InboundLocation(
        latitude=-23.561414, longitude=-46.655881, name="Av. Paulista, 1578"
    )


def test_an_unknown_attachment_type_is_kept_unsupported() -> None:
    document = json.loads(fixture("message_created_location.json"))
    document["attachments"][0]["file_type"] = "story_mention"
    (item,) = ADAPTER.parse(webhook(body_of(document)))
    assert isinstance(item, InboundMessage)
    assert isinstance(item.message, InboundUnsupported)
    assert item.message.provider_type == "story_mention"
    assert item.message.raw["id"] == 903


def test_an_incoming_message_with_nothing_in_it_is_kept_unsupported() -> None:
    document = json.loads(fixture("message_created_text.json"))
    document["content"] = None
    document["content_type"] = "input_csat"
    (item,) = ADAPTER.parse(webhook(body_of(document)))
    assert isinstance(item, InboundMessage)
    assert isinstance(item.message, InboundUnsupported)
    assert item.message.provider_type == "input_csat"


def test_older_payload_shapes_are_read_too() -> None:
    document = json.loads(fixture("message_created_text.json"))
    document["message_type"] = 0
    document["created_at"] = 1714564800
    document["conversation"]["display_id"] = 12
    (item,) = ADAPTER.parse(webhook(body_of(document)))
    assert isinstance(item, InboundMessage)
    assert item.conversation_key == "12"
    assert item.provider_timestamp == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_a_phone_not_in_e164_is_left_out_rather_than_refused() -> None:
    document = json.loads(fixture("message_created_text.json"))
    document["sender"]["phone_number"] = "(11) 91234-5678"
    (item,) = ADAPTER.parse(webhook(body_of(document)))
    assert isinstance(item, InboundMessage)
    assert item.contact.phone is None


@pytest.mark.parametrize(
    "name",
    [
        "message_created_outgoing.json",
        "message_created_private_note.json",
        "message_updated.json",
    ],
)
def test_events_that_are_not_a_contact_writing_yield_nothing(name: str) -> None:
    assert parse(name) == []


# --- a conversation an agent resolved -----------------------------------------------------


def parse_status(document: object) -> list[Inbound]:
    body = body_of(document)
    request = webhook(body)
    ADAPTER.verify(request)
    return ADAPTER.parse(request)


def test_a_resolved_conversation_goes_back_to_the_ai_keyed_by_signed_content() -> None:
    document = json.loads(fixture("conversation_status_changed.json"))

    (item,) = parse_status(document)

    assert isinstance(item, InboundRelease)
    assert item.conversation_key == "58"
    assert item.status == "resolved"
    assert item.dedup_key == "resolved:58:1714565100.482913"
    assert item.provider_timestamp == datetime(2024, 5, 1, 12, 5, 0, 482913, tzinfo=UTC)


def test_the_agent_bots_conversation_resolved_is_the_same_release() -> None:
    document = json.loads(fixture("conversation_status_changed.json"))
    document["event"] = "conversation_resolved"
    del document["changed_attributes"]
    account_webhook = parse_status(json.loads(fixture("conversation_status_changed.json")))

    assert parse_status(document) == account_webhook, "one change, one dedup key"


@pytest.mark.parametrize("status", ["open", "pending", "snoozed"])
def test_other_statuses_leave_the_conversation_to_the_agents(status: str) -> None:
    document = json.loads(fixture("conversation_status_changed.json"))
    document["status"] = status
    assert parse_status(document) == []


def test_a_resolve_without_a_change_time_is_refused_naming_it() -> None:
    document = json.loads(fixture("conversation_status_changed.json"))
    del document["updated_at"]
    del document["timestamp"]

    refused = parse_or_refusal(ADAPTER, webhook(body_of(document)))

    assert isinstance(refused, PayloadInvalid)
    assert refused.field == "updated_at"
    assert "updated_at" in str(refused)


# --- malformed bodies ---------------------------------------------------------------------


def _changed(name: str, value: object, *path: str | int) -> bytes:
    document = json.loads(fixture(name))
    node = document
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return body_of(document)


_DELETE = object()
_TEXT = "message_created_text.json"
_IMAGE = "message_created_image.json"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", "body"),
        (b'"message_created"', "body"),
        (b'{"event": Infinity}', "body"),
        (_changed(_TEXT, _DELETE, "event"), "event"),
        (_changed(_TEXT, 7, "event"), "event"),
        (_changed(_TEXT, _DELETE, "id"), "id"),
        (_changed(_TEXT, _DELETE, "conversation"), "conversation"),
        (_changed(_TEXT, _DELETE, "conversation", "id"), "conversation.id"),
        (_changed(_TEXT, _DELETE, "sender"), "sender"),
        (_changed(_TEXT, [], "sender", "id"), "sender.id"),
        (_changed(_TEXT, "yesterday", "created_at"), "created_at"),
        (_changed(_TEXT, "0001-01-01T00:00:00+01:00", "created_at"), "created_at"),
        (_changed(_TEXT, "x" * 70_000, "content"), "content"),
        (_changed(_TEXT, "yes", "private"), "private"),
        (_changed(_TEXT, [1], "content_attributes"), "content_attributes"),
        (_changed(_IMAGE, {}, "attachments"), "attachments"),
        (_changed(_IMAGE, "x", "attachments", 1), "attachments[1]"),
        (_changed(_IMAGE, _DELETE, "attachments", 0, "data_url"), "attachments[0].data_url"),
        (_changed(_IMAGE, "ftp://x/y", "attachments", 0, "data_url"), "attachments[0]"),
        (_changed("message_created_location.json", "n", "attachments", 0, "coordinates_lat"),
         "attachments[0].coordinates_lat"),
    ],
)  # fmt: skip
def test_malformed_message_names_the_field(body: bytes, field: str) -> None:
    with pytest.raises(PayloadInvalid) as refused:
        ADAPTER.parse(webhook(body))
    assert refused.value.field == field
    assert field in str(refused.value)


# --- fuzz ---------------------------------------------------------------------------------

_ODD_VALUES: list[Any] = [
    None, False, 0, -7, 2**64, -(10**300), 0.25, 1e308, "", "incoming", "message_created",
    "ç" * 300, [], [{}], {}, {"id": "x"}, {"file_type": "image"}, {"file_type": "location"},
]  # fmt: skip


def _mutated(document: Any, rng: random.Random) -> Any:
    return mutated(document, rng, _ODD_VALUES, most_changes=3, replace_share=0.55)


def _attempt(body: bytes) -> list[Inbound] | PayloadInvalid:
    """Parse, returning the refusal instead of raising it; anything else propagates."""
    return parse_or_refusal(ADAPTER, webhook(body))


def test_mutated_webhooks_only_ever_raise_payload_invalid() -> None:
    rng = random.Random(8080)
    incoming = ["message_created_text.json", _IMAGE, "message_created_location.json"]
    documents = [json.loads(fixture(name)) for name in incoming]
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
            assert isinstance(item, InboundMessage)
            as_event(item)
            assert 0 < len(item.dedup_key) <= 256
            assert 0 < len(item.conversation_key) <= 256
    assert parsed > 200
    assert refused > 200


def test_corrupted_bytes_only_ever_raise_payload_invalid() -> None:
    rng = random.Random(443)
    seeds = [path.read_bytes() for path in sorted(FIXTURES.glob("*.json"))]
    for _ in range(500):
        body = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        with contextlib.suppress(PayloadInvalid):
            ADAPTER.parse(webhook(bytes(body)))
