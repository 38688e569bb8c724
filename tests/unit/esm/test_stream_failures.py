"""Retries, bisection and discards of a stream batch, counted as AWS counts them, and the
on-failure record (compared with the records in ``esm_kinesis``/``esm_dynamodbstreams``)."""

from __future__ import annotations

import json
from typing import Any

from lambdaplane.esm.batching import record_bytes
from lambdaplane.esm.poller import InvokeOutcome
from lambdaplane.esm.stream_failures import (
    RECORD_AGE_EXCEEDED,
    RETRY_ATTEMPTS_EXHAUSTED,
    BatchRetry,
    Discard,
    iso_millis,
    iso_seconds,
    on_failure_record,
)
from lambdaplane.esm.streams import StreamRecord
from tests.integration.helpers import _reference_dir


def recorded(source: str, test: str, step: str) -> Any:
    """A value recorded against AWS in ``esm_<source>.snapshot.json``."""
    data = json.loads((_reference_dir() / f"esm_{source}.snapshot.json").read_text())
    prefix = "tests/aws/services/lambda_/event_source_mapping/test_lambda_integration_"
    return data[f"{prefix}{source}.py::{test}"]["recorded-content"][step]


def recs(*seqs: int, arrival: float = 1000.0) -> list[StreamRecord]:
    out = []
    for seq in seqs:
        event = {"sequence": str(seq)}
        out.append(StreamRecord(str(seq), "k", arrival + seq, event, record_bytes(event)))
    return out


def seqs(records: Any) -> list[int]:
    return [int(r.sequence) for r in records]


def fail_until_discarded(retry: BatchRetry) -> Discard:
    while True:
        retry.invoked()
        discard = retry.failed()
        if discard is not None:
            return discard


def test_retries_then_discards_with_aws_invoke_count() -> None:
    # MaximumRetryAttempts 1 -> approximateInvokeCount 2 (recorded on AWS).
    retry = BatchRetry(recs(1, 2, 3), maximum_retry_attempts=1)
    discard = fail_until_discarded(retry)
    assert (seqs(discard.records), discard.condition, discard.invocations) == (
        [1, 2, 3],
        RETRY_ATTEMPTS_EXHAUSTED,
        2,
    )
    assert retry.current is None


def test_zero_retries_discards_after_one_invocation() -> None:
    retry = BatchRetry(recs(1), maximum_retry_attempts=0)
    assert fail_until_discarded(retry).invocations == 1


def test_infinite_retries_never_discard() -> None:
    retry = BatchRetry(recs(1), maximum_retry_attempts=-1)
    for _ in range(1000):
        retry.invoked()
        assert retry.failed() is None
    assert retry.current is not None and retry.current.invocations == 1000


def test_success_finishes_the_batch() -> None:
    retry = BatchRetry(recs(1, 2))
    retry.invoked()
    assert seqs(retry.succeeded()) == [1, 2]
    assert retry.current is None


def test_bisect_isolates_a_bad_record_without_spending_retries() -> None:
    bad = 3
    retry = BatchRetry(recs(1, 2, 3, 4, 5), maximum_retry_attempts=0, bisect=True)
    done: list[int] = []
    discarded: list[Discard] = []
    invoked: list[list[int]] = []
    while (attempt := retry.current) is not None:
        invoked.append(seqs(attempt.records))
        retry.invoked()
        if bad in seqs(attempt.records):
            discard = retry.failed()
            if discard:
                discarded.append(discard)
        else:
            done += seqs(retry.succeeded())
    assert invoked == [[1, 2, 3, 4, 5], [1, 2], [3, 4, 5], [3], [4, 5]]
    assert done == [1, 2, 4, 5]  # in order, front half first
    assert [(seqs(d.records), d.condition, d.invocations) for d in discarded] == [
        ([3], RETRY_ATTEMPTS_EXHAUSTED, 3)  # invocations the record went through
    ]


def test_bisected_halves_keep_the_retries_spent() -> None:
    retry = BatchRetry(recs(1, 2), maximum_retry_attempts=2, bisect=True)
    retry.invoked()
    assert retry.failed() is None  # split
    assert retry.current is not None and seqs(retry.current.records) == [1]
    discard = fail_until_discarded(retry)
    assert seqs(discard.records) == [1]
    assert discard.invocations == 4  # the whole batch once, then the lone record 1 + 2 retries
    assert retry.current is not None and seqs(retry.current.records) == [2]


def test_partial_failure_with_progress_retries_the_rest_afresh() -> None:
    # AWS (recorded): batch [3,4,5] reports 5 failed; [5] then gets 1 + MaximumRetryAttempts
    # invocations and the on-failure record says approximateInvokeCount 4 for 3 retries.
    retry = BatchRetry(recs(3, 4, 5), maximum_retry_attempts=3)
    retry.invoked()
    done, discard = retry.partially_failed(2)
    assert (seqs(done), discard) == ([3, 4], None)
    invocations = 0
    while True:
        retry.invoked()
        invocations += 1
        done, discard = retry.partially_failed(0)
        assert not done
        if discard is not None:
            break
    assert invocations == 4
    assert (seqs(discard.records), discard.invocations) == ([5], 4)


