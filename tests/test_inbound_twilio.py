"""Twilio inbound (SMS, MMS, WhatsApp through Twilio): signature and normalization.

Fixtures under ``tests/fixtures/twilio`` are form posts shaped as Twilio documents them; the
``X-Twilio-Signature`` values are computed here with ``hmac``/``base64`` directly, following
Twilio's description (URL, then each parameter's name and value, sorted by name).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

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
from channels.twilio.inbound import TwilioInbound
from events.types import (
    InboundInteractive,
    InboundLocation,
    InboundMedia,
    InboundText,
    InboundUnsupported,
    InboxMessageReceived,
)
from ingress.webhooks import inbox_payload
from tests.inbound_support import parse_or_refusal

FIXTURES = Path(__file__).parent / "fixtures" / "twilio"
AUTH_TOKEN = "12345678901234567890123456789012"
HEADER = "X-Twilio-Signature"
URL = "https://atende.example.com/webhooks/twilio/tw-main?tenant=acme"
ADAPTER = TwilioInbound(AUTH_TOKEN)
Form = list[tuple[str, str]]


def signature(url: str, form: Form, token: str = AUTH_TOKEN) -> str:
    signed = url + "".join(f"{name}{value}" for name, value in sorted(form))
    digest = hmac.new(token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def webhook(
    form: Form, headers: dict[str, str] | None = None, url: str = URL, *, decoded: bool = True
) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url=url,
        headers=CIMultiDict(headers if headers is not None else {HEADER: signature(url, form)}),
        body=urlencode(form).encode(),
        content_type="application/x-www-form-urlencoded",
        received_at=datetime.now(UTC),
        form=form if decoded else (),
    )


def fixture(name: str) -> Form:
    return parse_qsl((FIXTURES / name).read_text(encoding="utf-8"), keep_blank_values=True)


def parse(name: str) -> list[Inbound]:
    request = webhook(fixture(name))
    ADAPTER.verify(request)
    return ADAPTER.parse(request)


def messages(name: str) -> list[InboundMessage]:
    items = parse(name)
    assert all(isinstance(item, InboundMessage) for item in items)
    return [item for item in items if isinstance(item, InboundMessage)]


def statuses(name: str) -> list[InboundStatus]:
    items = parse(name)
    assert all(isinstance(item, InboundStatus) for item in items)
    return [item for item in items if isinstance(item, InboundStatus)]


def value(form: Form, name: str) -> str:
    return dict(form)[name]


def as_event(item: InboundMessage) -> InboxMessageReceived:
    """The event the ingress would append from the item: proves it fits the contract."""
    return inbox_payload(
        item, channel_id="tw-main", provider="twilio", received_at=datetime.now(UTC)
    )


# --- verification -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(path.name for path in FIXTURES.glob("*.form")))
def test_every_fixture_verifies_with_the_auth_token(name: str) -> None:
    ADAPTER.verify(webhook(fixture(name)))


def test_body_is_decoded_when_the_ingress_did_not() -> None:
    form = fixture("whatsapp_text.form")
    request = webhook(form, decoded=False)
    ADAPTER.verify(request)
    assert ADAPTER.parse(request) == ADAPTER.parse(webhook(form))


def test_header_name_is_case_insensitive() -> None:
    form = fixture("sms_text.form")
    ADAPTER.verify(webhook(form, {HEADER.lower(): signature(URL, form)}))


@pytest.mark.parametrize(
    ("signed_url", "configured_url"),
    [
        (
            "https://atende.example.com:443/webhooks/twilio/tw-main",
            "https://atende.example.com/webhooks/twilio/tw-main",
        ),
        (
            "https://atende.example.com/webhooks/twilio/tw-main",
            "https://atende.example.com:443/webhooks/twilio/tw-main",
        ),
    ],
)
def test_default_port_spelled_or_not_verifies(signed_url: str, configured_url: str) -> None:
    form = fixture("sms_text.form")
    ADAPTER.verify(webhook(form, {HEADER: signature(signed_url, form)}, url=configured_url))


def test_missing_header_is_refused() -> None:
    with pytest.raises(SignatureInvalid, match="X-Twilio-Signature is missing") as caught:
        ADAPTER.verify(webhook(fixture("sms_text.form"), {}))
    assert caught.value.check == HEADER


@pytest.mark.parametrize("header", ["", "not base64!", base64.b64encode(b"short").decode()])
def test_malformed_header_is_refused(header: str) -> None:
    with pytest.raises(SignatureInvalid, match="is malformed") as caught:
        ADAPTER.verify(webhook(fixture("sms_text.form"), {HEADER: header}))
    assert caught.value.check == HEADER


def test_wrong_token_is_refused() -> None:
    form = fixture("sms_text.form")
    with pytest.raises(SignatureInvalid, match="does not match the auth token") as caught:
        ADAPTER.verify(webhook(form, {HEADER: signature(URL, form, "another-token")}))
    assert caught.value.check == HEADER


def test_tampered_parameter_is_refused() -> None:
    form = fixture("sms_text.form")
    header = {HEADER: signature(URL, form)}
    tampered = [(name, "Send me the refund" if name == "Body" else text) for name, text in form]
    with pytest.raises(SignatureInvalid, match="does not match"):
        ADAPTER.verify(webhook(tampered, header))


def test_another_url_is_refused() -> None:
    form = fixture("sms_text.form")
    header = {HEADER: signature(URL, form)}
    with pytest.raises(SignatureInvalid, match="public_url"):
        ADAPTER.verify(webhook(form, header, url=URL.replace("acme", "other")))


def test_an_empty_auth_token_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="auth token is empty"):
        TwilioInbound("")


# --- normalization ------------------------------------------------------------------------


def test_sms_text() -> None:
    form = fixture("sms_text.form")
    [item] = messages("sms_text.form")
    assert item.message == InboundText(text="Is the store open on Saturday?")
    assert item.dedup_key == item.provider_message_id == value(form, "MessageSid")
    assert item.conversation_key == "+14155551234"
    assert item.contact.provider_user_id == "+14155551234"
    assert item.contact.phone == "+14155551234"
    assert item.contact.display_name is None
    assert item.reply_to is None
    as_event(item)


def test_whatsapp_text_keeps_the_medium_in_the_address() -> None:
    [item] = messages("whatsapp_text.form")
    assert item.message == InboundText(text="Oi, vocês abrem no sábado?")
    assert item.conversation_key == "whatsapp:+5511987654321"
    assert item.contact.provider_user_id == "whatsapp:+5511987654321"
    assert item.contact.phone == "+5511987654321"
    assert item.contact.display_name == "Ana Souza"


def test_one_number_by_sms_and_on_whatsapp_holds_two_conversations() -> None:
    number = "+5511987654321"
    by_sms = replaced(fixture("sms_text.form"), From=number)
    on_whatsapp = replaced(fixture("whatsapp_text.form"), From=f"whatsapp:{number}")
    [sms] = [item for item in ADAPTER.parse(webhook(by_sms)) if isinstance(item, InboundMessage)]
    [wa] = [
        item for item in ADAPTER.parse(webhook(on_whatsapp)) if isinstance(item, InboundMessage)
    ]
    assert sms.contact.phone == wa.contact.phone == number
    assert sms.conversation_key != wa.conversation_key
    # The reply goes to the contact's address, which names the medium the message came on.
    assert (sms.contact.provider_user_id, wa.contact.provider_user_id) == (
        number,
        f"whatsapp:{number}",
    )
    assert (as_event(sms).contact, as_event(wa).contact) == (sms.contact, wa.contact)


def test_replied_message_sid_becomes_reply_to() -> None:
    form = fixture("whatsapp_reply.form")
    [item] = messages("whatsapp_reply.form")
    assert item.reply_to == value(form, "OriginalRepliedMessageSid")


def test_several_media_become_one_item_each_with_distinct_keys() -> None:
    form = fixture("mms_two_media.form")
    sid = value(form, "MessageSid")
    first, second = messages("mms_two_media.form")
    assert first.message == InboundMedia(
        media_kind="image",
        url=value(form, "MediaUrl0"),
        mime_type="image/jpeg",
        caption="Photos of the damage",
    )
    assert second.message == InboundMedia(
        media_kind="video", url=value(form, "MediaUrl1"), mime_type="video/mp4"
    )
    assert (first.dedup_key, second.dedup_key) == (sid, f"{sid}:1")
    assert (first.provider_message_id, second.provider_message_id) == (sid, f"{sid}:1")
    assert first.conversation_key == second.conversation_key
    for item in (first, second):
        as_event(item)


def test_whatsapp_voice_note_is_audio_by_url() -> None:
    [item] = messages("whatsapp_voice.form")
    assert isinstance(item.message, InboundMedia)
    assert item.message.media_kind == "audio"
    assert item.message.mime_type == "audio/ogg"
    assert item.message.caption is None


def test_whatsapp_location() -> None:
    [item] = messages("whatsapp_location.form")
    assert item.message == InboundLocation(
        latitude=-23.5613,
        longitude=-46.6565,
        name="MASP",
        address="Av. Paulista, 1578 - Bela Vista, São Paulo - SP",
    )


def test_whatsapp_quick_reply_button() -> None:
    [item] = messages("whatsapp_button.form")
    assert item.message == InboundInteractive(
        interaction="button_reply",
        reply_id="HANDOFF",
        title="Falar com atendente",
        payload="HANDOFF",
    )
    assert item.reply_to is not None


def test_whatsapp_list_row() -> None:
    [item] = messages("whatsapp_list.form")
    assert item.message == InboundInteractive(
        interaction="list_reply", reply_id="slot-2024-06-08-10h", title="Sáb 10h"
    )


def test_unknown_kind_is_kept_raw() -> None:
    form = fixture("whatsapp_unknown.form")
    [item] = messages("whatsapp_unknown.form")
    assert isinstance(item.message, InboundUnsupported)
    assert item.message.provider_type == "reaction"
    assert item.message.raw == dict(form)
    as_event(item)


def test_delivered_status() -> None:
    form = fixture("status_delivered.form")
    [item] = statuses("status_delivered.form")
    sid = value(form, "MessageSid")
    assert (item.status, item.dedup_key, item.provider_message_id) == (
        "delivered",
        f"{sid}:delivered",
        sid,
    )
    # The status of a WhatsApp message belongs to the WhatsApp conversation.
    assert item.conversation_key == "whatsapp:+5511987654321"
    assert item.error is None


def test_undelivered_status_is_a_failure_with_its_code() -> None:
    [item] = statuses("status_undelivered.form")
    assert item.status == "failed"
    assert item.error is not None
    assert (item.error.code, item.error.title) == ("30003", None)
    assert item.conversation_key == "+14155551234"


def test_failed_status_keeps_the_error_message() -> None:
    [item] = statuses("status_failed.form")
    assert item.status == "failed"
    assert item.error is not None
    assert item.error.code == "63016"
    assert item.error.title == (
        "Failed to send freeform message because you are outside the allowed window."
    )


def test_intermediate_status_yields_nothing() -> None:
    assert parse("status_queued.form") == []


# --- malformed forms --------------------------------------------------------------------------


def without(form: Form, name: str) -> Form:
    return [(key, text) for key, text in form if key != name]


def replaced(form: Form, **values: str) -> Form:
    kept = [(key, text) for key, text in form if key not in values]
    return kept + list(values.items())


@pytest.mark.parametrize(
    ("form", "field"),
    [
        (without(fixture("sms_text.form"), "MessageSid"), "MessageSid"),
        (without(fixture("status_failed.form"), "MessageSid"), "MessageSid"),
        ([], "MessageSid"),
        (without(fixture("sms_text.form"), "From"), "From"),
        (replaced(fixture("whatsapp_text.form"), From="whatsapp:"), "From"),
        (replaced(fixture("sms_text.form"), MessageSid="S" * 300), "MessageSid"),
        (replaced(fixture("sms_text.form"), NumMedia="two"), "NumMedia"),
        (replaced(fixture("sms_text.form"), NumMedia="-1"), "NumMedia"),
        (without(fixture("mms_two_media.form"), "MediaUrl1"), "MediaUrl1"),
        (replaced(fixture("mms_two_media.form"), MediaUrl0="ftp://x/y"), "MediaUrl0"),
        (replaced(fixture("mms_two_media.form"), MediaContentType0="jpeg"), "MediaContentType0"),
        (replaced(fixture("whatsapp_location.form"), Latitude="north"), "Latitude"),
        (replaced(fixture("whatsapp_location.form"), Latitude="91"), "Latitude"),
        (replaced(fixture("whatsapp_location.form"), Longitude="nan"), "Longitude"),
        (replaced(fixture("whatsapp_text.form"), ProfileName="A" * 300), "ProfileName"),
        (replaced(fixture("status_failed.form"), ErrorCode="9" * 80), "ErrorCode"),
    ],
)
def test_malformed_forms_name_the_field(form: Form, field: str) -> None:
    with pytest.raises(PayloadInvalid) as caught:
        ADAPTER.parse(webhook(form))
    assert caught.value.field == field
    assert field in str(caught.value)


# --- property: nothing but PayloadInvalid, whatever the form --------------------------------

_VALUES = [
    "",
    "0",
    "1",
    "3",
    "-4",
    "nan",
    "1e999",
    "x" * 300,
    "whatsapp:",
    "whatsapp:+1",
    "https://a.example/m",
    "image/png",
    "bogus",
    "received",
    "failed",
    "é",
    "+5511",
]
_NAMES = [
    "MessageSid",
    "From",
    "To",
    "Body",
    "NumMedia",
    "MediaUrl0",
    "MediaUrl1",
    "MediaContentType0",
    "Latitude",
    "Longitude",
    "ButtonPayload",
    "ButtonText",
    "ListId",
    "MessageStatus",
    "ErrorCode",
    "ErrorMessage",
    "ProfileName",
    "MessageType",
    "OriginalRepliedMessageSid",
]


def attempt(form: Form) -> list[Inbound] | PayloadInvalid:
    """Parse, returning the refusal instead of raising it; anything else propagates."""
    return parse_or_refusal(ADAPTER, webhook(form))


def test_parse_raises_nothing_but_payload_invalid_on_mutated_forms() -> None:
    rng = random.Random(20240603)
    seeds = [fixture(path.name) for path in sorted(FIXTURES.glob("*.form"))]
    outcomes = {"parsed": 0, "refused": 0}
    for _ in range(3_000):
        form = list(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.4 and form:
                form.pop(rng.randrange(len(form)))
            else:
                form = replaced(form, **{rng.choice(_NAMES): rng.choice(_VALUES)})
        outcome = attempt(form)
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


def test_verify_raises_nothing_but_signature_invalid_on_random_headers() -> None:
    rng = random.Random(11)
    form = fixture("sms_text.form")
    alphabet = "ABCxyz0189+/= é\x00"
    for _ in range(500):
        header = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        with pytest.raises(SignatureInvalid):
            ADAPTER.verify(webhook(form, {HEADER: header}))
