"""The root exception of atende's infrastructure and the control-flow signals of handlers."""

from __future__ import annotations


class AtendeError(Exception):
    """Root of every error raised by atende's own code."""


class ConfigurationError(AtendeError):
    """Settings or a config file are invalid; the message names what and where."""


class StaleFencingToken(AtendeError):
    """A side effect was attempted with a token older than the conversation's current turn."""


class LeaseNotHeld(AtendeError):
    """The caller tried to extend or release a lease it does not hold."""


class CircuitOpen(AtendeError):
    """A circuit breaker is open: the protected dependency is failing, calls are refused."""


class EmbeddedServerError(AtendeError):
    """An embedded development server could not be started or stopped."""


class MigrationError(AtendeError):
    """A migration could not be applied, or an applied one was changed afterwards."""


# Control-flow signals: raised by handlers to steer the runtime. They are not failures and are
# never counted, logged or dead-lettered as such.


class HandlerSignal(Exception):
    """Base of the signals a handler may raise to steer what happens to its entry."""


class RetryLater(HandlerSignal):
    """Keep the entry pending and deliver it again after ``delay_ms`` (counts as a delivery)."""

    def __init__(self, reason: str, delay_ms: int | None = None) -> None:
        super().__init__(reason)
        self.delay_ms = delay_ms


class Drop(HandlerSignal):
    """Acknowledge the entry without effect (e.g. superseded or irrelevant); logged at info."""


class Reject(HandlerSignal):
    """Dead-letter the entry at once: retrying it cannot succeed (e.g. a poison payload)."""
