"""Telegram Bot API inbound: the secret token, and normalization of documented updates.

Fixtures under ``tests/fixtures/telegram`` follow the ``Update`` shapes of the Bot API
reference; the secret token is compared here as plain text, never through the adapter.
"""

from __future__ import annotations

import contextlib
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict

from channels.inbound import (
    Inbound,
    InboundAdapter,
    InboundMessage,
    PayloadInvalid,
    SignatureInvalid,
    WebhookRequest,
)
from channels.telegram.inbound import TelegramInbound
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
from tests.inbound_support import mutated, parse_or_refusal

FIXTURES = Path(__file__).parent / "fixtures" / "telegram"
SECRET = "tg-hook_5b1e0c7d9a"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
MARIA = "123456789"
ADAPTER = TelegramInbound(SECRET)


def webhook(body: bytes, headers: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url="https://atende.example.com/webhooks/telegram/tg-main",
        headers=CIMultiDict(headers if headers is not None else {HEADER: SECRET}),
        body=body,
        content_type="application/json",
        received_at=datetime.now(UTC),
    )


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def only(name: str) -> InboundMessage:
    """The one message a fixture's update yields, checked against the event contract."""
    request = webhook(fixture(name))
    ADAPTER.verify(request)
    items = ADAPTER.parse(request)
    assert len(items) == 1
    item = items[0]
    assert isinstance(item, InboundMessage)
    as_event(item)
    return item


def as_event(item: InboundMessage) -> InboxMessageReceived:
    """The event the ingress would append from the item: proves it fits the contract."""
    return inbox_payload(
        item, channel_id="tg-main", provider="telegram", received_at=datetime.now(UTC)
    )


def body_of(document: object) -> bytes:
    return json.dumps(document).encode()


# --- verification -------------------------------------------------------------------------


def test_the_adapter_meets_the_inbound_contract() -> None:
    adapter: InboundAdapter = ADAPTER
    assert adapter.provider == "telegram"


def test_the_configured_secret_token_is_accepted_whatever_the_header_case() -> None:
    ADAPTER.verify(webhook(b"{}", {HEADER.lower(): SECRET}))


def test_a_missing_secret_token_is_refused_naming_the_header() -> None:
    with pytest.raises(SignatureInvalid) as refused:
        ADAPTER.verify(webhook(fixture("message_text.json"), {}))
    assert refused.value.check == HEADER
    assert "is missing" in str(refused.value)


@pytest.mark.parametrize("given", [SECRET + "x", SECRET[:-1], "", "ç" * 8, SECRET.upper()])
def test_a_wrong_secret_token_is_refused_naming_the_header(given: str) -> None:
    with pytest.raises(SignatureInvalid) as refused:
        ADAPTER.verify(webhook(b"{}", {HEADER: given}))
    assert refused.value.check == HEADER


def test_an_empty_secret_is_refused_when_the_adapter_is_built() -> None:
    with pytest.raises(ValueError, match="secret token"):
        TelegramInbound("")


# --- messages -----------------------------------------------------------------------------


def test_text_message_keys_contact_and_time() -> None:
    item = only("message_text.json")
    assert item.message == InboundText(text="Olá! Vocês abrem no sábado?")
    assert item.conversation_key == MARIA
    assert item.dedup_key == "918273645"
    assert item.provider_message_id == f"{MARIA}:1365"
    assert item.contact.provider_user_id == MARIA
    assert item.contact.display_name == "Maria Silva"
    assert item.contact.username == "mariasilva"
    assert item.provider_timestamp == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert item.reply_to is None


def test_photo_takes_the_largest_size_and_the_caption() -> None:
    media = only("message_photo.json").message
    assert isinstance(media, InboundMedia)
    assert media.media_kind == "image"
    assert media.media_id == "AgACAgEAAxkBAAIBQ2YyAAFlarge"
    assert media.caption == "Este é o modelo que eu quero"
    assert media.url is None