def test_record_age_discards_the_expired_prefix() -> None:
    retry = BatchRetry(recs(1, 2, 3, arrival=1000.0), maximum_record_age=60)
    assert retry.expire(now=1060.5) is None  # record 1 arrived at 1001: 59.5 s old
    expired = retry.expire(now=1061.5)  # 60.5 s old; record 2 is 59.5 s old
    assert expired is not None
    assert (seqs(expired.records), expired.condition, expired.invocations) == (
        [1],
        RECORD_AGE_EXCEEDED,
        1,
    )
    assert retry.current is not None and seqs(retry.current.records) == [2, 3]
    assert BatchRetry(recs(1), maximum_record_age=-1).expire(now=10**10) is None


def test_expired_records_keep_the_invocation_count() -> None:
    retry = BatchRetry(recs(1, 2), maximum_record_age=60)
    for _ in range(8):
        retry.invoked()
        assert retry.failed() is None
    expired = retry.expire(now=10_000.0)
    assert expired is not None and expired.invocations == 8
    assert retry.current is None


def outcome(error: str | None = "Unhandled") -> InvokeOutcome:
    return InvokeOutcome(200, b"{}", error, "$LATEST", "11111111-2222-3333-4444-555555555555")


def test_on_failure_record_matches_kinesis_recording() -> None:
    expected = recorded(
        "kinesis",
        "TestKinesisSource::test_kinesis_event_source_mapping_with_on_failure_destination_config",
        "sqs_payload",
    )["Messages"][0]["Body"]
    record = on_failure_record(
        Discard(tuple(recs(7)), RETRY_ATTEMPTS_EXHAUSTED, 2),
        batch_info_key="KinesisBatchInfo",
        shard_id="shardId-000000000000",
        stream_arn="arn:aws:kinesis:us-east-1:000000000000:stream/s",
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:f",
        request_id="req",
        outcome=outcome(),
        now=1657720081.0,
    )
    assert list(record) == list(expected)
    assert list(record["requestContext"]) == list(expected["requestContext"])
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responseContext"] == expected["responseContext"]
    assert list(record["KinesisBatchInfo"]) == list(expected["KinesisBatchInfo"])
    info = record["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        "7",
        "7",
        1,
    )
    assert info["approximateArrivalOfFirstRecord"] == "1970-01-01T00:16:47.000Z"
    assert record["timestamp"] == "2022-07-13T13:48:01.000Z"


def test_record_age_exceeded_has_no_response_context() -> None:
    expected = recorded(
        "kinesis",
        "TestKinesisSource::test_kinesis_maximum_record_age_exceeded[expire-while-retrying]",
        "record_age_exceeded_payload",
    )["Messages"][0]["Body"]
    record = on_failure_record(
        Discard(tuple(recs(1, 2)), RECORD_AGE_EXCEEDED, 8),
        batch_info_key="KinesisBatchInfo",
        shard_id="shardId-000000000000",
        stream_arn="arn:aws:kinesis:us-east-1:000000000000:stream/s",
        function_arn="f",
        request_id="req",
        outcome=outcome(),
        now=0.0,
    )
    assert list(record) == list(expected)
    assert record["KinesisBatchInfo"]["batchSize"] == 2


def test_on_failure_record_matches_dynamodb_recording() -> None:
    expected = recorded(
        "dynamodbstreams",
        "TestDynamoDBEventSourceMapping::test_dynamodb_report_batch_item_failures",
        "destination_queue_messages",
    )["Messages"][0]["Body"]
    record = on_failure_record(
        Discard(tuple(recs(6)), RETRY_ATTEMPTS_EXHAUSTED, 4),
        batch_info_key="DDBStreamBatchInfo",
        shard_id="shardId-00000001-abc",
        stream_arn="arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/2024",
        function_arn="f",
        request_id="req",
        outcome=outcome(None),  # a partial failure: the function itself succeeded
        now=0.0,
        arrival_text=iso_seconds,
    )
    assert list(record) == list(expected)
    assert record["responseContext"] == expected["responseContext"]  # functionError null
    assert list(record["DDBStreamBatchInfo"]) == list(expected["DDBStreamBatchInfo"])
    assert record["DDBStreamBatchInfo"]["approximateArrivalOfFirstRecord"] == (
        "1970-01-01T00:16:46Z"
    )


def test_timestamps_format_like_aws() -> None:
    assert iso_millis(1573691886.021) == "2019-11-14T00:38:06.021Z"
    assert iso_seconds(1573691886.9) == "2019-11-14T00:38:06Z"
