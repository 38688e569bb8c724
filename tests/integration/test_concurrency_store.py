"""Reserved concurrency rows in the store, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from lambdaplane.store import FunctionRepository, upgrade
from lambdaplane.store.aliases import AliasRepository
from lambdaplane.store.concurrency import ConcurrencyRepository
from lambdaplane.store.provisioned import (
    Billing,
    ProvisionedConfigRepository,
    StoredProvisionedConfig,
)
from lambdaplane.store.usage import UsageRepository
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


def test_provisioned_billing_periods_follow_the_configs(engine: sa.Engine) -> None:
    """Each Put opens a billing period and ends the one it replaces; deleting the config,
    the alias, the version or the function ends it; a bill outlives the function."""
    functions = FunctionRepository(engine, ACCOUNT, REGION)
    aliases = AliasRepository(engine, ACCOUNT, REGION)
    configs = ProvisionedConfigRepository(engine, ACCOUNT, REGION)
    usage = UsageRepository(engine, ACCOUNT, REGION)
    functions.create(_fn("a", state="Active"))
    small, arm = Billing(128, "x86_64"), Billing(1024, "arm64")

    def put(qualifier: str, requested: int, at: float, billing: Billing = small) -> None:
        assert configs.put(StoredProvisionedConfig("a", qualifier, requested, at), billing)

    def periods() -> list[tuple[str, int, int, str, int, int | None]]:
        return [
            (p.qualifier, p.concurrency, p.memory_mb, p.architecture, p.start_ms, p.end_ms)
            for p in usage.provisioned_periods(0, 2**62)
        ]

    put("1", 2, 1.0)
    put("1", 3, 2.0)
    put("2", 1, 3.0, arm)
    put("live", 4, 4.0)
    put("old", 1, 5.0)
    assert periods() == [
        ("1", 2, 128, "x86_64", 1000, 2000),
        ("1", 3, 128, "x86_64", 2000, None),
        ("2", 1, 1024, "arm64", 3000, None),
        ("live", 4, 128, "x86_64", 4000, None),
        ("old", 1, 128, "x86_64", 5000, None),
    ]
    assert configs.delete("a", "1")
    functions.delete_version("a", "2")
    aliases.delete("a", "old")
    ended = {p[0]: p[5] for p in periods()[1:]}
    assert None not in (ended["1"], ended["2"], ended["old"]) and ended["live"] is None
    assert functions.delete("a")
    assert all(p[5] is not None for p in periods())
    assert len(periods()) == 5
