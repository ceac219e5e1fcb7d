"""The JSON answers of the ingress when it refuses a webhook.

Every refusal is ``{"error": <code>, "detail": <sentence>, ...}`` with the status a provider
understands: 4xx means "do not retry this request", 503 means "retry later".
"""

from __future__ import annotations

from aiohttp import web


def problem(status: int, error: str, detail: str, **extra: str | int) -> web.Response:
    """A JSON refusal; ``extra`` adds fields such as ``check`` or ``field``."""
    body: dict[str, str | int] = {"error": error, "detail": detail, **extra}
    headers = {}
    if "retry_after_s" in extra:
        headers["Retry-After"] = str(extra["retry_after_s"])
    return web.json_response(body, status=status, headers=headers)


def unknown_channel(provider: str, channel_id: str) -> web.Response:
    """404: the URL names no configured channel."""
    return problem(
        404, "unknown_channel", f"no {provider} channel {channel_id!r} is configured here"
    )


def body_too_large(limit_bytes: int) -> web.Response:
    """413: the body is over the channel's limit."""
    return problem(
        413,
        "body_too_large",
        f"the body is larger than this channel's limit of {limit_bytes} bytes",
        limit_bytes=limit_bytes,
    )


def wrong_content_type(got: str, expected: str) -> web.Response:
    """415: the provider always sends ``expected``."""
    return problem(
        415,
        "unsupported_media_type",
        f"Content-Type {got or '(none)'!r} is not accepted here; send {expected}",
    )


def rate_limited(retry_after_s: int) -> web.Response:
    """429 with Retry-After."""
    return problem(
        429,
        "rate_limited",
        f"too many webhooks for this channel; retry in {retry_after_s} s",
        retry_after_s=retry_after_s,
    )


def unavailable() -> web.Response:
    """503: the webhook could not be stored, so the provider must retry.

    The answer names no cause: what failed is logged, not told to the caller.
    """
    return problem(
        503, "unavailable", "the webhook could not be stored; retry in 5 s", retry_after_s=5
    )


def backlog_full(retry_after_s: int) -> web.Response:
    """503 with Retry-After: the events waiting to be processed are at capacity."""
    return problem(
        503,
        "backlog_full",
        "too many events are waiting to be processed to store this webhook; "
        f"retry in {retry_after_s} s",
        retry_after_s=retry_after_s,
    )
