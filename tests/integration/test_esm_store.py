"""Event source mappings and checkpoints on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from lambdaplane.store import upgrade
from lambdaplane.store.event_source_mappings import (
    EventSourceMappingRepository,
    StoredMapping,
    new_revision,
)

QUEUE = "arn:aws:sqs:us-east-1:000000000000:orders"


@pytest.fixture
def engine(bare_engine: sa.Engine) -> sa.Engine:
    return bare_engine


def _mapping(function: str, created_at: float, source: str = QUEUE) -> StoredMapping:
    return StoredMapping(
        uuid=str(uuid.uuid4()),
        function_name=function,
        qualifier=None,
        source_kind="sqs",
        source_key=source,
        config={"EventSourceArn": source, "BatchSize": 10, "FunctionResponseTypes": []},
        enabled=True,
        state="Creating",
        state_reason="USER_INITIATED",
        last_processing_result="No records processed",
        last_modified=created_at,
        created_at=created_at,
        revision=new_revision(),
    )


def test_mappings_and_checkpoints(engine: sa.Engine) -> None:
    upgrade(engine)
    repo = EventSourceMappingRepository(engine, "000000000000", "us-east-1")
    elsewhere = EventSourceMappingRepository(engine, "000000000000", "eu-west-1")
    first, second = _mapping("fn", 1.0), _mapping("fn", 2.0, QUEUE + "-2")
    repo.insert(second)
    repo.insert(first)
    assert repo.get(first.uuid) == first
    assert [m.uuid for m in repo.all()] == [first.uuid, second.uuid]
    assert elsewhere.all() == [] and elsewhere.get(first.uuid) is None
    assert [m.uuid for m in repo.find(function_name="fn", source_key=QUEUE)] == [first.uuid]

    enabled = first.with_changes(state="Enabled", revision=new_revision())
    assert repo.replace(enabled, first.revision)
    assert not repo.replace(enabled.with_changes(state="Disabled"), first.revision)  # stale
    repo.set_last_processing_result(first.uuid, "OK")
    stored = repo.get(first.uuid)
    assert stored is not None and stored.state == "Enabled"
    assert stored.last_processing_result == "OK" and stored.revision == enabled.revision

    repo.put_checkpoints(first.uuid, {"shardId-000": "49590", "shardId-001": "1"}, 5.0)
    repo.put_checkpoints(first.uuid, {"shardId-000": "49600"}, 6.0)
    assert repo.checkpoint(first.uuid, "shardId-000") == "49600"
    assert repo.checkpoints(first.uuid) == {"shardId-000": "49600", "shardId-001": "1"}
    repo.delete_checkpoint(first.uuid, "shardId-001")
    assert repo.checkpoints(first.uuid) == {"shardId-000": "49600"}

    assert not repo.delete(first.uuid, expected_revision="stale")
    assert repo.delete(first.uuid, expected_revision=enabled.revision)
    assert repo.get(first.uuid) is None and repo.checkpoints(first.uuid) == {}
    assert not repo.delete(first.uuid)
