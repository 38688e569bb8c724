"""EventInvokeConfig operations through boto3, compared with real AWS's recorded responses.

The recordings (``TestLambdaEventInvokeConfig``) also cover published versions and
aliases; lambdaplane has neither yet, so those steps are checked as "not found" only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from lambdaplane.testing import make_zip
from tests.integration.helpers import RUNTIME, _reference_dir, reference, shape, unique_name

LIFECYCLE = "TestLambdaEventInvokeConfig::test_lambda_eventinvokeconfig_lifecycle"
EXCEPTIONS = "TestLambdaEventInvokeConfig::test_lambda_eventinvokeconfig_exceptions"
SQS_DESTINATIONS = (
    "tests/aws/services/lambda_/test_lambda_destinations.py::"
    "TestLambdaDestinationSqs::test_assess_lambda_destination_invocation[payload0]"
)
ACCOUNT = "000000000000"
REGION = "us-east-1"


def arn(name: str, qualifier: str | None = None) -> str:
    base = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{base}:{qualifier}" if qualifier else base


@cache
def _destinations_reference(test_id: str, step: str) -> Any:
    data = json.loads((_reference_dir() / "test_lambda_destinations.snapshot.json").read_text())
    return data[test_id]["recorded-content"][step]


def localised(value: Any, names: dict[str, str]) -> Any:
    """A recorded value with AWS's placeholders replaced by this server's values."""
    if isinstance(value, dict):
        return {k: localised(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [localised(v, names) for v in value]
    if isinstance(value, str):
        value = value.replace("<partition>", "aws").replace("<region>", REGION)
        value = value.replace("111111111111", ACCOUNT)
        for placeholder, real in names.items():
            value = value.replace(placeholder, real)
    return value


def assert_error(caught: pytest.ExceptionInfo[Any], step: str, **names: str) -> None:
    """The error matches the recorded one: code, message, body keys and status."""
    got = caught.value.response
    expected = localised(reference(EXCEPTIONS, step), names)
    assert got["Error"] == expected["Error"]
    assert (
        got["ResponseMetadata"]["HTTPStatusCode"]
        == (expected["ResponseMetadata"]["HTTPStatusCode"])
    )
    for key in ("Type", "Message", "message"):
        assert got.get(key) == expected.get(key), key


def assert_matches(got: dict[str, Any], recorded: dict[str, Any], **names: str) -> None:
    """Same keys all the way down, same values except the timestamp."""
    assert shape(got) == shape(recorded)
    expected = localised(recorded, names)
    for key in ("FunctionArn", "MaximumRetryAttempts", "MaximumEventAgeInSeconds"):
        assert got.get(key) == expected.get(key), key
    assert got["DestinationConfig"] == expected["DestinationConfig"]
    assert (
        got["ResponseMetadata"]["HTTPStatusCode"]
        == (expected["ResponseMetadata"]["HTTPStatusCode"])
    )


def _create(lam: Any, role: str) -> str:
    name = unique_name("eic")
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": make_zip()},
    )
    return name


@pytest.fixture
def fn(lam: Any, role: str) -> Iterator[str]:
    name = _create(lam, role)
    yield name
    lam.delete_function(FunctionName=name)


@pytest.fixture
def fn2(lam: Any, role: str) -> Iterator[str]:
    name = _create(lam, role)
    yield name
    lam.delete_function(FunctionName=name)


def test_lifecycle_matches_aws(lam: Any, fn: str) -> None:
    names = {"<function-name:1>": fn}

    def step(key: str, response: dict[str, Any]) -> None:
        assert_matches(response, reference(LIFECYCLE, key), **names)

    step(
        "put_invokeconfig_retries_0",
        lam.put_function_event_invoke_config(FunctionName=fn, MaximumRetryAttempts=0),
    )
    # Put replaces the whole config: the retries set above are gone.
    step(
        "put_invokeconfig_eventage_60",
        lam.put_function_event_invoke_config(FunctionName=fn, MaximumEventAgeInSeconds=60),
    )
    step(
        "update_invokeconfig_eventage_nochange",
        lam.update_function_event_invoke_config(FunctionName=fn, MaximumEventAgeInSeconds=60),
    )
    # Update merges: the age set before stays.
    updated = lam.update_function_event_invoke_config(FunctionName=fn, MaximumRetryAttempts=1)
    step("update_invokeconfig_retries", updated)
    got = lam.get_function_event_invoke_config(FunctionName=fn)
    step("get_invokeconfig", got)
    assert got["LastModified"] == updated["LastModified"]
    assert got["LastModified"].tzinfo is not None
    step(
        "get_invokeconfig_latest",
        lam.get_function_event_invoke_config(FunctionName=fn, Qualifier="$LATEST"),
    )
    listed = lam.list_function_event_invoke_configs(FunctionName=fn)
    assert shape(listed) == shape(reference(LIFECYCLE, "list_single_invokeconfig"))
    assert listed["FunctionEventInvokeConfigs"][0]["FunctionArn"] == arn(fn, "$LATEST")
    assert "NextMarker" not in listed

    # A version that does not exist has no config (AWS: one not configured yet).
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as caught:
        lam.get_function_event_invoke_config(FunctionName=fn, Qualifier="1")
    expected = localised(reference(LIFECYCLE, "get_invokeconfig_postpublish"), names)
    assert caught.value.response["Error"] == expected["Error"]

    deleted = lam.delete_function_event_invoke_config(FunctionName=fn)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    after = lam.list_function_event_invoke_configs(FunctionName=fn)
    assert after["FunctionEventInvokeConfigs"] == []
    assert shape(after) == shape(reference(EXCEPTIONS, "list_configs_postdelete"))


def test_put_and_update_differ_as_on_aws(lam: Any, fn: str) -> None:
    names = {"<function-name:1>": fn}

    def step(key: str, response: dict[str, Any]) -> None:
        assert_matches(response, reference(EXCEPTIONS, key), **names)

    step(
        "put_maxevent_maxvalue_result",
        lam.put_function_event_invoke_config(
            FunctionName=fn, MaximumRetryAttempts=2, MaximumEventAgeInSeconds=21600
        ),
    )
    step(
        "put_pre_overwrite",
        lam.put_function_event_invoke_config(
            FunctionName=fn, MaximumRetryAttempts=2, MaximumEventAgeInSeconds=60
        ),
    )
    step(
        "put_post_overwrite",
        lam.put_function_event_invoke_config(FunctionName=fn, MaximumRetryAttempts=0),
    )
    step(
        "second_overwrite_existing_response",
        lam.put_function_event_invoke_config(FunctionName=fn, MaximumRetryAttempts=0),
    )
    got = lam.get_function_event_invoke_config(FunctionName=fn)
    step("get_post_overwrite", got)
    assert "MaximumEventAgeInSeconds" not in got

    step(
        "pre_update_response",
        lam.put_function_event_invoke_config(
            FunctionName=fn, MaximumRetryAttempts=2, MaximumEventAgeInSeconds=60
        ),
    )
    step(
        "update_response",
        lam.update_function_event_invoke_config(FunctionName=fn, MaximumRetryAttempts=0),
    )
    step(
        "update_response_existing",
        lam.update_function_event_invoke_config(FunctionName=fn, MaximumRetryAttempts=0),
    )
    got = lam.get_function_event_invoke_config(FunctionName=fn)
    assert (got["MaximumRetryAttempts"], got["MaximumEventAgeInSeconds"]) == (0, 60)

    listed = lam.list_function_event_invoke_configs(FunctionName=fn)
    recorded = reference(EXCEPTIONS, "list_configs")
    assert shape(listed) == shape(recorded)
    assert_matches(
        {**listed["FunctionEventInvokeConfigs"][0], "ResponseMetadata": listed["ResponseMetadata"]},
        {
            **recorded["FunctionEventInvokeConfigs"][0],
            "ResponseMetadata": recorded["ResponseMetadata"],
        },
        **names,
    )

    deleted = lam.delete_function_event_invoke_config(FunctionName=fn, Qualifier="$LATEST")
    assert shape(deleted) == shape(reference(EXCEPTIONS, "delete_latest"))
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert (
        lam.list_function_event_invoke_configs(FunctionName=fn)["FunctionEventInvokeConfigs"] == []
    )
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as caught:
        lam.delete_function_event_invoke_config(FunctionName=fn)
    assert_error(caught, "delete_function_not_found", **{"<function-name:1>": fn})


def test_function_name_and_qualifier_forms(lam: Any, fn: str) -> None:
    names = {"<function-name:1>": fn}
    for form, qualifier, key in (
        (fn, None, "put_destination_latest"),
        (fn, "$LATEST", "put_destination_latest_explicit_qualifier"),
        (f"{fn}:$LATEST", "$LATEST", "put_shorthand_qualifier_match"),
        (arn(fn), None, "put_destination_latest"),
        (arn(fn, "$LATEST"), None, "put_destination_latest"),
        (f"{ACCOUNT}:function:{fn}", None, "put_destination_latest"),
    ):
        params: dict[str, Any] = {"FunctionName": form, "MaximumRetryAttempts": 1}
        if qualifier:
            params["Qualifier"] = qualifier
        assert_matches(
            lam.put_function_event_invoke_config(**params), reference(EXCEPTIONS, key), **names
        )
    for form in (fn, arn(fn), f"{fn}:$LATEST"):
        assert lam.get_function_event_invoke_config(FunctionName=form)["FunctionArn"] == arn(
            fn, "$LATEST"
        )
    lam.delete_function_event_invoke_config(FunctionName=arn(fn, "$LATEST"))


def test_qualifier_errors(lam: Any, fn: str) -> None:
    names = {"<function-name:1>": fn}
    alias_arn = arn(fn, "eventinvokealias")
    for params, key in (
        (
            {"FunctionName": alias_arn, "Qualifier": "eventinvokealiasdoesnotexist"},
            "put_alias_qualifiedarn_qualifierconflict",
        ),
        (
            {"FunctionName": f"{fn}:eventinvokealias", "Qualifier": "eventinvokealiasdoesnotexist"},
            "put_alias_shorthand_qualifierconflict",
        ),
        ({"FunctionName": f"{fn}:1", "Qualifier": "$LATEST"}, "put_shorthand_qualifier_mismatch_1"),
        ({"FunctionName": f"{fn}:$LATEST", "Qualifier": "1"}, "put_shorthand_qualifier_mismatch_2"),
        (
            {"FunctionName": f"{fn}:1", "Qualifier": "eventinvokealias"},
            "put_shorthand_qualifier_mismatch_3",
        ),
    ):
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as caught:
            lam.put_function_event_invoke_config(**params, MaximumRetryAttempts=1)
        assert_error(caught, key, **names)

    # Versions and aliases do not exist (yet): AWS's answer for a missing alias.
    for params in (
        {"FunctionName": fn, "Qualifier": "eventinvokealiasdoesnotexist"},
        {"FunctionName": fn, "Qualifier": "1"},
        {"FunctionName": f"{fn}:1"},
        {"FunctionName": alias_arn},
    ):
        with pytest.raises(lam.exceptions.ResourceNotFoundException) as caught:
            lam.put_function_event_invoke_config(**params, MaximumRetryAttempts=1)
        assert_error(caught, "put_alias_doesnotexist", **names)

    with pytest.raises(lam.exceptions.ResourceNotFoundException) as caught:
        lam.get_function_event_invoke_config(FunctionName=fn, Qualifier="doesnotexist")
    assert_error(caught, "get_qualifier_doesnotexist", **names)
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as caught:
        lam.get_function_event_invoke_config(FunctionName=alias_arn)
    assert_error(caught, "get_eventinvokeconfig_doesnotexist", **names)


def test_missing_function_and_config(lam: Any, raw_lam: Any, fn: str) -> None:
    names = {"<function-name:1>": fn}
    for form, key in (
        ("doesnotexist", "put_functionname_name_notfound"),
        (arn("doesnotexist"), "put_functionname_arn_notfound"),
    ):
        with pytest.raises(lam.exceptions.ResourceNotFoundException) as caught:
            lam.put_function_event_invoke_config(FunctionName=form, MaximumRetryAttempts=1)
        assert_error(caught, key)

    # Checked before the function: a request that sets nothing.
    with pytest.raises(raw_lam.exceptions.InvalidParameterValueException) as caught:
        raw_lam.put_function_event_invoke_config(FunctionName="doesnotexist")
    assert_error(caught, "put_functionname_nootherargs")
    with pytest.raises(raw_lam.exceptions.InvalidParameterValueException) as caught:
        raw_lam.update_function_event_invoke_config(FunctionName=fn)
    assert_error(caught, "put_functionname_nootherargs")

    with pytest.raises(lam.exceptions.ResourceNotFoundException) as caught:
        lam.delete_function_event_invoke_config(FunctionName="doesnotexist")
    assert_error(caught, "delete_function_doesnotexist")
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as caught:
        lam.list_function_event_invoke_configs(FunctionName="doesnotexist")
    assert_error(caught, "list_function_doesnotexist")
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as caught:
        lam.get_function_event_invoke_config(FunctionName="doesnotexist")
    assert_error(caught, "get_function_doesnotexist")
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as caught:
        lam.update_function_event_invoke_config(FunctionName="doesnotexist", MaximumRetryAttempts=0)
    assert_error(caught, "update_eventinvokeconfig_function_doesnotexist")

    # The function exists but has no config.
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as caught:
        lam.update_function_event_invoke_config(FunctionName=arn(fn), MaximumRetryAttempts=0)
    assert_error(caught, "update_eventinvokeconfig_config_doesnotexist_without_qualifier", **names)
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as caught:
        lam.delete_function_event_invoke_config(FunctionName=fn)
    assert_error(caught, "delete_function_not_found", **names)


def test_destinations(lam: Any, raw_lam: Any, fn: str, fn2: str) -> None:
    names = {"<function-name:1>": fn, "<resource:5>": fn2}
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as caught:
        lam.put_function_event_invoke_config(
            FunctionName=fn, DestinationConfig={"OnSuccess": {"Destination": arn("doesnotexist")}}
        )
    assert_error(caught, "put_destination_lambda_doesntexist", **names)

    with pytest.raises(lam.exceptions.InvalidParameterValueException) as caught:
        lam.put_function_event_invoke_config(
            FunctionName=fn, DestinationConfig={"OnSuccess": {"Destination": arn(fn)}}
        )
    assert_error(caught, "put_destination_recursive", **names)

    assert_matches(
        lam.put_function_event_invoke_config(
            FunctionName=fn, DestinationConfig={"OnSuccess": {"Destination": arn(fn2)}}
        ),
        reference(EXCEPTIONS, "put_destination_other_lambda"),
        **names,
    )

    with pytest.raises(lam.exceptions.InvalidParameterValueException) as caught:
        lam.put_function_event_invoke_config(
            FunctionName=fn,
            DestinationConfig={"OnSuccess": {"Destination": arn(fn).replace(":lambda:", ":iam:")}},
        )
    assert_error(caught, "put_destination_invalid_service_arn", **names)

    empty_sides: tuple[tuple[dict[str, Any], str], ...] = (
        ({"OnSuccess": {}}, "put_destination_success_no_destination_arn"),
        ({"OnFailure": {}}, "put_destination_failure_no_destination_arn"),
    )
    for config, key in empty_sides:
        assert_matches(
            lam.put_function_event_invoke_config(FunctionName=fn, DestinationConfig=config),
            reference(EXCEPTIONS, key),
            **names,
        )

    with pytest.raises(raw_lam.exceptions.ClientError) as caught:
        raw_lam.put_function_event_invoke_config(
            FunctionName=fn,
            DestinationConfig={
                "OnFailure": {"Destination": arn(fn).replace(":lambda:", ":_-/!lambda:")}
            },
        )
    assert_error(caught, "put_destination_invalid_arn_pattern", **names)


def test_queue_topic_bus_and_bucket_destinations(lam: Any, fn: str) -> None:
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:eic-queue"
    put = lam.put_function_event_invoke_config(
        FunctionName=fn,
        MaximumRetryAttempts=0,
        DestinationConfig={
            "OnSuccess": {"Destination": queue},
            "OnFailure": {"Destination": queue},
        },
    )
    assert_matches(
        put,
        _destinations_reference(SQS_DESTINATIONS, "put_function_event_invoke_config"),
        **{"<resource:1>": "eic-queue", "<resource:2>": fn},
    )

    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:eic-topic"
    bus = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"
    bucket = "arn:aws:s3:::eic-bucket"
    for success, failure in ((topic, bus), (bus, topic), (topic, bucket)):
        updated = lam.update_function_event_invoke_config(
            FunctionName=fn,
            DestinationConfig={
                "OnSuccess": {"Destination": success},
                "OnFailure": {"Destination": failure},
            },
        )
        assert updated["DestinationConfig"] == {
            "OnSuccess": {"Destination": success},
            "OnFailure": {"Destination": failure},
        }
        assert updated["MaximumRetryAttempts"] == 0

    # S3 takes failure records only.
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as caught:
        lam.put_function_event_invoke_config(
            FunctionName=fn, DestinationConfig={"OnSuccess": {"Destination": bucket}}
        )
    assert caught.value.response["Error"]["Message"] == (
        "The provided destination config DestinationConfig(onSuccess=OnSuccess("
        f"destination={bucket}), onFailure=null) is invalid."
    )
    # Update names a DestinationConfig as a whole: a side it leaves out is cleared.
    cleared = lam.update_function_event_invoke_config(
        FunctionName=fn, DestinationConfig={"OnFailure": {"Destination": queue}}
    )
    assert cleared["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {"Destination": queue}}
    lam.delete_function_event_invoke_config(FunctionName=fn)


def test_ranges_are_validated(raw_lam: Any, fn: str) -> None:
    for params, message in (
        (
            {"MaximumRetryAttempts": 3},
            "Value '3' at 'maximumRetryAttempts' failed to satisfy constraint: "
            "Member must have value less than or equal to 2",
        ),
        (
            {"MaximumRetryAttempts": -1},
            "Value '-1' at 'maximumRetryAttempts' failed to satisfy constraint: "
            "Member must have value greater than or equal to 0",
        ),
        (
            {"MaximumEventAgeInSeconds": 59},
            "Value '59' at 'maximumEventAgeInSeconds' failed to satisfy constraint: "
            "Member must have value greater than or equal to 60",
        ),
        (
            {"MaximumEventAgeInSeconds": 21601},
            "Value '21601' at 'maximumEventAgeInSeconds' failed to satisfy constraint: "
            "Member must have value less than or equal to 21600",
        ),
    ):
        with pytest.raises(raw_lam.exceptions.ClientError) as caught:
            raw_lam.put_function_event_invoke_config(FunctionName=fn, **params)
        error = caught.value.response["Error"]
        assert error == {
            "Code": "ValidationException",
            "Message": f"1 validation error detected: {message}",
        }
    with pytest.raises(raw_lam.exceptions.ClientError) as caught:
        raw_lam.list_function_event_invoke_configs(FunctionName=fn, MaxItems=51)
    assert caught.value.response["Error"]["Message"] == (
        "1 validation error detected: Value '51' at 'maxItems' failed to satisfy constraint: "
        "Member must have value less than or equal to 50"
    )


def test_list_markers(lam: Any, fn: str) -> None:
    lam.put_function_event_invoke_config(FunctionName=fn, MaximumRetryAttempts=1)
    first = lam.list_function_event_invoke_configs(FunctionName=fn, MaxItems=1)
    assert len(first["FunctionEventInvokeConfigs"]) == 1
    assert "NextMarker" not in first
    paginator = lam.get_paginator("list_function_event_invoke_configs")
    pages = list(paginator.paginate(FunctionName=fn, PaginationConfig={"PageSize": 1}))
    assert [c["FunctionArn"] for p in pages for c in p["FunctionEventInvokeConfigs"]] == [
        arn(fn, "$LATEST")
    ]
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.list_function_event_invoke_configs(FunctionName=fn, Marker="%%%")
