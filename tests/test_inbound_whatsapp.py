"""WhatsApp Cloud API inbound: signature, handshake and normalization of documented payloads.

Fixtures under ``tests/fixtures/whatsapp`` follow the webhook shapes Meta documents; every
signature here is computed in the test with ``hmac`` directly, never by the adapter.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import io
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict

from channels.inbound import (
    Inbound,
    InboundMessage,
    InboundStatus,
    PayloadInvalid,
    SignatureInvalid,
    WebhookRequest,
)
from channels.whatsapp.inbound import WhatsAppInbound, verify_subscription
from events.types import (
    InboundContacts,
    InboundEdit,
    InboundInteractive,
    InboundLocation,
    InboundMedia,
    InboundReaction,
    InboundText,
    InboundUnsupported,
    InboxMessageReceived,
)
from ingress.webhooks import inbox_payload
from tests.inbound_support import parse_or_refusal

FIXTURES = Path(__file__).parent / "fixtures" / "whatsapp"
APP_SECRET = "9f2c4e1ab7d35e8c0a6b1f4d2e7c9a30"
HEADER = "X-Hub-Signature-256"
ANA = "5511987654321"
ADAPTER = WhatsAppInbound(APP_SECRET)


def signature(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook(body: bytes, headers: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url="https://atende.example.com/webhooks/whatsapp/wa-main",
        headers=CIMultiDict(headers if headers is not None else {HEADER: signature(body)}),
        body=body,
        content_type="application/json",
        received_at=datetime.now(UTC),
    )


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(name: str) -> list[Inbound]:
    request = webhook(fixture(name))
    ADAPTER.verify(request)
    return ADAPTER.parse(request)


def messages(name: str) -> list[InboundMessage]:
    items = parse(name)
    assert all(isinstance(item, InboundMessage) for item in items)
    return [item for item in items if isinstance(item, InboundMessage)]


def parse_json(document: Any) -> list[Inbound]:
    return ADAPTER.parse(webhook(json.dumps(document).encode()))


def as_event(item: InboundMessage) -> InboxMessageReceived:
    """The event the ingress would append from the item: proves it fits the contract."""
    return inbox_payload(
        item, channel_id="wa-main", provider="whatsapp", received_at=datetime.now(UTC)
    )


# --- verification -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(path.name for path in FIXTURES.glob("*.json")))
def test_every_fixture_verifies_with_the_app_secret(name: str) -> None:
    ADAPTER.verify(webhook(fixture(name)))


def test_header_name_is_case_insensitive_and_hex_case_is_ignored() -> None:
    body = fixture("text.json")
    ADAPTER.verify(webhook(body, {HEADER.lower(): signature(body).upper().replace("SHA", "sha")}))


def test_missing_header_is_refused() -> None:
    with pytest.raises(SignatureInvalid, match="X-Hub-Signature-256 is missing") as caught:
        ADAPTER.verify(webhook(fixture("text.json"), {}))
    assert caught.value.check == HEADER


@pytest.mark.parametrize(
    "header", ["", "sha1=" + "0" * 40, "sha256=" + "z" * 64, "sha256=abc", "sha256=" + "é" * 64]
)
def test_malformed_header_is_refused(header: str) -> None:
    with pytest.raises(SignatureInvalid, match="is malformed") as caught:
        ADAPTER.verify(webhook(fixture("text.json"), {HEADER: header}))
    assert caught.value.check == HEADER


def test_wrong_secret_is_refused() -> None:
    body = fixture("text.json")
    with pytest.raises(SignatureInvalid, match="does not match the app secret") as caught:
        ADAPTER.verify(webhook(body, {HEADER: signature(body, "another-secret")}))
    assert caught.value.check == HEADER


def test_tampered_body_is_refused() -> None:
    body = fixture("text.json")
    tampered = body.replace("sábado".encode(), b"domingo")
    assert tampered != body
    with pytest.raises(SignatureInvalid, match="does not match the app secret"):
        ADAPTER.verify(webhook(tampered, {HEADER: signature(body)}))


def test_an_empty_app_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="app secret is empty"):
        WhatsAppInbound("")


# --- Meta's subscription handshake -----------------------------------------------------------

HANDSHAKE = {
    "hub.mode": "subscribe",
    "hub.verify_token": "s3cret-token",
    "hub.challenge": "1158201444",
}


def test_handshake_returns_the_challenge() -> None:
    assert verify_subscription(HANDSHAKE, "s3cret-token") == "1158201444"


def test_handshake_with_the_wrong_token_is_refused() -> None:
    with pytest.raises(SignatureInvalid, match="does not match") as caught:
        verify_subscription(HANDSHAKE, "other-token")
    assert caught.value.check == "hub.verify_token"


@pytest.mark.parametrize("missing", sorted(HANDSHAKE))
def test_handshake_without_a_parameter_names_it(missing: str) -> None:
    query = {name: value for name, value in HANDSHAKE.items() if name != missing}
    with pytest.raises(PayloadInvalid, match="is missing") as caught:
        verify_subscription(query, "s3cret-token")
    assert caught.value.field == missing


def test_handshake_with_another_mode_is_invalid() -> None:
    with pytest.raises(PayloadInvalid) as caught:
        verify_subscription({**HANDSHAKE, "hub.mode": "unsubscribe"}, "s3cret-token")
    assert caught.value.field == "hub.mode"


# --- normalization ------------------------------------------------------------------------


def test_text_message() -> None:
    [item] = messages("text.json")
    assert item.message == InboundText(text="Oi, vocês abrem no sábado?")
    assert item.conversation_key == ANA
    assert item.dedup_key == item.provider_message_id
    assert item.provider_message_id.startswith("wamid.")
    assert item.contact.provider_user_id == ANA
    assert item.contact.phone == "+" + ANA
    assert item.contact.display_name == "Ana Souza"
    assert item.reply_to is None
    assert item.provider_timestamp == datetime(2024, 6, 3, 16, 0, 1, tzinfo=UTC)
    assert item.provider_timestamp.utcoffset() is not None
    as_event(item)


def test_context_id_becomes_reply_to() -> None:
    [item] = messages("reply_text.json")
    assert item.reply_to == "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjQyQjVFMUI0OUQ2QTQyNjMzNQA="


def test_media_messages() -> None:
    items = messages("media.json")
    media = [item.message for item in items]
    assert all(isinstance(part, InboundMedia) for part in media)
    image, voice, audio, video, document, sticker = (
        part for part in media if isinstance(part, InboundMedia)
    )
    assert [part.media_kind for part in (image, voice, audio, video, document, sticker)] == [
        "image",
        "voice",
        "audio",
        "video",
        "document",
        "sticker",
    ]
    assert image.media_id == "1003383421387256"
    assert image.caption == "Foto do produto"
    assert image.mime_type == "image/jpeg"
    # Meta sends the hash base64-encoded; the contract keeps it in hex.
    assert image.sha256 == hashlib.sha256(b"image bytes").hexdigest()
    assert voice.mime_type == "audio/ogg; codecs=opus"
    assert video.caption == "Veja o defeito"
    assert document.filename == "nota-fiscal-1234.pdf"
    assert document.caption == "Nota fiscal"
    assert sticker.caption is None
    assert len({item.dedup_key for item in items}) == 6
    for item in items:
        as_event(item)


def test_location_message() -> None:
    [item] = messages("location.json")
    assert item.message == InboundLocation(
        latitude=-23.5613,
        longitude=-46.6565,
        name="MASP",
        address="Av. Paulista, 1578 - Bela Vista, São Paulo - SP",
    )


def test_shared_contacts() -> None:
    [item] = messages("contacts.json")
    assert isinstance(item.message, InboundContacts)
    [card] = item.message.contacts
    assert card.name == "Bruno Lima"
    assert card.organization == "Lima Reformas"
    assert [(phone.number, phone.label, phone.provider_user_id) for phone in card.phones] == [
        ("+55 11 91234-5678", "CELL", "5511912345678"),
        ("+55 11 3333-4444", "WORK", None),
    ]
    # "not an address" is left off rather than refusing the whole webhook.
    assert card.emails == ("bruno@example.com",)
    as_event(item)


def test_interactive_replies_and_template_buttons() -> None:
    button, row, quick = messages("interactive.json")
    assert button.message == InboundInteractive(
        interaction="button_reply", reply_id="confirm-order-42", title="Confirmar"
    )
    assert button.reply_to == "wamid.OUTBOUND-BUTTONS"
    assert row.message == InboundInteractive(
        interaction="list_reply", reply_id="slot-2024-06-08-10h", title="Sáb 10h"
    )
    assert quick.message == InboundInteractive(
        interaction="button_reply",
        reply_id="HANDOFF",
        title="Falar com atendente",
        payload="HANDOFF",
    )
    assert quick.reply_to == "wamid.OUTBOUND-TEMPLATE"


def test_reactions_and_their_removal() -> None:
    added, removed = messages("reaction.json")
    assert added.message == InboundReaction(target_message_id="wamid.OUTBOUND-REPLY", emoji="👍")
    assert removed.message == InboundReaction(
        target_message_id="wamid.OUTBOUND-REPLY", emoji=None, removed=True
    )
    assert added.dedup_key != removed.dedup_key


def test_edit() -> None:
    [item] = messages("edit.json")
    [original] = messages("text.json")
    assert item.message == InboundEdit(
        target_message_id=original.provider_message_id, text="Oi, vocês abrem no domingo?"
    )
    assert item.dedup_key != original.dedup_key


def test_unknown_types_are_kept_raw() -> None:
    document = json.loads(fixture("unsupported.json"))
    raw_messages = document["entry"][0]["changes"][0]["value"]["messages"]
    items = messages("unsupported.json")
    assert [item.message.kind for item in items] == ["unsupported"] * 3
    kinds = [item.message for item in items if isinstance(item.message, InboundUnsupported)]
    assert [part.provider_type for part in kinds] == [
        "unsupported",
        "order",
        "interactive.nfm_reply",
    ]
    assert [part.raw for part in kinds] == raw_messages
    assert [item.dedup_key for item in items] == [message["id"] for message in raw_messages]
    for item in items:
        as_event(item)


def test_statuses_with_error_codes() -> None:
    items = parse("statuses.json")
    assert all(isinstance(item, InboundStatus) for item in items)
    sent, delivered, read, failed = (item for item in items if isinstance(item, InboundStatus))
    assert [item.status for item in (sent, delivered, read, failed)] == [
        "sent",
        "delivered",
        "read",
        "failed",
    ]
    assert sent.dedup_key == "wamid.OUTBOUND-1:sent"
    assert read.dedup_key == "wamid.OUTBOUND-1:read"
    assert sent.provider_message_id == delivered.provider_message_id == "wamid.OUTBOUND-1"
    assert delivered.conversation_key == ANA
    assert delivered.error is None
    assert delivered.provider_timestamp == datetime.fromtimestamp(1717430501, UTC)
    assert failed.error is not None
    assert failed.error.code == "131047"
    assert failed.error.title is not None
    assert failed.error.title.startswith("Re-engagement message: Message failed to send")


def test_two_entries_with_several_messages_yield_one_item_each() -> None:
    items = parse("multi_entry.json")
    assert [item.dedup_key for item in items] == [
        "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFDNBMEQ4RjdBNjQ2QjQ5RDdB0020AA==",
        "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFDNBMEQ4RjdBNjQ2QjQ5RDdB0021AA==",
        "wamid.OUTBOUND-3:delivered",
        "wamid.BIA-0001",
        "wamid.BIA-0002",
        "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFDNBMEQ4RjdBNjQ2QjQ5RDdB0022AA==",
    ]
    bia = [item for item in items if isinstance(item, InboundMessage)][2:]
    assert {item.conversation_key for item in bia} == {"5521999887766"}
    assert {item.contact.display_name for item in bia} == {"Bia"}
    assert isinstance(bia[2].message, InboundMedia)


MAIN_NUMBER_ID = "106540352242922"
OTHER_NUMBER_ID = "119876543210001"  # another number of the same app, in multi_entry.json


def test_a_channel_takes_only_the_changes_of_its_own_number(log_lines: io.StringIO) -> None:
    body = fixture("multi_entry.json")
    ours = WhatsAppInbound(APP_SECRET, phone_number_id=MAIN_NUMBER_ID).parse(webhook(body))
    theirs = WhatsAppInbound(APP_SECRET, phone_number_id=OTHER_NUMBER_ID).parse(webhook(body))
    assert [item.dedup_key for item in ours] == [
        "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFDNBMEQ4RjdBNjQ2QjQ5RDdB0020AA==",
        "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFDNBMEQ4RjdBNjQ2QjQ5RDdB0021AA==",
        "wamid.OUTBOUND-3:delivered",
    ]
    assert [item.dedup_key for item in theirs] == [
        "wamid.BIA-0001",
        "wamid.BIA-0002",
        "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFDNBMEQ4RjdBNjQ2QjQ5RDdB0022AA==",
    ]
    skipped = [
        json.loads(line)
        for line in log_lines.getvalue().splitlines()
        if json.loads(line)["event"] == "whatsapp change of another number skipped"
    ]
    assert [line["field"] for line in skipped] == [
        "entry[1].changes[0].value.metadata.phone_number_id",
        "entry[0].changes[0].value.metadata.phone_number_id",
        "entry[0].changes[1].value.metadata.phone_number_id",
    ]
    # Log lines mask digit runs that look like phone numbers; the two ids still differ.
    assert skipped[0]["phone_number_id"] != skipped[0]["channel_phone_number_id"]


def test_a_change_without_its_number_is_refused_by_a_channel_that_checks_it() -> None:
    document = json.loads(fixture("text.json"))
    del document["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"]
    checking = WhatsAppInbound(APP_SECRET, phone_number_id=MAIN_NUMBER_ID)
    with pytest.raises(PayloadInvalid) as refused:
        checking.parse(webhook(json.dumps(document).encode()))
    assert refused.value.field == "entry[0].changes[0].value.metadata.phone_number_id"
    assert "is missing" in str(refused.value)


def test_changes_of_other_fields_yield_nothing() -> None:
    assert parse("template_status_update.json") == []


def test_statuses_outside_the_contract_are_skipped() -> None:
    document = json.loads(fixture("statuses.json"))
    document["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] = "deleted"
    first, *_ = parse_json(document)
    assert first.dedup_key == "wamid.OUTBOUND-1:delivered"


# --- malformed bodies -----------------------------------------------------------------------

MESSAGE = "entry[0].changes[0].value.messages[0]"


def text_document() -> Any:
    return json.loads(fixture("text.json"))


def first_message(document: Any) -> Any:
    return document["entry"][0]["changes"][0]["value"]["messages"][0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"\xff\xfe", "body"),
        (b"[1, 2]", "body"),
        (b'{"object": "whatsapp_business_account", "entry": [{"changes": [NaN]}]}', "body"),
        (b"[" * 10_000 + b"]" * 10_000, "body"),
        (b'{"a": ' + b"[" * 40 + b"1" + b"]" * 40 + b"}", "body"),
        (b'{"object": "page", "entry": []}', "object"),
        (b'{"entry": []}', "object"),
        (b'{"object": "whatsapp_business_account"}', "entry"),
        (b'{"object": "whatsapp_business_account", "entry": {}}', "entry"),
        (b'{"object": "whatsapp_business_account", "entry": [{}]}', "entry[0].changes"),
        (b'{"object": "whatsapp_business_account", "entry": [7]}', "entry[0]"),
    ],
)
def test_malformed_bodies_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(PayloadInvalid) as caught:
        ADAPTER.parse(webhook(body))
    assert caught.value.field == field
    assert str(caught.value)


def _drop(key: str) -> Any:
    return lambda message: message.pop(key)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (_drop("id"), f"{MESSAGE}.id"),
        (_drop("from"), f"{MESSAGE}.from"),
        (_drop("type"), f"{MESSAGE}.type"),
        (_drop("text"), f"{MESSAGE}.text"),
        (lambda message: message.update(text={"body": 42}), f"{MESSAGE}.text.body"),
        (lambda message: message.update(timestamp="yesterday"), f"{MESSAGE}.timestamp"),
        (lambda message: message.update(id="w" * 300), f"{MESSAGE}.id"),
        (lambda message: message.update(context={"id": 5}), f"{MESSAGE}.context.id"),
        (lambda message: message.update(type="image", image={"caption": "x"}), f"{MESSAGE}.image"),
        (
            lambda message: message.update(type="image", image={"id": "1", "mime_type": "jpeg"}),
            f"{MESSAGE}.image.mime_type",
        ),
        (
            lambda message: message.update(
                type="location", location={"latitude": 123.0, "longitude": 0}
            ),
            f"{MESSAGE}.location.latitude",
        ),
        (
            lambda message: message.update(
                type="location", location={"latitude": "north", "longitude": 0}
            ),
            f"{MESSAGE}.location.latitude",
        ),
        (
            lambda message: message.update(type="reaction", reaction={"emoji": "👍"}),
            f"{MESSAGE}.reaction.message_id",
        ),
        (
            lambda message: message.update(type="contacts", contacts=[{"name": {}}]),
            f"{MESSAGE}.contacts[0].name.formatted_name",
        ),
    ],
)
def test_malformed_messages_name_the_field(mutate: Any, field: str) -> None:
    document = text_document()
    mutate(first_message(document))
    with pytest.raises(PayloadInvalid) as caught:
        parse_json(document)
    assert caught.value.field == field


def test_status_error_without_a_code_names_the_field() -> None:
    document = json.loads(fixture("statuses.json"))
    del document["entry"][0]["changes"][0]["value"]["statuses"][3]["errors"][0]["code"]
    with pytest.raises(PayloadInvalid) as caught:
        parse_json(document)
    assert caught.value.field == "entry[0].changes[0].value.statuses[3].errors[0].code"


# --- property: nothing but PayloadInvalid, whatever the body --------------------------------

_LEAVES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**70,
    1.5e308,
    "",
    "x",
    "é" * 300,
    "wamid.X",
    "1717430400",
    "image",
    "text",
    "messages",
    [],
    {},
    [None],
    {"id": None},
]


def _nodes(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) pair in a JSON tree."""
    found: list[tuple[Any, Any]] = []
    stack = [value]
    while stack:
        item = stack.pop()
        keys = list(item) if isinstance(item, dict) else range(len(item))
        for key in keys:
            found.append((item, key))
            if isinstance(item[key], dict | list):
                stack.append(item[key])
    return found


