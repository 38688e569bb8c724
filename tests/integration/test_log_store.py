"""The log catalog on SQLite and on a real PostgreSQL (127.0.0.1:5432, trust auth; each
run uses a database of its own, dropped afterwards), as in test_store.py: groups and
streams created by the sink's batches, stream summaries, paging, retention."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from lambdaplane.store import upgrade
from lambdaplane.store.log_groups import EventKey, EventRange, LogGroupRepository
from lambdaplane.store.logs import LogEvent, LogRepository
from lambdaplane.store.migrate import MIGRATIONS_DIR

GROUP = "/aws/lambda/fn"


@pytest.fixture
def engine(bare_engine: sa.Engine) -> sa.Engine:
    upgrade(bare_engine)
    return bare_engine


def _events(stream: str, *stamps: int, group: str = GROUP) -> list[LogEvent]:
    return [LogEvent(group, stream, ts, f"line at {ts}") for ts in stamps]


def test_batches_create_groups_and_keep_stream_summaries(engine: sa.Engine) -> None:
    logs, catalog = LogRepository(engine), LogGroupRepository(engine)
    logs.append(_events("s1", 200, 100, 300) + _events("s2", 50), ingestion_time=1000)
    group = catalog.group(GROUP)
    assert group is not None
    assert (group.created_at, group.retention_days, group.log_group_class) == (
        1000,
        None,
        "STANDARD",
    )
    assert group.stored_bytes == len("line at 200") * 3 + len("line at 50")
    logs.append(_events("s1", 150, 400), ingestion_time=2000)
    s1 = catalog.stream(GROUP, "s1")
    assert s1 is not None
    assert (s1.created_at, s1.first_event, s1.last_event, s1.last_ingestion) == (
        1000,
        100,
        400,
        2000,
    )
    assert [s.name for s in catalog.streams(GROUP)] == ["s1", "s2"]
    assert [s.name for s in catalog.streams(GROUP, by_last_event=True)] == ["s2", "s1"]
    assert [s.name for s in catalog.streams(GROUP, by_last_event=True, descending=True)] == [
        "s1",
        "s2",
    ]
    assert [s.name for s in catalog.streams(GROUP, prefix="s2")] == ["s2"]
    assert [s.name for s in catalog.streams(GROUP, after=(0, "s1"))] == ["s2"]
    assert [s.name for s in catalog.streams(GROUP, by_last_event=True, after=(50, "s2"))] == ["s1"]

    # A deleted group comes back with the next event written to it, as on AWS.
    assert catalog.delete_group(GROUP) and not catalog.delete_group(GROUP)
    assert catalog.group(GROUP) is None and catalog.stream(GROUP, "s1") is None
    logs.append(_events("s1", 500), ingestion_time=3000)
    again = catalog.group(GROUP)
    assert again is not None and again.created_at == 3000
    assert [e.message for e in logs.stream(GROUP, "s1")] == ["line at 500"]


def test_groups_by_prefix_pattern_and_page(engine: sa.Engine) -> None:
    catalog = LogGroupRepository(engine)
    for name in ("/aws/lambda/b", "/aws/lambda/a", "/app/Web", "/app/worker"):
        assert catalog.create_group(name, 1, None)
    assert not catalog.create_group("/app/Web", 2, None)
    assert catalog.create_group("/cold", 1, "INFREQUENT_ACCESS")
    assert [g.name for g in catalog.groups(prefix="/aws/")] == ["/aws/lambda/a", "/aws/lambda/b"]
    assert [g.name for g in catalog.groups(prefix="/AWS/")] == []  # prefixes are exact
    assert [g.name for g in catalog.groups(contains="WEB")] == ["/app/Web"]
    assert [g.name for g in catalog.groups(log_group_class="INFREQUENT_ACCESS")] == ["/cold"]
    assert [g.name for g in catalog.groups(names=["/cold", "/nope"])] == ["/cold"]
    first = catalog.groups(limit=2)
    rest = catalog.groups(after=first[-1].name)
    assert len(first) == 2 and len(rest) == 3 and first[-1].name < rest[0].name
    assert catalog.set_retention("/cold", 7) and not catalog.set_retention("/nope", 7)
    assert [(g.name, g.retention_days) for g in catalog.with_retention()] == [("/cold", 7)]


def test_event_reads_page_by_position_and_respect_time_bounds(engine: sa.Engine) -> None:
    logs, catalog = LogRepository(engine), LogGroupRepository(engine)
    logs.append(_events("s1", 10, 20, 20, 30) + _events("s2", 15, 25), ingestion_time=99)
    everything = EventRange()
    s1 = catalog.stream_events(GROUP, "s1", everything)
    assert [e.key.timestamp for e in s1] == [10, 20, 20, 30]
    assert [e.ingestion_time for e in s1] == [99] * 4
    assert [
        e.key.timestamp for e in catalog.stream_events(GROUP, "s1", everything, after=s1[1].key)
    ] == [20, 30]
    newest = catalog.stream_events(
        GROUP, "s1", everything, before=s1[3].key, newest_first=True, limit=2
    )
    assert [e.key for e in newest] == [s1[2].key, s1[1].key]
    assert [
        e.key.timestamp for e in catalog.stream_events(GROUP, "s1", EventRange(start=20, end=30))
    ] == [20, 20]
    assert [
        e.key.timestamp for e in catalog.stream_events(GROUP, "s1", EventRange(not_before=25))
    ] == [30]

    merged = catalog.group_events(GROUP, everything)
    assert [(e.log_stream, e.key.timestamp) for e in merged] == [
        ("s1", 10), ("s2", 15), ("s1", 20), ("s1", 20), ("s2", 25), ("s1", 30),
    ]  # fmt: skip
    assert [e.key.timestamp for e in catalog.group_events(GROUP, everything, streams=["s2"])] == [
        15,
        25,
    ]
    assert [
        e.key.timestamp for e in catalog.group_events(GROUP, everything, stream_prefix="s2")
    ] == [15, 25]
    assert catalog.group_events(GROUP, everything, after=merged[2].key, limit=2) == merged[3:5]
    assert catalog.group_events(GROUP, everything, after=EventKey(30, 10**9)) == []


def test_expire_and_delete_stream_keep_stored_bytes(engine: sa.Engine) -> None:
    logs, catalog = LogRepository(engine), LogGroupRepository(engine)
    logs.append(_events("s1", 10, 20, 30) + _events("s2", 5), ingestion_time=99)
    size = len("line at 10")
    assert catalog.expire(GROUP, before=25) == 3  # 5, 10 and 20
    assert catalog.expire(GROUP, before=25) == 0
    group = catalog.group(GROUP)
    assert group is not None and group.stored_bytes == size
    assert [e.key.timestamp for e in catalog.group_events(GROUP, EventRange())] == [30]
    assert catalog.create_stream(GROUP, "empty", 7) and not catalog.create_stream(GROUP, "empty", 8)
    empty = catalog.stream(GROUP, "empty")
    assert empty is not None and empty.first_event is None and empty.created_at == 7
    assert catalog.delete_stream(GROUP, "s1") and not catalog.delete_stream(GROUP, "s1")
    group = catalog.group(GROUP)
    assert group is not None and group.stored_bytes == 0
    assert catalog.group_events(GROUP, EventRange()) == []


def test_migration_backfills_groups_and_streams_of_existing_events(bare_engine: sa.Engine) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with bare_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
    with bare_engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO log_events (log_group, log_stream, timestamp, ingestion_time, message) "
                "VALUES (:g, :s, :t, :i, :m)"
            ),
            [
                {"g": GROUP, "s": "a", "t": 10, "i": 100, "m": "one"},
                {"g": GROUP, "s": "a", "t": 20, "i": 200, "m": "three"},
                {"g": GROUP, "s": "b", "t": 5, "i": 50, "m": "x"},
            ],
        )
    upgrade(bare_engine)
    catalog = LogGroupRepository(bare_engine)
    group = catalog.group(GROUP)
    assert group is not None and (group.created_at, group.stored_bytes) == (50, 9)
    a = catalog.stream(GROUP, "a")
    assert a is not None and (a.created_at, a.first_event, a.last_event, a.last_ingestion) == (
        100,
        10,
        20,
        200,
    )


def test_a_large_batch_is_stored_whole_and_in_order(engine: sa.Engine) -> None:
    """Batches go in as several multi-row INSERTs; none of the lines may be lost."""
    logs = LogRepository(engine)
    events = [LogEvent(GROUP, "big", 1_000 + i, f"line {i}") for i in range(1_000)]
    logs.append(events, 5_000)
    assert logs.stream(GROUP, "big") == events
