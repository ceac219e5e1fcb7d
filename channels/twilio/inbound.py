"""Twilio Messaging webhooks (SMS, MMS and WhatsApp through Twilio): signature and normalization.

Twilio posts ``application/x-www-form-urlencoded`` forms. An incoming message carries
``MessageSid``, ``From``/``To`` (``whatsapp:+5511…`` on WhatsApp), ``Body`` and, by kind,
``NumMedia`` with ``MediaUrl{n}``/``MediaContentType{n}``, ``Latitude``/``Longitude``,
``ButtonPayload``/``ButtonText`` or ``ListId``/``ListTitle``. A status callback carries
``MessageStatus`` (and ``ErrorCode`` when delivery failed).

The conversation is the sender's address as Twilio writes it, channel prefix kept: one number
writing by SMS (``+5511…``) and on WhatsApp (``whatsapp:+5511…``) holds two conversations, and
the contact's ``provider_user_id`` is that address, so a reply sent to it goes out on the
medium the message came in on. A status callback's conversation is its ``To``, written alike.

A message with several media becomes several items, because the contract holds one media per
message: the first carries ``Body`` as its caption and the ``MessageSid`` as its ids; media
``n`` ≥ 1 follows with ``f"{MessageSid}:{n}"`` as dedup key and provider id, so each item
is claimed, numbered and stored on its own, and a repeated webhook repeats all of them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from typing import Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from channels.inbound import (
    Inbound,
    InboundMessage,
    InboundStatus,
    SignatureInvalid,
    WebhookRequest,
)
from channels.twilio.inbound_content import message_content
from channels.twilio.webhook_form import TwilioForm
from events.types.delivery import DeliveryStatus

SIGNATURE_HEADER = "X-Twilio-Signature"

_STATUSES: dict[str, DeliveryStatus] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "undelivered": "failed",
}
# Statuses of a message on its way in, which Twilio may report on an inbound message's form.
_INBOUND_STATUSES = frozenset({"received", "receiving"})
_SHA1_DIGEST_BYTES = 20
_DEFAULT_PORTS = {"https": 443, "http": 80}


class TwilioInbound:
    """Inbound adapter of one Twilio channel (one account auth token)."""

    provider: Literal["twilio"] = "twilio"

    def __init__(self, auth_token: str) -> None:
        if not auth_token:
            raise ValueError("the Twilio auth token is empty; set it in the channel config")
        self._auth_token = auth_token.encode()

    def verify(self, request: WebhookRequest) -> None:
        """Check ``X-Twilio-Signature`` over the public URL and the sorted form parameters."""
        header = request.headers.get(SIGNATURE_HEADER)
        if header is None:
            raise SignatureInvalid(SIGNATURE_HEADER, f"{SIGNATURE_HEADER} is missing")
        try:
            given = base64.b64decode(header.strip(), validate=True)
        except (binascii.Error, ValueError):
            given = b""
        if len(given) != _SHA1_DIGEST_BYTES:
            raise SignatureInvalid(
                SIGNATURE_HEADER, f"{SIGNATURE_HEADER} is malformed; expected base64 of 20 bytes"
            )
        fields = form_fields(request)
        matched = False
        # Every variant is computed and compared, so the time taken does not tell which
        # variant (if any) came close.
        for url in _url_variants(request.url):
            expected = self._signature(url, fields)
            matched = hmac.compare_digest(expected, given) or matched
        if not matched:
            # The URL is not named: a caller without the auth token learns nothing of it.
            raise SignatureInvalid(
                SIGNATURE_HEADER,
                f"{SIGNATURE_HEADER} does not match the auth token and the URL Twilio called; "
                "check the channel's auth_token and public_url",
            )

    def parse(self, request: WebhookRequest) -> list[Inbound]:
        """One item for a status callback or a message (one per media when there are several)."""
        form = TwilioForm(form_fields(request))
        sid = form.ident("MessageSid")
        reported = form.get("MessageStatus")
        if reported and reported not in _INBOUND_STATUSES:
            return _status(form, sid, reported)
        sender = form.address("From")
        contact = form.contact(sender)
        reply_to = form.opt_ident("OriginalRepliedMessageSid")
        items: list[Inbound] = []
        for index, content in enumerate(message_content(form)):
            item_id = sid if index == 0 else f"{sid}:{index}"
            items.append(
                InboundMessage(
                    conversation_key=sender,
                    dedup_key=item_id,
                    provider_message_id=item_id,
                    contact=contact,
                    message=content,
                    reply_to=reply_to,
                )
            )
        return items

    def _signature(self, url: str, fields: Sequence[tuple[str, str]]) -> bytes:
        # Twilio's scheme: the URL, then each parameter's name and value with no separator,
        # parameters sorted by name (byte order, case-sensitive).
        signed = url + "".join(name + value for name, value in sorted(fields))
        return hmac.new(self._auth_token, signed.encode(), hashlib.sha1).digest()


def form_fields(request: WebhookRequest) -> Sequence[tuple[str, str]]:
    """The posted parameters: the ingress's decoded form, else the body decoded here."""
    if request.form:
        return request.form
    return parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True)


def _url_variants(url: str) -> list[str]:
    """The URL as configured, and with its default port added or removed.

    Twilio signs the URL as it called it, which may or may not spell out the default port,
    so a URL configured one way still verifies a request signed the other way.
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return [url]
    default = _DEFAULT_PORTS.get(parts.scheme)
    if default is None or not parts.netloc:
        return [url]
    if port is None:
        other = f"{parts.netloc}:{default}"
    elif port == default:
        other = parts.netloc.rsplit(":", 1)[0]
    else:
        return [url]
    return [url, urlunsplit(parts._replace(netloc=other))]


def _status(form: TwilioForm, sid: str, reported: str) -> list[Inbound]:
    status = _STATUSES.get(reported)
    if status is None:
        # Intermediate states (queued, sending, accepted, scheduled, …) are not outcomes the
        # delivery contract records.
        return []
    return [
        InboundStatus(
            dedup_key=f"{sid}:{status}",
            provider_message_id=sid,
            status=status,
            conversation_key=form.opt_address("To"),
            error=form.delivery_error(),
        )
    ]