def _mutate(document: Any, rng: random.Random) -> Any:
    mutated = copy.deepcopy(document)
    for _ in range(rng.randint(1, 4)):
        nodes = _nodes(mutated)
        if not nodes:
            return rng.choice(_LEAVES)
        container, key = rng.choice(nodes)
        action = rng.random()
        if action < 0.5:
            container[key] = copy.deepcopy(rng.choice(_LEAVES))
        elif action < 0.7 and isinstance(container, dict):
            del container[key]
        elif action < 0.85:
            sibling_container, sibling_key = rng.choice(nodes)
            container[key] = copy.deepcopy(sibling_container[sibling_key])
        elif isinstance(container[key], str):
            container[key] = container[key][: rng.randint(0, len(container[key]))]
    return mutated


def attempt(body: bytes) -> list[Inbound] | PayloadInvalid:
    """Parse, returning the refusal instead of raising it; anything else propagates."""
    return parse_or_refusal(ADAPTER, webhook(body))


def test_parse_raises_nothing_but_payload_invalid_on_mutated_fixtures() -> None:
    rng = random.Random(20240603)
    documents = [json.loads(path.read_bytes()) for path in sorted(FIXTURES.glob("*.json"))]
    outcomes = {"parsed": 0, "refused": 0}
    for _ in range(3_000):
        outcome = attempt(json.dumps(_mutate(rng.choice(documents), rng)).encode())
        if isinstance(outcome, PayloadInvalid):
            assert outcome.field
            assert str(outcome)
            outcomes["refused"] += 1
            continue
        outcomes["parsed"] += 1
        for item in outcome:
            if isinstance(item, InboundMessage):
                as_event(item)
    # The loop must exercise both paths to mean anything.
    assert outcomes["parsed"] > 100
    assert outcomes["refused"] > 100


def test_parse_raises_nothing_but_payload_invalid_on_random_bytes() -> None:
    rng = random.Random(7)
    seeds = [path.read_bytes() for path in sorted(FIXTURES.glob("*.json"))]
    for _ in range(500):
        body = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        attempt(bytes(body))


def test_verify_raises_nothing_but_signature_invalid_on_random_headers() -> None:
    rng = random.Random(11)
    body = fixture("text.json")
    alphabet = "sha256=0123456789abcdefABCDEF é\x00"
    for _ in range(500):
        header = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        with pytest.raises(SignatureInvalid):
            ADAPTER.verify(webhook(body, {HEADER: header}))
