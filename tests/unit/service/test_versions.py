"""How a version is cut from $LATEST, and how an alias picks the version that runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lambdaplane.service import versions
from lambdaplane.service.functions import FunctionService, is_alias
from lambdaplane.service.names import Scope
from lambdaplane.store import (
    AliasRepository,
    FunctionRepository,
    StoredAlias,
    StoredFunction,
    TagRepository,
    open_engine,
    upgrade,
)

LATEST_CONFIG: dict[str, Any] = {
    "FunctionName": "f",
    "FunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:f",
    "Version": "$LATEST",
    "Description": "base",
    "MemorySize": 128,
    "RevisionId": "r",
    "LastModified": "then",
    "State": "Active",
    "LastUpdateStatus": "Successful",
}


def test_snapshot_of_a_settled_function_is_active() -> None:
    config = versions.snapshot(
        LATEST_CONFIG, version="3", arn="arn:...:f:3", description=None, revision_id="v3"
    )
    assert config["Version"] == "3"
    assert config["FunctionArn"] == "arn:...:f:3"
    assert config["Description"] == "base"  # $LATEST's, unless the publish gives one
    assert (config["State"], config["LastUpdateStatus"]) == ("Active", "Successful")
    assert versions.same_content(config, LATEST_CONFIG)
    assert not versions.same_content(config, {**LATEST_CONFIG, "MemorySize": 256})
    assert versions.same_content(config, {**LATEST_CONFIG, "Description": "other"})


def test_snapshot_of_an_update_in_progress_is_pending() -> None:
    updating = {**LATEST_CONFIG, "LastUpdateStatus": "InProgress", "LastUpdateStatusReason": "x"}
    config = versions.snapshot(updating, version="1", arn="a", description="d", revision_id="v")
    assert config["State"] == "Pending"
    assert config["StateReasonCode"] == "Creating"
    assert "LastUpdateStatus" not in config and "LastUpdateStatusReason" not in config
    assert config["Description"] == "d"


def test_is_alias() -> None:
    assert is_alias("live") and is_alias("2024-01-02")
    assert not is_alias("$LATEST") and not is_alias("12")


def _stored(version: str) -> StoredFunction:
    return StoredFunction("f", version, f"r{version}", "Active", "Successful", "00" * 32, 1, {
        **LATEST_CONFIG, "Version": version
    })  # fmt: skip


def test_alias_routing_uses_the_weight(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 's.db'}")
    upgrade(engine)
    functions = FunctionRepository(engine, "000000000000", "us-east-1")
    aliases = AliasRepository(engine, "000000000000", "us-east-1")
    functions.create(_stored("$LATEST"), _stored("1"))
    functions.publish(_stored("$LATEST"), "r$LATEST", lambda n: _stored(str(n)))
    aliases.create(StoredAlias("f", "live", "1", "", "a", {"2": 0.3}))
    draws = iter([0.29, 0.3, 0.95, 0.0])
    service = FunctionService(
        Scope("us-east-1", "000000000000"),
        functions,
        TagRepository(engine),
        code=None,  # type: ignore[arg-type]  # not reached by reads
        runtimes=None,  # type: ignore[arg-type]
        schedule_settle=lambda name: None,
        aliases=aliases,
        choose=lambda: next(draws),
    )
    picked = [service.load_for_invoke("f", "live").version for _ in range(4)]
    assert picked == ["2", "1", "1", "2"]
    engine.dispose()
