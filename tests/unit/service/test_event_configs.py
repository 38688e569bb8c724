"""EventInvokeConfigService over a real SQLite store: settings, paging, effective()."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from lambdaplane.asyncinvoke.settings import AsyncSettings
from lambdaplane.errors import InvalidParameterValueException, ResourceNotFoundException
from lambdaplane.service.event_configs import (
    Destinations,
    EventInvokeConfigService,
    InvokeConfigChange,
    Target,
    destination_kind,
)
from lambdaplane.service.names import Scope
from lambdaplane.store import FunctionRepository, StoredFunction, open_engine, upgrade
from lambdaplane.store.event_configs import EventInvokeConfigRepository, StoredEventInvokeConfig

ACCOUNT, REGION = "123456789012", "us-east-1"
SCOPE = Scope(region=REGION, account_id=ACCOUNT)
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"
T0 = 1_700_000_000.25


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    eng = open_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(eng)
    return eng


@pytest.fixture
def configs(engine: sa.Engine) -> EventInvokeConfigRepository:
    return EventInvokeConfigRepository(engine, ACCOUNT, REGION)


@pytest.fixture
def service(engine: sa.Engine, configs: EventInvokeConfigRepository) -> EventInvokeConfigService:
    functions = FunctionRepository(engine, ACCOUNT, REGION)
    for name in ("fn", "other"):
        functions.create(
            StoredFunction(
                name=name,
                version="$LATEST",
                revision_id="r",
                state="Active",
                last_update_status="Successful",
                code_sha256="0" * 64,
                code_size=1,
                config={"FunctionName": name},
            )
        )
    return EventInvokeConfigService(SCOPE, functions, configs)


def change(**request: Any) -> InvokeConfigChange:
    return InvokeConfigChange.from_request(request)


@pytest.mark.parametrize(
    ("arn", "kind"),
    [
        (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn", "lambda"),
        (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn:$LATEST", "lambda"),
        (f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:fn", None),
        (QUEUE, "sqs"),
        (f"arn:aws:sns:{REGION}:{ACCOUNT}:t", "sns"),
        (f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default", "events"),
        (f"arn:aws:events:{REGION}:{ACCOUNT}:rule/r", None),
        ("arn:aws:s3:::bucket", "s3"),
        (f"arn:aws:iam:{REGION}:{ACCOUNT}:function:fn", None),
        ("kafka://broker", None),
    ],
)
def test_destination_kind(arn: str, kind: str | None) -> None:
    assert destination_kind(arn) == kind


def test_destinations_print_like_aws() -> None:
    assert Destinations(Target("a"), None).described() == (
        "DestinationConfig(onSuccess=OnSuccess(destination=a), onFailure=null)"
    )
    assert Destinations(Target(None), Target("b")).described() == (
        "DestinationConfig(onSuccess=OnSuccess(destination=null), "
        "onFailure=OnFailure(destination=b))"
    )


def test_put_replaces_and_update_merges(service: EventInvokeConfigService) -> None:
    put = service.put("fn", None, change(MaximumRetryAttempts=0), T0)
    assert put == {
        "LastModified": datetime.fromtimestamp(T0, UTC),
        "FunctionArn": SCOPE.function_arn("fn", "$LATEST"),
        "MaximumRetryAttempts": 0,
        "DestinationConfig": {"OnSuccess": {}, "OnFailure": {}},
    }
    replaced = service.put("fn", "$LATEST", change(MaximumEventAgeInSeconds=60), T0 + 1)
    assert "MaximumRetryAttempts" not in replaced
    merged = service.update(
        "fn",
        None,
        change(MaximumRetryAttempts=1, DestinationConfig={"OnFailure": {"Destination": QUEUE}}),
        T0 + 2,
    )
    assert (merged["MaximumRetryAttempts"], merged["MaximumEventAgeInSeconds"]) == (1, 60)
    assert merged["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {"Destination": QUEUE}}
    assert service.get("fn", None) == merged


def test_update_retries_when_another_writer_got_there_first(
    service: EventInvokeConfigService,
    configs: EventInvokeConfigRepository,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service.put("fn", None, change(MaximumRetryAttempts=0), T0)
    real_replace = configs.replace
    raced: list[bool] = []

    def replace(stored: StoredEventInvokeConfig, expected: float) -> bool:
        if not raced:  # Someone sets the age between our read and our write.
            raced.append(True)
            service.update("fn", None, change(MaximumEventAgeInSeconds=120), T0 + 1)
        return real_replace(stored, expected)

    monkeypatch.setattr(configs, "replace", replace)
    result = service.update("fn", None, change(MaximumRetryAttempts=2), T0 + 2)
    assert (result["MaximumRetryAttempts"], result["MaximumEventAgeInSeconds"]) == (2, 120)


def test_nothing_to_set_is_refused_first(service: EventInvokeConfigService) -> None:
    for write in (service.put, service.update):
        with pytest.raises(InvalidParameterValueException) as exc:
            write("missing", None, change(), T0)
        assert exc.value.message == (
            "You must specify at least one of error handling or destination setting."
        )


def test_missing_function_version_or_config(service: EventInvokeConfigService) -> None:
    for name, qualifier in (("missing", None), ("fn", "1"), ("fn", "alias"), ("x" * 65, None)):
        with pytest.raises(ResourceNotFoundException) as exc:
            service.put(name, qualifier, change(MaximumRetryAttempts=1), T0)
        assert exc.value.message == "The function doesn't exist."
    with pytest.raises(ResourceNotFoundException) as exc:
        service.update("fn", None, change(MaximumRetryAttempts=1), T0)
    assert exc.value.message == (
        f"The function {SCOPE.function_arn('fn', '$LATEST')} doesn't have an EventInvokeConfig"
    )
    with pytest.raises(ResourceNotFoundException) as exc:
        service.get("fn", "1")
    assert exc.value.message == (
        f"The function {SCOPE.function_arn('fn', '1')} doesn't have an EventInvokeConfig"
    )
    with pytest.raises(ResourceNotFoundException) as exc:
        service.list("missing", None, None)
    assert exc.value.message == "The function doesn't exist."


@pytest.mark.parametrize(
    ("destinations", "message"),
    [
        (
            {"OnSuccess": {"Destination": "arn:aws:s3:::bucket"}},
            "The provided destination config DestinationConfig(onSuccess=OnSuccess("
            "destination=arn:aws:s3:::bucket), onFailure=null) is invalid.",
        ),
        (
            {"OnFailure": {"Destination": SCOPE.function_arn("fn", "$LATEST")}},
            "You can't specify the function as a destination for itself.",
        ),
        (
            {"OnFailure": {"Destination": SCOPE.function_arn("other", "1")}},
            f"The destination ARN {SCOPE.function_arn('other', '1')} is invalid.",
        ),
        (
            {"OnFailure": {"Destination": "arn:aws:lambda:eu-west-1:123456789012:function:other"}},
            "The destination ARN arn:aws:lambda:eu-west-1:123456789012:function:other is invalid.",
        ),
    ],
)
def test_destination_errors(
    service: EventInvokeConfigService, destinations: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidParameterValueException) as exc:
        service.put("fn", None, change(DestinationConfig=destinations), T0)
    assert exc.value.message == message


def test_empty_destination_is_none(service: EventInvokeConfigService) -> None:
    put = service.put("fn", None, change(DestinationConfig={"OnSuccess": {"Destination": ""}}), T0)
    assert put["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}


def test_list_pages_by_qualifier(
    service: EventInvokeConfigService, configs: EventInvokeConfigRepository
) -> None:
    # Versions and aliases cannot be configured through the API yet: write rows directly.
    for qualifier in ("$LATEST", "1", "live"):
        configs.put(StoredEventInvokeConfig("fn", qualifier, {"MaximumRetryAttempts": 1}, T0))
    configs.put(StoredEventInvokeConfig("other", "$LATEST", {"MaximumRetryAttempts": 1}, T0))
    seen: list[str] = []
    marker = None
    while True:
        page = service.list("fn", marker, 2)
        seen += [c["FunctionArn"] for c in page["FunctionEventInvokeConfigs"]]
        marker = page.get("NextMarker")
        if marker is None:
            break
    assert seen == [SCOPE.function_arn("fn", q) for q in ("$LATEST", "1", "live")]
    with pytest.raises(InvalidParameterValueException):
        service.list("fn", "%%%", None)


def test_delete_and_forget_function(
    service: EventInvokeConfigService, configs: EventInvokeConfigRepository
) -> None:
    service.put("fn", None, change(MaximumRetryAttempts=1), T0)
    configs.put(StoredEventInvokeConfig("fn", "1", {}, T0))
    service.put("other", None, change(MaximumRetryAttempts=1), T0)
    service.delete("fn", "$LATEST")
    with pytest.raises(ResourceNotFoundException):
        service.delete("fn", None)
    service.put("fn", None, change(MaximumRetryAttempts=1), T0)
    assert configs.drop_function("fn") == 2
    assert configs.page("fn", None, 10) == []
    assert [c.function_name for c in configs.page("other", None, 10)] == ["other"]


def test_effective(service: EventInvokeConfigService) -> None:
    assert service.effective("fn", "$LATEST") == AsyncSettings(
        max_retry_attempts=2, max_event_age_seconds=21_600
    )
    service.put("fn", None, change(MaximumEventAgeInSeconds=60), T0)
    assert service.effective("fn", "$LATEST") == AsyncSettings(
        max_retry_attempts=2, max_event_age_seconds=60
    )
    service.put(
        "fn",
        None,
        change(
            MaximumRetryAttempts=0,
            DestinationConfig={
                "OnSuccess": {"Destination": SCOPE.function_arn("other")},
                "OnFailure": {"Destination": QUEUE},
            },
        ),
        T0,
    )
    assert service.effective("fn", "$LATEST") == AsyncSettings(
        max_retry_attempts=0,
        max_event_age_seconds=21_600,
        on_success=SCOPE.function_arn("other"),
        on_failure=QUEUE,
    )
    # A config belongs to one qualifier: other versions keep the defaults.
    assert service.effective("fn", "1") == AsyncSettings()
