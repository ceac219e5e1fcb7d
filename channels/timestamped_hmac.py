"""HMAC-SHA256 over ``"{timestamp}.{raw body}"`` with a replay window.

This is the generic channel's signature scheme; Chatwoot signs its webhooks the same way
under its own header names, so both inbound adapters verify through ``TimestampedHmac``.
The generic outbound adapter signs with ``sign`` so that a receiver verifies it like this.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from channels.inbound import SignatureInvalid, WebhookRequest

REPLAY_WINDOW_S = 300
SIGNATURE_PREFIX = "sha256="
HMAC_OF_TIMESTAMP_AND_BODY = "sha256=HMAC-SHA256(secret, timestamp + '.' + body)."
"""What a signature header holds, as ``/openapi.json`` says it."""

# Twelve digits reach the year 33658: enough for any clock, and a bound on what we parse.
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def utc_now() -> datetime:
    """The current time, aware, in UTC (the default clock of the adapters)."""
    return datetime.now(UTC)


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    return SIGNATURE_PREFIX + _digest(secret, str(timestamp).encode("ascii"), body)


def _digest(secret: bytes, timestamp: bytes, body: bytes) -> str:
    return hmac.new(secret, timestamp + b"." + body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class TimestampedHmac:
    """Verifies a signature header and a timestamp header against a shared secret.

    The HMAC is checked first, so a request without the secret only ever learns that its
    signature does not match; the age is then checked against ``window_s`` both ways, since
    a timestamp far in the future is as much a replay risk as an old one.
    """

    secret: bytes
    signature_header: str
    timestamp_header: str
    key_label: str
    now: Callable[[], datetime] = utc_now
    window_s: int = REPLAY_WINDOW_S

    def verify(self, request: WebhookRequest) -> None:
        """Raise ``SignatureInvalid`` naming the failed header unless the request is genuine."""
        signature = self._header(request, self.signature_header)
        timestamp = self._header(request, self.timestamp_header).strip()
        if not signature.startswith(SIGNATURE_PREFIX):
            raise SignatureInvalid(
                self.signature_header,
                f"{self.signature_header} must have the form {SIGNATURE_PREFIX}<hex digest>",
            )
        if _UNIX_SECONDS.fullmatch(timestamp) is None:
            raise SignatureInvalid(
                self.timestamp_header,
                f"{self.timestamp_header} must be a Unix time in whole seconds",
            )
        expected = _digest(self.secret, timestamp.encode("ascii"), request.body)
        given = signature.removeprefix(SIGNATURE_PREFIX).strip().lower()
        # Compared as bytes: compare_digest refuses non-ASCII str, and a header may hold any.
        if not hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "replace")):
            raise SignatureInvalid(
                self.signature_header,
                f"{self.signature_header} does not match {self.key_label}",
            )
        self._check_age(int(timestamp))

    def _header(self, request: WebhookRequest, name: str) -> str:
        value = request.headers.get(name)
        if not value:
            raise SignatureInvalid(name, f"{name} is missing; signed webhooks must send it")
        return value

    def _check_age(self, timestamp: int) -> None:
        age_s = int(self.now().timestamp()) - timestamp
        if age_s > self.window_s:
            raise SignatureInvalid(
                self.timestamp_header,
                f"{self.timestamp_header} is {age_s} s old; at most {self.window_s} s are accepted",
            )
        if -age_s > self.window_s:
            raise SignatureInvalid(
                self.timestamp_header,
                f"{self.timestamp_header} is {-age_s} s in the future; "
                f"at most {self.window_s} s of clock skew are accepted",
            )
