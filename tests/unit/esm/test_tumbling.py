"""Tumbling windows: bounds, the event's members, the state an answer must carry."""

from __future__ import annotations

import json

from lambdaplane.esm.tumbling import (
    MAX_STATE_BYTES,
    Window,
    fields_reserve,
    response_state,
    window_payload,
    window_start,
)


def test_windows_are_fixed_slices_of_time() -> None:
    assert window_start(1607497475.0, 120) == 1607497440.0
    assert window_start(1607497440.0, 120) == 1607497440.0
    assert window_start(1607497559.999, 120) == 1607497440.0
    assert window_start(1607497560.0, 120) == 1607497560.0


def test_event_members_follow_aws_example() -> None:
    # AWS's KinesisTimeWindowEvent example: window 07:04-07:06, state, shard, flags.
    window = Window(window_start(1607497475.0, 120), 120, {"1": 282, "2": 715})
    fields = window.fields(
        shard_id="shardId-000000000006",
        stream_arn="arn:aws:kinesis:us-east-1:123456789012:stream/lambda-stream",
        final=False,
    )
    assert fields == {
        "window": {"start": "2020-12-09T07:04:00Z", "end": "2020-12-09T07:06:00Z"},
        "state": {"1": 282, "2": 715},
        "shardId": "shardId-000000000006",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/lambda-stream",
        "isFinalInvokeForWindow": False,
        "isWindowTerminatedEarly": False,
    }
    body = json.loads(window_payload([b'{"a":1}', b'{"b":2}'], fields))
    assert list(body) == ["Records", *fields]
    assert body["Records"] == [{"a": 1}, {"b": 2}]
    assert json.loads(window_payload([], fields))["Records"] == []
    assert fields_reserve(window, "shardId-000000000006", "arn") > 100


def test_answer_must_carry_a_state_object() -> None:
    assert response_state(b'{"state": {"n": 1}, "batchItemFailures": []}') == {"n": 1}
    assert response_state(b'{"state": null}') == {}
    assert response_state(b"{}") is None
    assert response_state(b"null") is None
    assert response_state(b"") is None
    assert response_state(b'{"state": [1]}') is None
    assert response_state(b"not json") is None


def test_state_past_one_megabyte_ends_the_window_early() -> None:
    window = Window(0.0, 60)
    window.update({"small": 1})
    assert not window.terminate_early
    window.update({"big": "x" * MAX_STATE_BYTES})
    assert window.terminate_early


def test_state_survives_a_restart_unless_the_window_size_changed() -> None:
    window = Window(1200.0, 60, {"n": 3})
    restored = Window.decode(window.encode(), 60)
    assert restored is not None and (restored.start, restored.state) == (1200.0, {"n": 3})
    assert Window.decode(window.encode(), 900) is None  # 1200 is no 900-second boundary
    assert Window.decode("", 60) is None
    assert Window.decode("garbage", 60) is None
