"""Batching decisions and ReportBatchItemFailures responses."""

from __future__ import annotations

import json

import pytest

from lambdaplane.esm.batching import Batch, failed_items, payload, record_bytes


def test_a_batch_is_due_when_full() -> None:
    batch = Batch(size=3, window=10)
    for n in range(3):
        assert not batch.due(0.0)
        batch.add(n, record_bytes(n), now=0.0)
    assert batch.full and batch.due(0.0)


def test_a_batch_is_due_at_the_end_of_its_window_from_its_first_record() -> None:
    batch = Batch(size=100, window=2)
    assert not batch.due(50.0)  # empty: never due, the window has not started
    assert batch.remaining(50.0) == 2
    batch.add("a", record_bytes("a"), now=100.0)
    batch.add("b", record_bytes("b"), now=101.5)
    assert batch.remaining(101.5) == pytest.approx(0.5)
    assert not batch.due(101.9)
    assert batch.due(102.0)


def test_no_window_means_due_at_once() -> None:
    batch = Batch(size=10, window=0)
    batch.add("a", record_bytes("a"), now=5.0)
    assert batch.due(5.0)


def test_the_payload_never_passes_the_limit() -> None:
    record = {"body": "x" * 100}
    encoded = record_bytes(record)
    limit = len(payload([encoded] * 3))
    batch = Batch(size=100, window=1, max_bytes=limit)
    for _ in range(3):
        assert batch.fits(encoded)
        batch.add(record, encoded, now=0.0)
    assert not batch.fits(encoded)
    assert batch.payload_bytes == len(batch.payload()) == limit
    assert json.loads(batch.payload()) == {"Records": [record] * 3}


def test_an_empty_batch_takes_any_record() -> None:
    batch = Batch(size=10, window=1, max_bytes=10)
    assert batch.fits(b"x" * 100)


IDS = ["m1", "m2", "m3"]


@pytest.mark.parametrize(
    "response",
    [
        b"",
        b"null",
        b'""',
        b"{}",
        b'{"batchItemFailures": []}',
        b'{"batchItemFailures": null}',
        b'{"statusCode": 200}',
    ],
)
def test_responses_that_succeed_the_whole_batch(response: bytes) -> None:
    assert failed_items(response, IDS) == set()


def test_the_items_named_fail() -> None:
    response = {"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}]}
    assert failed_items(json.dumps(response).encode(), IDS) == {"m2", "m3"}


@pytest.mark.parametrize(
    "response",
    [
        b"not json",
        b"[1, 2]",
        b"42",
        b'{"batchItemFailures": {"itemIdentifier": "m1"}}',
        b'{"batchItemFailures": [{"itemIdentifier": ""}]}',
        b'{"batchItemFailures": [{"itemIdentifier": null}]}',
        b'{"batchItemFailures": [{"foo": "m1"}]}',
        b'{"batchItemFailures": [{"foo": null}]}',
        b'{"batchItemFailures": [{"itemIdentifier": "not-in-the-batch"}]}',
        b'{"batchItemFailures": ["m1"]}',
    ],
)
def test_malformed_responses_fail_the_whole_batch(response: bytes) -> None:
    assert failed_items(response, IDS) is None
