"""Reserved concurrency rows in the store, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from lambdaplane.store import FunctionRepository, upgrade
from lambdaplane.store.concurrency import ConcurrencyRepository
from tests.integration.test_store import _fn

ACCOUNT, REGION = "000000000000", "us-east-1"


@pytest.fixture
def engine(bare_engine: sa.Engine) -> sa.Engine:
    upgrade(bare_engine)
    return bare_engine


def test_put_replace_sum_delete_and_scope(engine: sa.Engine) -> None:
    functions = FunctionRepository(engine, ACCOUNT, REGION)
    repo = ConcurrencyRepository(engine, ACCOUNT, REGION)
    other_region = ConcurrencyRepository(engine, ACCOUNT, "eu-west-1")
    for name in ("a", "b"):
        functions.create(_fn(name, state="Active"))
    seen: list[int] = []
    assert repo.put("a", 5, seen.append)
    assert repo.put("b", 7, seen.append)
    assert repo.put("a", 3, seen.append)  # replaced, not added
    assert seen == [0, 5, 7]  # what each check saw of the others
    assert repo.get("a") == 3 and repo.all() == {"a": 3, "b": 7}
    assert not repo.put("missing", 1, seen.append)
    assert other_region.all() == {} and other_region.get("a") is None

    def refuse(others: int) -> None:
        raise ValueError(others)

    with pytest.raises(ValueError):
        repo.put("a", 100, refuse)
    assert repo.get("a") == 3  # a refused write changes nothing
    repo.delete("a")
    repo.delete("a")  # no reservation: nothing to do
    assert repo.all() == {"b": 7}
    # Deleting the function deletes its reservation.
    assert functions.delete("b")
    assert repo.all() == {}