def test_photo_sizes_in_any_order_still_give_the_largest() -> None:
    document = json.loads(fixture("message_photo.json"))
    document["message"]["photo"].reverse()
    media = ADAPTER.parse(webhook(body_of(document)))[0]
    assert isinstance(media, InboundMessage)
    assert isinstance(media.message, InboundMedia)
    assert media.message.media_id == "AgACAgEAAxkBAAIBQ2YyAAFlarge"


@pytest.mark.parametrize(
    ("name", "kind", "file_id", "mime_type", "filename"),
    [
        (
            "message_document.json",
            "document",
            "BQACAgEAAxkBAAIBRGYyAAGdoc",
            "application/pdf",
            "comprovante.pdf",
        ),
        ("message_voice.json", "voice", "AwACAgEAAxkBAAIBRWYyAAHvoice", "audio/ogg", None),
        ("message_sticker.json", "sticker", "CAACAgIAAxkBAAIBRmYyAAHsticker", None, None),
    ],
)
def test_files_become_media_with_their_file_id(
    name: str, kind: str, file_id: str, mime_type: str | None, filename: str | None
) -> None:
    media = only(name).message
    assert isinstance(media, InboundMedia)
    assert (media.media_kind, media.media_id) == (kind, file_id)
    assert (media.mime_type, media.filename) == (mime_type, filename)


def test_voice_keeps_duration_and_size() -> None:
    media = only("message_voice.json").message
    assert isinstance(media, InboundMedia)
    assert (media.duration_s, media.size_bytes) == (7, 23110)


@pytest.mark.parametrize(
    ("key", "kind"),
    [("audio", "audio"), ("video", "video"), ("video_note", "video"), ("animation", "video")],
)
def test_other_file_kinds_map_to_media_kinds(key: str, kind: str) -> None:
    document = json.loads(fixture("message_document.json"))
    document["message"][key] = document["message"].pop("document")
    item = ADAPTER.parse(webhook(body_of(document)))[0]
    assert isinstance(item, InboundMessage)
    assert isinstance(item.message, InboundMedia)
    assert item.message.media_kind == kind


def test_location_is_a_pin() -> None:
    assert only("message_location.json").message == InboundLocation(
        latitude=-23.561414, longitude=-46.655881
    )


def test_venue_is_a_named_place() -> None:
    place = only("message_venue.json").message
    assert isinstance(place, InboundLocation)
    assert place.name == "MASP"
    assert place.address == "Av. Paulista, 1578 - Bela Vista, São Paulo"


def test_shared_contact_is_a_card_with_the_telegram_user_id() -> None:
    card = only("message_contact.json").message
    assert isinstance(card, InboundContacts)
    (contact,) = card.contacts
    assert contact.name == "João Pereira"
    assert contact.phones[0].number == "+5511987654321"
    assert contact.phones[0].provider_user_id == "987654321"


def test_group_reply_is_keyed_by_the_group_and_points_at_the_quoted_message() -> None:
    item = only("message_reply_group.json")
    assert item.conversation_key == "-1001234567890"
    assert item.contact.provider_user_id == "555000111"
    assert item.provider_message_id == "-1001234567890:88"
    assert item.reply_to == "-1001234567890:87"


def test_edited_message_is_an_edit_of_the_original() -> None:
    item = only("edited_message.json")
    assert item.message == InboundEdit(
        target_message_id=f"{MARIA}:1365", text="Olá! Vocês abrem no domingo?"
    )
    assert item.dedup_key == "918273654"
    # Its own id, so storing it does not collide with the message it corrects.
    assert item.provider_message_id != f"{MARIA}:1365"
    assert item.provider_timestamp == datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)


def test_an_edit_without_text_is_kept_unsupported() -> None:
    document = json.loads(fixture("edited_message.json"))
    edited = document["edited_message"]
    edited["location"] = {"latitude": 1.0, "longitude": 2.0}
    del edited["text"]
    item = ADAPTER.parse(webhook(body_of(document)))[0]
    assert isinstance(item, InboundMessage)
    assert isinstance(item.message, InboundUnsupported)
    assert item.message.provider_type == "edited_message"
    assert item.message.raw["location"] == {"latitude": 1.0, "longitude": 2.0}


