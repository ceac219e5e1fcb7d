"""The Redis Streams runtime: publisher, declarative consumers and the worker that runs them."""

from libs.streams.config import RunnerConfig
from libs.streams.consumer import Consumer, Handler, HandlerFactory
from libs.streams.publisher import Publisher
from libs.streams.received import Received
from libs.streams.retry import ExponentialBackoff, RetryPolicy
from libs.streams.runner import ConsumerRunner

__all__ = [
    "Consumer",
    "ConsumerRunner",
    "ExponentialBackoff",
    "Handler",
    "HandlerFactory",
    "Publisher",
    "Received",
    "RetryPolicy",
    "RunnerConfig",
]
