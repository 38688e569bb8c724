from __future__ import annotations

import json
import re

import pytest

from lambdaplane.errors import InvalidParameterValueException
from lambdaplane.service import configuration as cfg
from lambdaplane.service.state import IllegalTransition, State, UpdateStatus


def _new(**request: object) -> dict[str, object]:
    base: dict[str, object] = {
        "Role": "arn:aws:iam::123456789012:role/r",
        "Runtime": "python3.11",
        "Handler": "h.h",
    }
    base.update(request)
    return cfg.new_configuration(
        base,
        name="fn",
        arn="arn:aws:lambda:us-east-1:123456789012:function:fn",
        runtime_version_arn="arn:aws:lambda:us-east-1::runtime:abc",
        code_sha256="sha",
        code_size=10,
        revision_id="r1",
    )


def test_defaults_match_aws() -> None:
    config = _new()
    assert config["MemorySize"] == 128 and config["Timeout"] == 3 and config["Description"] == ""
    assert config["State"] == "Pending" and config["StateReasonCode"] == "Creating"
    assert config["EphemeralStorage"] == {"Size": 512}
    assert config["TracingConfig"] == {"Mode": "PassThrough"}
    assert config["Architectures"] == ["x86_64"]
    assert config["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/aws/lambda/fn"}
    assert "Environment" not in config and "LastUpdateStatus" not in config
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", str(config["LastModified"]))


def test_update_then_settle() -> None:
    config = _new()
    active = cfg.settled(config, "r2")
    assert active["State"] == "Active" and active["LastUpdateStatus"] == "Successful"
    assert "StateReason" not in active
    updated = cfg.updated_configuration(
        active,
        {"MemorySize": 512, "LoggingConfig": {"LogFormat": "JSON"}},
        runtime_version_arn=None,
        revision_id="r3",
    )
    assert updated["LastUpdateStatus"] == "InProgress"
    assert updated["LastUpdateStatusReason"] == "The function is being created."
    assert updated["MemorySize"] == 512
    assert updated["LoggingConfig"] == {
        "ApplicationLogLevel": "INFO",
        "LogFormat": "JSON",
        "LogGroup": "/aws/lambda/fn",
        "SystemLogLevel": "INFO",
    }
    assert cfg.settled(updated, "r4")["LastUpdateStatus"] == "Successful"


def test_environment_checks() -> None:
    cfg.check_environment({"Variables": {"A": "x" * 4000}})
    with pytest.raises(InvalidParameterValueException) as exc:
        cfg.check_environment({"Variables": {"A": "x" * 4100}})
    assert exc.value.message and exc.value.message.endswith(
        json.dumps({"A": "x" * 4100}, separators=(",", ":"))
    )
    with pytest.raises(InvalidParameterValueException) as exc:
        cfg.check_environment({"Variables": {"AWS_REGION": "x", "_HANDLER": "y"}})
    assert exc.value.message and exc.value.message.endswith(
        "Reserved keys used in this request: AWS_REGION, _HANDLER"
    )


def test_listing_drops_state_and_qualifies_arn() -> None:
    item = cfg.for_listing(cfg.settled(_new(), "r2"), qualified=True)
    assert "State" not in item and "RuntimeVersionConfig" not in item
    assert item["FunctionArn"].endswith(":function:fn:$LATEST")


def test_state_machines_refuse_illegal_moves() -> None:
    assert State.PENDING.to(State.ACTIVE) is State.ACTIVE
    with pytest.raises(IllegalTransition):
        State.ACTIVE.to(State.PENDING)
    assert UpdateStatus.IN_PROGRESS.to(UpdateStatus.SUCCESSFUL) is UpdateStatus.SUCCESSFUL
    with pytest.raises(IllegalTransition):
        UpdateStatus.SUCCESSFUL.to(UpdateStatus.FAILED)
