"""Records providers' delivery statuses (delivery.status.updated) on our outbound messages."""

from __future__ import annotations

import structlog

from delivery.statuses import OutboundStatuses
from events.streams import DELIVERY_STATUS_UPDATED
from events.types.delivery import DeliveryStatusUpdated
from libs.errors import ConfigurationError, Reject, RetryLater
from libs.observability.metrics import DELIVERY_STATUSES
from libs.resources import Resources
from libs.streams import Consumer, Handler, Received

_log = structlog.get_logger("atende.delivery")
_ATTEMPTS_FOR_UNKNOWN = 2
_LOOK_AGAIN_MS = 2_000


def delivery_status_handler(statuses: OutboundStatuses) -> Handler:
    """Return a handler that moves the matching message's status forward, or logs why not."""

    async def record(received: Received) -> None:
        envelope = received.envelope
        status = envelope.payload
        if not isinstance(status, DeliveryStatusUpdated):
            raise Reject(f"expected a delivery status, got {envelope.type}")
        outcome = await statuses.record(envelope.tenant_id, status)
        if outcome == "unknown" and received.attempt < _ATTEMPTS_FOR_UNKNOWN:
            # A status can overtake the send's own bookkeeping: the provider reports
            # "delivered" before delivery has written the message id it got back. Look again
            # once before deciding the message is not ours.
            _log.info(
                "delivery status came before its message was recorded; will look again",
                provider_message_id=status.provider_message_id,
                status=status.status,
            )
            raise RetryLater("message not recorded yet", delay_ms=_LOOK_AGAIN_MS)
        DELIVERY_STATUSES.labels(status=status.status, outcome=outcome).inc()
        if outcome == "unknown":
            # Not an error: the channel may also carry messages sent from outside atende.
            _log.info(
                "delivery status for a message atende did not send",
                tenant_id=envelope.tenant_id,
                channel_id=status.channel_id,
                provider_message_id=status.provider_message_id,
                status=status.status,
            )

    return record


def _build(resources: Resources) -> Handler:
    if resources.postgres is None:
        raise ConfigurationError("the delivery-status consumer needs Postgres (DATABASE_URL)")
    return delivery_status_handler(OutboundStatuses(resources.postgres))


consumer = Consumer(
    name="delivery-status",
    streams=(DELIVERY_STATUS_UPDATED,),
    handler_factory=_build,
    accepts={DELIVERY_STATUS_UPDATED: frozenset({1})},
    tags=frozenset({"postgres"}),
)
