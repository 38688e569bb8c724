"""A stream batch's failures, as Lambda handles them: retries, bisection, discards, and the
on-failure record a discarded batch leaves in its destination. Pure.

Lambda's rules, and how ``BatchRetry`` counts them:

- A function error retries the batch until ``MaximumRetryAttempts`` retries have failed
  (-1: until the records expire). The on-failure record's ``approximateInvokeCount`` is
  the number of invocations the records went through (retries + 1).
- ``BisectBatchOnFunctionError`` splits a failed batch in two and works through the
  halves, front first; a split is not a retry, so the halves keep the retries already
  spent and a lone bad record is isolated without spending any.
- With ``ReportBatchItemFailures`` the records before the lowest failed one are done; the
  rest is retried as a new batch with a fresh count when some progress was made, and as
  a retry of the same batch when the first record failed. A response that cannot be read
  fails the whole batch (a function error, bisected like one).
- Records older than ``MaximumRecordAgeInSeconds`` are discarded before any invocation
  (``RecordAgeExceeded``; such a record has no ``responseContext``).

AWS's recorded on-failure records (``esm_kinesis`` and ``esm_dynamodbstreams`` snapshots)
fix the shape and the counts above.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lambdaplane.esm.poller import InvokeOutcome
from lambdaplane.esm.streams import StreamRecord

RETRY_ATTEMPTS_EXHAUSTED = "RetryAttemptsExhausted"
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"


@dataclass
class Attempt:
    """Records to invoke together, with the retries and invocations they have had."""

    records: tuple[StreamRecord, ...]
    retries: int = 0
    invocations: int = 0


@dataclass(frozen=True)
class Discard:
    """Records given up on, and why (for the on-failure record)."""

    records: tuple[StreamRecord, ...]
    condition: str
    invocations: int


class BatchRetry:
    """One batch's way to done. Work on ``current`` until it is None; each method says what
    became of the current attempt and returns the records it finished or discarded."""

    def __init__(
        self,
        records: list[StreamRecord] | tuple[StreamRecord, ...],
        *,
        maximum_retry_attempts: int = -1,
        bisect: bool = False,
        maximum_record_age: int = -1,
    ) -> None:
        self._queue: deque[Attempt] = deque([Attempt(tuple(records))] if records else [])
        self._max_retries = maximum_retry_attempts
        self._bisect = bisect
        self._max_age = maximum_record_age

    @property
    def current(self) -> Attempt | None:
        return self._queue[0] if self._queue else None

    def expire(self, now: float) -> Discard | None:
        """Take the current attempt's records older than the maximum record age (a prefix:
        a shard's records arrive in order) off it, as a ``RecordAgeExceeded`` discard."""
        attempt = self._queue[0]
        if self._max_age < 0:
            return None
        count = 0
        for record in attempt.records:
            if now - record.arrival <= self._max_age:
                break
            count += 1
        if not count:
            return None
        self._replace(Attempt(attempt.records[count:], attempt.retries, attempt.invocations))
        return Discard(attempt.records[:count], RECORD_AGE_EXCEEDED, max(1, attempt.invocations))

    def invoked(self) -> None:
        """The current attempt is being invoked (counted for ``approximateInvokeCount``)."""
        self._queue[0].invocations += 1

    def succeeded(self) -> tuple[StreamRecord, ...]:
        """Every record of the current attempt is done."""
        return self._queue.popleft().records

    def partially_failed(
        self, first_failed: int
    ) -> tuple[tuple[StreamRecord, ...], Discard | None]:
        """The function reported records from index ``first_failed`` on as failed: the ones
        before are done; the rest is retried (or discarded, if out of retries)."""
        attempt = self._queue[0]
        if first_failed <= 0:
            return (), self._retry_or_discard()
        self._replace(Attempt(attempt.records[first_failed:]))
        return attempt.records[:first_failed], None

    def failed(self) -> Discard | None:
        """The function failed the current attempt: bisect it, retry it, or discard it."""
        attempt = self._queue[0]
        if self._bisect and len(attempt.records) > 1:
            half = len(attempt.records) // 2
            self._queue.popleft()
            self._queue.extendleft(
                [
                    Attempt(attempt.records[half:], attempt.retries, attempt.invocations),
                    Attempt(attempt.records[:half], attempt.retries, attempt.invocations),
                ]
            )
            return None
        return self._retry_or_discard()

    def _retry_or_discard(self) -> Discard | None:
        attempt = self._queue[0]
        if 0 <= self._max_retries <= attempt.retries:
            self._queue.popleft()
            return Discard(attempt.records, RETRY_ATTEMPTS_EXHAUSTED, attempt.invocations)
        attempt.retries += 1
        return None

    def _replace(self, attempt: Attempt) -> None:
        self._queue.popleft()
        if attempt.records:
            self._queue.appendleft(attempt)


def iso_millis(epoch: float) -> str:
    """``2019-11-14T00:38:06.021Z``."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_seconds(epoch: float) -> str:
    """``2019-11-14T00:38:06Z``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def on_failure_record(
    discard: Discard,
    *,
    batch_info_key: str,
    shard_id: str,
    stream_arn: str,
    function_arn: str,
    request_id: str,
    outcome: InvokeOutcome | None,
    now: float,
    arrival_text: Callable[[float], str] = iso_millis,
) -> dict[str, Any]:
    """The record Lambda sends to an OnFailure destination for a discarded stream batch.

    ``outcome`` is the last invocation's (its ``responseContext``); a ``RecordAgeExceeded``
    record has none, as on AWS.
    """
    first, last = discard.records[0], discard.records[-1]
    record: dict[str, Any] = {
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": discard.condition,
            "approximateInvokeCount": discard.invocations,
        }
    }
    if discard.condition != RECORD_AGE_EXCEEDED and outcome is not None:
        record["responseContext"] = {
            "statusCode": outcome.status,
            "executedVersion": outcome.executed_version,
            "functionError": outcome.function_error,
        }
    record["version"] = "1.0"
    record["timestamp"] = iso_millis(now)
    record[batch_info_key] = {
        "shardId": shard_id,
        "startSequenceNumber": first.sequence,
        "endSequenceNumber": last.sequence,
        "approximateArrivalOfFirstRecord": arrival_text(first.arrival),
        "approximateArrivalOfLastRecord": arrival_text(last.arrival),
        "batchSize": len(discard.records),
        "streamArn": stream_arn,
    }
    return record