def test_callback_query_is_an_interactive_reply_to_the_keyboard_message() -> None:
    item = only("callback_query.json")
    assert item.message == InboundInteractive(
        interaction="callback_query",
        reply_id="delivery:pickup",
        title="Retirar na loja",
        payload="delivery:pickup",
    )
    assert item.reply_to == f"{MARIA}:1400"
    assert item.conversation_key == MARIA
    assert item.contact.username == "mariasilva"
    assert item.provider_message_id == "callback_query:4382bfdwdsb323b2d9"


def test_callback_query_from_an_inline_message_belongs_to_the_users_chat() -> None:
    document = json.loads(fixture("callback_query.json"))
    query = document["callback_query"]
    del query["message"]
    query["inline_message_id"] = "AAAAAGx0ZXN0"
    item = ADAPTER.parse(webhook(body_of(document)))[0]
    assert isinstance(item, InboundMessage)
    assert item.conversation_key == MARIA
    assert item.reply_to is None
    assert isinstance(item.message, InboundInteractive)
    assert item.message.title is None


def test_reaction_added() -> None:
    item = only("message_reaction.json")
    assert item.message == InboundReaction(target_message_id=f"{MARIA}:1400", emoji="❤")
    assert item.dedup_key == "918273656"


def test_reaction_removed() -> None:
    item = only("message_reaction_removed.json")
    assert item.message == InboundReaction(
        target_message_id=f"{MARIA}:1400", emoji="❤", removed=True
    )


def test_reaction_replaced_records_the_new_emoji() -> None:
    document = json.loads(fixture("message_reaction_removed.json"))
    document["message_reaction"]["new_reaction"] = [{"type": "emoji", "emoji": "👍"}]
    item = ADAPTER.parse(webhook(body_of(document)))[0]
    assert isinstance(item, InboundMessage)
    assert item.message == InboundReaction(target_message_id=f"{MARIA}:1400", emoji="👍")


def test_custom_emoji_reaction_is_kept_unsupported() -> None:
    document = json.loads(fixture("message_reaction.json"))
    document["message_reaction"]["new_reaction"] = [
        {"type": "custom_emoji", "custom_emoji_id": "5368324170671202286"}
    ]
    item = ADAPTER.parse(webhook(body_of(document)))[0]
    assert isinstance(item, InboundMessage)
    assert isinstance(item.message, InboundUnsupported)
    assert item.message.provider_type == "message_reaction"


# --- what atende does not model -----------------------------------------------------------


def test_unmodelled_message_kind_is_kept_with_the_whole_message() -> None:
    item = only("message_poll.json")
    assert isinstance(item.message, InboundUnsupported)
    assert item.message.provider_type == "poll"
    assert item.message.raw == json.loads(fixture("message_poll.json"))["message"]
    assert item.conversation_key == MARIA


def test_unknown_update_kind_is_kept_with_its_part() -> None:
    item = only("my_chat_member.json")
    assert isinstance(item.message, InboundUnsupported)
    assert item.message.provider_type == "my_chat_member"
    assert item.message.raw == json.loads(fixture("my_chat_member.json"))["my_chat_member"]
    assert (item.conversation_key, item.contact.provider_user_id) == (MARIA, MARIA)
    assert item.dedup_key == "918273659"
    assert item.provider_message_id == "update:918273659"


def test_channel_post_is_recorded_as_unsupported() -> None:
    item = only("channel_post.json")
    assert isinstance(item.message, InboundUnsupported)
    assert item.message.provider_type == "channel_post"
    assert item.conversation_key == "-1009876543210"
    assert item.contact.provider_user_id == "-1009876543210"


def test_an_update_with_nothing_but_its_id_is_still_recorded() -> None:
    item = ADAPTER.parse(webhook(b'{"update_id": 5}'))[0]
    assert isinstance(item, InboundMessage)
    assert isinstance(item.message, InboundUnsupported)
    assert item.message.provider_type == "update"
    assert item.conversation_key == "unknown"


