"""Admitting and appending verified webhooks in batches shared by concurrent requests.

Each webhook that passed its checks is submitted here; concurrent submissions are flushed
together (``libs.group_commit``): one rate-limit hit per channel for all its webhooks in the
batch, then one pipeline of append scripts for every admitted event, then one log line per
channel naming every provider message id of the batch. Under load this turns two round trips
and a log line per webhook into two round trips and a line per batch.

Events refused because their partition is at capacity are counted
(``ingress_backlog_full_total``) and logged once per partition and batch.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from limits.aio.strategies import MovingWindowRateLimiter

from ingress.append import Appended, AppendRequest, AppendResult, BacklogFull, InboundAppender
from ingress.channel import IngressChannel
from libs.group_commit import GroupCommit
from libs.observability.metrics import INGRESS_BACKLOG_FULL

_MAX_BATCH = 256

_log = structlog.get_logger("atende.ingress")


@dataclass(frozen=True, slots=True)
class Submission:
    """One verified webhook: its channel and the events it carries."""

    channel: IngressChannel
    requests: list[AppendRequest]


# Per webhook: the append outcome of each of its events, or None when over the rate limit.
Outcome = list[AppendResult] | None


class WebhookIntake:
    """Rate-limits and appends webhooks, batching whatever arrives concurrently."""

    def __init__(
        self,
        appender: InboundAppender,
        limiter: MovingWindowRateLimiter,
        *,
        max_batch: int = _MAX_BATCH,
    ) -> None:
        self._appender = appender
        self._limiter = limiter
        self._commit: GroupCommit[Submission, Outcome] = GroupCommit(
            self._flush, max_batch=max_batch
        )

    async def submit(self, channel: IngressChannel, requests: list[AppendRequest]) -> Outcome:
        """Count the webhook against its channel's limit and append its events.

        Raises what Redis raised (the caller answers 503: nothing is known to be stored).
        """
        return (await self._commit.submit([Submission(channel, requests)]))[0]

    async def _flush(self, submissions: list[Submission]) -> list[Outcome]:
        admitted = await self._admit(submissions)
        requests = [
            request
            for submission, ok in zip(submissions, admitted, strict=True)
            if ok
            for request in submission.requests
        ]
        appended = await self._appender.append_many(requests)
        outcomes: list[Outcome] = []
        start = 0
        for submission, ok in zip(submissions, admitted, strict=True):
            if not ok:
                outcomes.append(None)
                continue
            end = start + len(submission.requests)
            outcomes.append(appended[start:end])
            start = end
        _log_appended(submissions, outcomes)
        _count_refused(appended)
        return outcomes

    async def _admit(self, submissions: list[Submission]) -> list[bool]:
        """Which submissions fit their channel's limit; earlier ones first."""
        by_channel: dict[str, list[int]] = {}
        for index, submission in enumerate(submissions):
            by_channel.setdefault(submission.channel.config.id, []).append(index)
        counts = await asyncio.gather(
            *(
                self._admit_channel(submissions[indexes[0]].channel, len(indexes))
                for indexes in by_channel.values()
            )
        )
        admitted = [False] * len(submissions)
        for indexes, count in zip(by_channel.values(), counts, strict=True):
            for index in indexes[:count]:
                admitted[index] = True
        return admitted

    async def _admit_channel(self, channel: IngressChannel, count: int) -> int:
        """How many of ``count`` webhooks of ``channel`` its window still takes."""
        limit, key = channel.rate_limit, channel.config.id
        if await self._limiter.hit(limit, key, cost=count):
            return count
        admitted = 0
        # Near the limit: take them one by one so the window fills exactly; bounded by count.
        while admitted < count and count > 1 and await self._limiter.hit(limit, key):
            admitted += 1
        return admitted


def _log_appended(submissions: list[Submission], outcomes: list[Outcome]) -> None:
    """One line per channel of the batch: what was appended, a duplicate, or refused."""
    by_channel: dict[str, list[tuple[Submission, list[AppendResult]]]] = {}
    for submission, outcome in zip(submissions, outcomes, strict=True):
        if outcome is not None:
            by_channel.setdefault(submission.channel.config.id, []).append((submission, outcome))
    for channel_id, stored in by_channel.items():
        requests = [request for submission, _ in stored for request in submission.requests]
        results = [result for _, outcome in stored for result in outcome]
        appended = [result for result in results if isinstance(result, Appended)]
        duplicates = sum(result.duplicate for result in appended)
        _log.info(
            "webhooks appended",
            tenant_id=stored[0][0].channel.tenant_id,
            channel=channel_id,
            webhooks=len(stored),
            events=len(appended) - duplicates,
            duplicates=duplicates,
            refused=len(results) - len(appended),
            # A release names a conversation, not a message.
            provider_message_ids=[
                request.envelope.payload.provider_message_id
                for request in requests
                if hasattr(request.envelope.payload, "provider_message_id")
            ],
            conversation_ids=sorted({request.envelope.conversation_id for request in requests}),
        )


def _count_refused(results: list[AppendResult]) -> None:
    """Count each event refused at capacity; one line per full partition of the batch."""
    full: dict[tuple[str, int], list[BacklogFull]] = {}
    for result in results:
        if isinstance(result, BacklogFull):
            full.setdefault((result.stream, result.partition), []).append(result)
    for (stream, partition), refused in full.items():
        INGRESS_BACKLOG_FULL.labels(stream, str(partition)).inc(len(refused))
        _log.warning(
            "backlog full, events refused",
            stream=stream,
            partition=partition,
            length=max(result.length for result in refused),
            capacity=refused[0].capacity,
            refused=len(refused),
        )
