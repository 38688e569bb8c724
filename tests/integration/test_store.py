"""The store on SQLite and on a real PostgreSQL: same migrations, same repositories.

PostgreSQL runs on 127.0.0.1:5432 on every machine here (trust auth); each run uses a
database of its own and drops it afterwards.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from lambdaplane.store import (
    FunctionRepository,
    StoredFunction,
    TagRepository,
    upgrade,
)
from lambdaplane.store.functions import AlreadyExists


@pytest.fixture
def engine(bare_engine: sa.Engine) -> sa.Engine:
    return bare_engine


def _fn(name: str, revision: str = "r1", state: str = "Pending", size: int = 10) -> StoredFunction:
    return StoredFunction(
        name=name,
        version="$LATEST",
        revision_id=revision,
        state=state,
        last_update_status=None,
        code_sha256="ab" * 32,
        code_size=size,
        config={"FunctionName": name, "Environment": {"Variables": {"K": "v"}}, "State": state},
    )


def test_migrations_are_idempotent(engine: sa.Engine) -> None:
    upgrade(engine)
    upgrade(engine)
    tables = set(sa.inspect(engine).get_table_names())
    assert {"functions", "function_versions", "resource_tags", "alembic_version"} <= tables


def test_function_repository(engine: sa.Engine) -> None:
    upgrade(engine)
    repo = FunctionRepository(engine, "000000000000", "us-east-1")
    other_region = FunctionRepository(engine, "000000000000", "eu-west-1")
    for name in ("b-fn", "a-fn", "c-fn"):
        repo.create(_fn(name))
    with pytest.raises(AlreadyExists):
        repo.create(_fn("a-fn"))
    other_region.create(_fn("a-fn"))  # Same name, other region: a different function.

    got = repo.get("a-fn")
    assert got is not None and got.config["Environment"] == {"Variables": {"K": "v"}}
    assert repo.get("missing") is None
    assert [f.name for f in repo.page(None, 2)] == ["a-fn", "b-fn"]
    assert [f.name for f in repo.page("b-fn", 10)] == ["c-fn"]

    assert {f.name for f in repo.in_transition()} == {"a-fn", "b-fn", "c-fn"}
    assert repo.replace(_fn("a-fn", revision="r2", state="Active"), expected_revision="r1")
    assert not repo.replace(_fn("a-fn", revision="r3", state="Active"), expected_revision="r1")
    current = repo.get("a-fn")
    assert current is not None and current.revision_id == "r2" and current.state == "Active"

    assert repo.usage() == (3, 30)
    assert repo.delete("a-fn") and not repo.delete("a-fn")
    assert repo.usage() == (2, 20)
    assert other_region.get("a-fn") is not None


def test_tag_repository(engine: sa.Engine) -> None:
    upgrade(engine)
    tags = TagRepository(engine)
    arn = "arn:aws:lambda:us-east-1:000000000000:function:f"
    tags.put(arn, {"a": "1", "b": "2"})
    tags.put(arn, {"b": "3"})
    assert tags.get(arn) == {"a": "1", "b": "3"}
    tags.remove(arn, ["a", "missing"])
    assert tags.get(arn) == {"b": "3"}
    tags.drop(arn)
    assert tags.get(arn) == {}


def test_log_repository(engine: sa.Engine) -> None:
    from lambdaplane.store.logs import LogEvent, LogRepository

    upgrade(engine)
    logs = LogRepository(engine)
    group, stream = "/aws/lambda/f", "2026/11/26/[$LATEST]abc"
    logs.append(
        [LogEvent(group, stream, 1000 + i, f"line {i} with 'quotes' and %s") for i in range(5)],
        2000,
    )
    logs.append([LogEvent(group, "other", 5, "x")], 2001)
    assert [e.message for e in logs.stream(group, stream)] == [
        f"line {i} with 'quotes' and %s" for i in range(5)
    ]
    assert logs.streams(group) == [stream, "other"]