# --- malformed bodies ---------------------------------------------------------------------


def _without(name: str, *path: str) -> bytes:
    document = json.loads(fixture(name))
    node = document
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return body_of(document)


def _replaced(name: str, value: object, *path: str) -> bytes:
    document = json.loads(fixture(name))
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return body_of(document)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b"[1, 2]", "body"),
        (b'{"update_id": NaN}', "body"),
        (b"\xff\xfe{}", "body"),
        (b"[" * 40 + b"]" * 40, "body"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "body"),
        (_without("message_text.json", "update_id"), "update_id"),
        (_replaced("message_text.json", "918273645", "update_id"), "update_id"),
        (_replaced("message_text.json", True, "update_id"), "update_id"),
        (_without("message_text.json", "message", "chat"), "message.chat"),
        (_without("message_text.json", "message", "chat", "id"), "message.chat.id"),
        (_replaced("message_text.json", 3.5, "message", "chat", "id"), "message.chat.id"),
        (_replaced("message_text.json", "x", "message", "from"), "message.from"),
        (_without("message_text.json", "message", "from"), "message.from"),
        (_replaced("message_text.json", "", "message", "text"), "message.text"),
        (_replaced("message_text.json", 10**30, "message", "date"), "message.date"),
        (_replaced("message_photo.json", [], "message", "photo"), "message.photo"),
        (_replaced("message_photo.json", [1], "message", "photo"), "message.photo[0]"),
        (_without("message_document.json", "message", "document", "file_id"),
         "message.document.file_id"),
        (_replaced("message_document.json", "pdf", "message", "document", "mime_type"),
         "message.document"),
        (_replaced("message_location.json", 91, "message", "location", "latitude"),
         "message.location"),
        (_replaced("message_location.json", "north", "message", "location", "latitude"),
         "message.location.latitude"),
        (_without("callback_query.json", "callback_query", "from"), "callback_query.from"),
        (_replaced("callback_query.json", "", "callback_query", "data"), "callback_query.data"),
        (_without("message_reaction.json", "message_reaction", "user"), "message_reaction.user"),
        (_replaced("message_reaction.json", [{"type": "emoji"}], "message_reaction",
                   "new_reaction"), "message_reaction.new_reaction[0].emoji"),
    ],
)  # fmt: skip
def test_malformed_update_names_the_field(body: bytes, field: str) -> None:
    with pytest.raises(PayloadInvalid) as refused:
        ADAPTER.parse(webhook(body))
    assert refused.value.field == field
    assert field in str(refused.value)


# --- fuzz ---------------------------------------------------------------------------------

_ODD_VALUES: list[Any] = [
    None, True, 0, -1, 2**63, 10**300, 1.5, -1e308, "", "x", "🙂" * 70, [], [None], {}, {"id": 1},
    {"file_id": ""}, [{"type": "emoji", "emoji": ""}], {"latitude": 0, "longitude": 999},
]  # fmt: skip


def _mutated(document: Any, rng: random.Random) -> Any:
    return mutated(document, rng, _ODD_VALUES, most_changes=3, replace_share=0.55)


def _attempt(body: bytes) -> list[Inbound] | PayloadInvalid:
    """Parse, returning the refusal instead of raising it; anything else propagates."""
    return parse_or_refusal(ADAPTER, webhook(body))


def test_mutated_updates_only_ever_raise_payload_invalid() -> None:
    rng = random.Random(31337)
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
            assert isinstance(item, InboundMessage)
            as_event(item)
            assert 0 < len(item.dedup_key) <= 256
            assert 0 < len(item.conversation_key) <= 256
    assert parsed > 200
    assert refused > 200


def test_corrupted_bytes_only_ever_raise_payload_invalid() -> None:
    rng = random.Random(4242)
    seeds = [path.read_bytes() for path in sorted(FIXTURES.glob("*.json"))]
    for _ in range(500):
        body = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        with contextlib.suppress(PayloadInvalid):
            ADAPTER.parse(webhook(bytes(body)))
