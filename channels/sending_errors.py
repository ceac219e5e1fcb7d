"""What a send can fail with, typed by what the caller should do next.

``retryable`` answers one question: may the same send succeed if tried again later? Rate
limits and availability failures (5xx, timeouts, refused connections, an open breaker) may;
a rejected request, bad credentials or a closed messaging window never will, so the caller
stops, records the failure, or (for the window) switches to a template.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from libs.errors import AtendeError

if TYPE_CHECKING:
    from channels.outbound import SentMessage


class SendError(AtendeError):
    """Root of the failures of an outbound send.

    ``status`` is the provider's HTTP status (``None`` when no answer came back) and
    ``provider_code`` its own error code, when it sent one. ``sent`` lists the messages of the
    same reply that went out before the failure, so a retry can skip them; ``attempts`` is how
    many HTTP attempts the failing message took.
    """

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        provider_code: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.provider_code = provider_code
        self.retry_after_s = retry_after_s
        self.sent: tuple[SentMessage, ...] = ()
        self.attempts = 0


class RateLimited(SendError):
    """The provider throttled us (HTTP 429 or a rate-limit code); ``retry_after_s`` is its hint."""

    retryable = True


class ProviderUnavailable(SendError):
    """The provider failed or could not be reached (5xx, timeout, connection error)."""

    retryable = True


class ChannelCircuitOpen(SendError):
    """The channel's breaker is open after repeated availability failures; nothing was sent.

    Retryable later, not now: the message says when the breaker lets a trial call through.
    """

    retryable = True


class Rejected(SendError):
    """The provider refused this request for good (a 4xx such as an invalid recipient)."""


class OutsideMessagingWindow(Rejected):
    """WhatsApp's customer-service window is closed: only a template message can be sent now."""


class AuthFailed(SendError):
    """The provider refused our credentials (401/403, an expired token): fix the channel config."""


class UnsupportedPart(SendError):
    """The channel cannot carry this reply part (e.g. a template on Telegram); nothing was sent."""


def error_for_status(
    status: int,
    *,
    what: str,
    detail: str,
    provider_code: str | None = None,
    retry_after_s: float | None = None,
) -> SendError:
    """The error an HTTP failure status means when the provider's body says nothing more precise.

    ``what`` names the channel and operation, e.g. ``telegram channel 'tg-main' (sendMessage)``.
    """
    kind: type[SendError]
    if status == 429:
        kind, message = RateLimited, f"{what} was rate limited: {detail}; slow down and retry"
    elif status in (401, 403):
        kind = AuthFailed
        message = f"{what} refused our credentials: {detail}; check the channel's token"
    elif status >= 500 or status == 408:
        kind, message = ProviderUnavailable, f"{what} failed on the provider's side: {detail}"
    else:
        kind = Rejected
        message = f"{what} was rejected: {detail}; retrying the same request will not help"
    return kind(message, status=status, provider_code=provider_code, retry_after_s=retry_after_s)
