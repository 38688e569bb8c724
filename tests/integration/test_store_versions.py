"""Versions and aliases in the store, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import sqlalchemy as sa

from lambdaplane.store import (
    AliasRepository,
    FunctionRepository,
    StoredAlias,
    StoredFunction,
    upgrade,
)
from lambdaplane.store.aliases import AliasExists
from tests.integration.test_store import _fn


@pytest.fixture
def engine(bare_engine: sa.Engine) -> sa.Engine:
    return bare_engine


def _version(latest: StoredFunction, number: int) -> StoredFunction:
    return dataclasses.replace(
        latest,
        version=str(number),
        revision_id=f"v{number}",
        config={"Version": str(number)},
    )


def test_publish_numbers_versions_and_swaps_latest(engine: sa.Engine) -> None:
    upgrade(engine)
    repo = FunctionRepository(engine, "000000000000", "us-east-1")
    latest = _fn("f", revision="r1", state="Active")
    repo.create(latest)
    moved = dataclasses.replace(latest, revision_id="r2")
    first = repo.publish(moved, "r1", lambda n: _version(moved, n))
    assert first is not None and first.version == "1"
    # A stale revision publishes nothing and leaves $LATEST alone.
    assert repo.publish(latest, "r1", lambda n: _version(latest, n)) is None
    assert repo.get("f") == moved
    again = dataclasses.replace(moved, revision_id="r3")
    second = repo.publish(again, "r2", lambda n: _version(again, n))
    assert second is not None and second.version == "2"
    assert [v.version for v in repo.versions("f")] == ["$LATEST", "1", "2"]
    assert [v.version for v in repo.versions("f", 1, 1)] == ["1"]
    assert repo.delete_version("f", "2")
    assert not repo.delete_version("f", "2")
    last = repo.last_published("f")
    assert last is not None and last.version == "1"
    # Deleted numbers are not reused.
    third = repo.publish(
        dataclasses.replace(again, revision_id="r4"), "r3", lambda n: _version(again, n)
    )
    assert third is not None and third.version == "3"


def test_concurrent_publishers_get_distinct_numbers(engine: sa.Engine) -> None:
    upgrade(engine)
    repo = FunctionRepository(engine, "000000000000", "us-east-1")
    repo.create(_fn("f", revision="r0", state="Active"))
    results: list[str] = []
    lock = threading.Lock()

    def publisher(i: int) -> None:
        for attempt in range(50):
            current = repo.get("f")
            assert current is not None
            moved = dataclasses.replace(current, revision_id=f"t{i}-{attempt}")
            made = repo.publish(moved, current.revision_id, lambda n, m=moved: _version(m, n))
            if made is not None:
                with lock:
                    results.append(made.version)
                return

    threads = [threading.Thread(target=publisher, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=int) == ["1", "2", "3", "4"]


def test_aliases_crud_and_cascade(engine: sa.Engine) -> None:
    upgrade(engine)
    functions = FunctionRepository(engine, "000000000000", "us-east-1")
    aliases = AliasRepository(engine, "000000000000", "us-east-1")
    functions.create(_fn("f"))
    live = StoredAlias("f", "live", "1", "", "a1", {"2": 0.25})
    aliases.create(live)
    try:
        aliases.create(live)
    except AliasExists:
        pass
    else:
        raise AssertionError("duplicate alias accepted")
    aliases.create(StoredAlias("f", "beta", "2", "d", "b1"))
    assert aliases.get("f", "live") == live
    assert [a.name for a in aliases.of_function("f")] == ["beta", "live"]
    assert [a.name for a in aliases.of_function("f", "1")] == ["live"]
    assert aliases.referencing("f", "2") == ["beta", "live"]
    moved = dataclasses.replace(live, function_version="2", routing={}, revision_id="a2")
    assert not aliases.replace(moved, "stale")
    assert aliases.replace(moved, "a1")
    assert aliases.get("f", "live") == moved
    assert aliases.delete("f", "beta") and not aliases.delete("f", "beta")
    functions.delete("f")
    assert aliases.of_function("f") == []
