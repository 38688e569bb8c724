"""Resource-based policies in the store, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import sqlalchemy as sa

from lambdaplane.store import AliasRepository, FunctionRepository, StoredAlias, upgrade
from lambdaplane.store.policies import UNQUALIFIED, PolicyRepository, PolicyWrite
from tests.integration.test_store import _fn

ACCOUNT, REGION = "000000000000", "us-east-1"


@pytest.fixture
def engine(bare_engine: sa.Engine) -> sa.Engine:
    upgrade(bare_engine)
    return bare_engine


def _write(
    name: str,
    qualifier: str,
    statements: list[dict[str, Any]],
    revision: str,
    expected: str | None,
    owner: str,
    alias: bool = False,
) -> PolicyWrite:
    return PolicyWrite(name, qualifier, statements, revision, expected, owner, alias)


def _sid(sid: str) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow"}


def test_write_keeps_order_and_moves_the_owner_revision(engine: sa.Engine) -> None:
    functions = FunctionRepository(engine, ACCOUNT, REGION)
    policies = PolicyRepository(engine, ACCOUNT, REGION)
    functions.create(_fn("f", revision="r1", state="Active"))
    assert policies.get("f", UNQUALIFIED) is None

    assert policies.write(_write("f", UNQUALIFIED, [_sid("a")], "p1", None, "r1"))
    latest = functions.get("f")
    assert latest is not None
    assert latest.revision_id == "p1" and latest.config["RevisionId"] == "p1"
    assert latest.config["FunctionName"] == "f"  # the rest of the configuration is kept

    # A stale owner or policy revision writes nothing.
    assert not policies.write(_write("f", UNQUALIFIED, [_sid("a"), _sid("b")], "p2", "p1", "r1"))
    assert not policies.write(_write("f", UNQUALIFIED, [_sid("a"), _sid("b")], "p2", "px", "p1"))
    # A second "first" policy loses to the one already there.
    assert not policies.write(_write("f", UNQUALIFIED, [_sid("z")], "p2", None, "p1"))
    stored = policies.get("f", UNQUALIFIED)
    assert stored is not None and stored.statements == [_sid("a")]

    sids = ["c", "a", "b"]
    expected = "p1"
    for number, _ in enumerate(sids, start=2):
        assert policies.write(
            _write("f", UNQUALIFIED, [_sid(s) for s in sids[:number]], f"p{number}", expected,
                   expected)
        )  # fmt: skip
        expected = f"p{number}"
    stored = policies.get("f", UNQUALIFIED)
    assert stored is not None
    assert [s["Sid"] for s in stored.statements] == ["c", "a", "b"]
    assert stored.revision_id == "p4"

    # No statements left: the policy goes, the owner still gets the new revision.
    assert policies.write(_write("f", UNQUALIFIED, [], "p5", "p4", "p4"))
    assert policies.get("f", UNQUALIFIED) is None
    assert functions.get("f").revision_id == "p5"  # type: ignore[union-attr]


def test_policies_are_per_qualifier_and_go_with_their_owner(engine: sa.Engine) -> None:
    functions = FunctionRepository(engine, ACCOUNT, REGION)
    aliases = AliasRepository(engine, ACCOUNT, REGION)
    policies = PolicyRepository(engine, ACCOUNT, REGION)
    latest = _fn("f", revision="r1", state="Active")
    functions.create(latest)
    moved = dataclasses.replace(latest, revision_id="r2")
    version = functions.publish(
        moved, "r1", lambda n: dataclasses.replace(moved, version=str(n), revision_id="v1")
    )
    assert version is not None
    aliases.create(StoredAlias("f", "live", "1", "", "a1"))
    other = PolicyRepository(engine, ACCOUNT, "eu-west-1")

    assert policies.write(_write("f", UNQUALIFIED, [_sid("u")], "pu", None, "r2"))
    assert policies.write(_write("f", "1", [_sid("v")], "pv", None, "v1"))
    assert policies.write(_write("f", "live", [_sid("l")], "pl", None, "a1", alias=True))
    assert aliases.get("f", "live").revision_id == "pl"  # type: ignore[union-attr]
    assert functions.get("f", "1").revision_id == "pv"  # type: ignore[union-attr]
    assert other.get("f", UNQUALIFIED) is None
    # An alias write checks the alias's revision.
    assert not policies.write(_write("f", "live", [_sid("m")], "px", "pl", "a1", alias=True))

    aliases.delete("f", "live")
    assert policies.get("f", "live") is None
    aliases.create(StoredAlias("f", "live", "1", "", "a2"))
    assert policies.get("f", "live") is None  # a new alias of the same name starts bare

    functions.delete_version("f", "1")
    assert policies.get("f", "1") is None
    assert policies.get("f", UNQUALIFIED) is not None

    functions.delete("f")
    functions.create(_fn("f"))
    assert policies.get("f", UNQUALIFIED) is None
    with engine.connect() as conn:
        left = conn.execute(sa.text("SELECT count(*) FROM function_policies")).scalar_one()
    assert left == 0
