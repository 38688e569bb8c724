"""Published versions through boto3: publish, list, invoke by qualifier, delete."""

from __future__ import annotations

import json
import textwrap
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdaplane.testing import make_zip
from tests.integration.helpers import RUNTIME, reference, unique_name, wait_settled

ACCOUNT = "000000000000"

SAYS = """
import os

def handler(event, context):
    return {
        "says": %r,
        "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
        "context_version": context.function_version,
        "invoked_arn": context.invoked_function_arn,
        "log_stream": context.log_stream_name,
    }
"""


def code(says: str) -> bytes:
    return make_zip({"handler.py": textwrap.dedent(SAYS % says)})


def create(lam: Any, role: str, says: str = "one", **extra: Any) -> str:
    name = unique_name("ver")
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": code(says)},
        **extra,
    )
    wait_settled(lam, name)
    return name


def update(lam: Any, name: str, says: str, **extra: Any) -> dict[str, Any]:
    response: dict[str, Any] = lam.update_function_code(
        FunctionName=name, ZipFile=code(says), **extra
    )
    wait_settled(lam, name)
    return response


def call(lam: Any, name: str, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    response = lam.invoke(FunctionName=name, Payload=b"{}", **kwargs)
    body = json.loads(response["Payload"].read())
    return response, body


def wait_version_active(lam: Any, name: str, version: str, timeout: float = 10) -> dict[str, Any]:
    """A published version settles after $LATEST does (the settler takes them in turn)."""
    deadline = time.monotonic() + timeout
    while True:
        config: dict[str, Any] = lam.get_function_configuration(
            FunctionName=name, Qualifier=version
        )
        if config["State"] == "Active" or time.monotonic() > deadline:
            return config
        time.sleep(0.02)


def error(fn: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as info:
        fn(**kwargs)
    response: dict[str, Any] = info.value.response
    return response


def test_publish_update_and_invoke_each_version(lam: Any, role: str) -> None:
    name = create(lam, role, "one")
    published = lam.publish_version(FunctionName=name, Description="first")
    assert published["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert published["Version"] == "1"
    assert published["FunctionArn"].endswith(f":function:{name}:1")
    assert published["Description"] == "first"
    assert published["State"] == "Active"
    assert published["LastUpdateStatus"] == "Successful"

    update(lam, name, "two")
    v1, body1 = call(lam, name, Qualifier="1")
    latest, body_latest = call(lam, name)
    assert (v1["ExecutedVersion"], body1["says"]) == ("1", "one")
    assert (latest["ExecutedVersion"], body_latest["says"]) == ("$LATEST", "two")

    # AWS's variables and context follow the version; the log stream names it.
    assert body1["version"] == body1["context_version"] == "1"
    assert body1["invoked_arn"].endswith(f":function:{name}:1")
    assert "/[1]" in body1["log_stream"]
    assert body_latest["version"] == "$LATEST"
    assert body_latest["invoked_arn"].endswith(f":function:{name}")
    assert "/[$LATEST]" in body_latest["log_stream"]

    # A qualified name and a full ARN with a qualifier name the same version.
    _, by_name = call(lam, f"{name}:1")
    arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}:1"
    _, by_arn = call(lam, arn)
    assert by_name["says"] == by_arn["says"] == "one"

    # Version 1 keeps its own configuration too.
    lam.update_function_configuration(FunctionName=name, MemorySize=256)
    wait_settled(lam, name)
    assert lam.get_function_configuration(FunctionName=name, Qualifier="1")["MemorySize"] == 128
    assert lam.get_function(FunctionName=f"{name}:1")["Configuration"]["Version"] == "1"


def test_publish_again_without_change_returns_the_version(lam: Any, role: str) -> None:
    name = create(lam, role)
    first = lam.publish_version(FunctionName=name)
    latest_revision = lam.get_function(FunctionName=name)["Configuration"]["RevisionId"]
    again = lam.publish_version(FunctionName=name, Description="ignored")
    assert again["Version"] == "1"
    assert again["RevisionId"] == first["RevisionId"]
    assert lam.get_function(FunctionName=name)["Configuration"]["RevisionId"] == latest_revision
    lam.update_function_configuration(FunctionName=name, Description="changed")
    wait_settled(lam, name)
    # A description alone is not a change of content either.
    assert lam.publish_version(FunctionName=name)["Version"] == "1"
    lam.update_function_configuration(FunctionName=name, Timeout=9)
    wait_settled(lam, name)
    assert lam.publish_version(FunctionName=name)["Version"] == "2"


def test_publish_preconditions(lam: Any, role: str) -> None:
    name = create(lam, role)
    current = lam.get_function(FunctionName=name)["Configuration"]

    err = error(lam.publish_version, FunctionName=name, RevisionId="wrong")
    expected = reference(
        "TestLambdaVersions::test_publish_with_wrong_revisionid", "publish_wrong_revisionid_exc"
    )
    assert err["Error"] == expected["Error"]
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 412

    err = error(lam.publish_version, FunctionName=name, CodeSha256="somenonexistentsha256")
    expected = reference(
        "TestLambdaVersions::test_publish_with_wrong_sha256", "publish_wrong_sha256_exc"
    )
    assert err["Error"]["Code"] == expected["Error"]["Code"]
    assert err["Error"]["Message"] == expected["Error"]["Message"].replace(
        "<code-sha256:1>", current["CodeSha256"]
    )
    assert lam.list_versions_by_function(FunctionName=name)["Versions"][1:] == []

    ok = lam.publish_version(
        FunctionName=name, CodeSha256=current["CodeSha256"], RevisionId=current["RevisionId"]
    )
    assert ok["Version"] == "1"
    # Publishing gives $LATEST a new revision.
    assert (
        lam.get_function(FunctionName=name)["Configuration"]["RevisionId"] != current["RevisionId"]
    )


def test_publish_on_create_and_on_update(lam: Any, role: str) -> None:
    name = unique_name("ver")
    created = lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": code("one")},
        Publish=True,
    )
    assert created["Version"] == "1"
    assert created["FunctionArn"].endswith(f":function:{name}")
    wait_settled(lam, name)
    version = wait_version_active(lam, name, "1")
    assert (version["State"], version["LastUpdateStatus"]) == ("Active", "Successful")

    updated = lam.update_function_code(FunctionName=name, ZipFile=code("two"), Publish=True)
    assert updated["Version"] == "2"
    assert updated["FunctionArn"].endswith(f":function:{name}:2")
    assert updated["State"] == "Pending"
    assert "LastUpdateStatus" not in updated
    wait_settled(lam, name)
    wait_version_active(lam, name, "2")
    _, body = call(lam, name, Qualifier="2")
    assert body["says"] == "two"
    _, body = call(lam, name, Qualifier="1")
    assert body["says"] == "one"


def test_list_versions_and_qualified_arns(lam: Any, role: str) -> None:
    name = create(lam, role, Description="base")
    lam.publish_version(FunctionName=name)
    update(lam, name, "two")
    lam.publish_version(FunctionName=name, Description="second")
    listed = lam.list_versions_by_function(FunctionName=name)["Versions"]
    assert [v["Version"] for v in listed] == ["$LATEST", "1", "2"]
    assert listed[0]["FunctionArn"].endswith(f":function:{name}:$LATEST")
    assert listed[2]["FunctionArn"].endswith(f":function:{name}:2")
    assert [v["Description"] for v in listed] == ["base", "base", "second"]
    expected_keys = set(
        reference("TestLambdaVersions::test_version_lifecycle", "list_versions_result")["Versions"][
            0
        ]
    )
    assert set(listed[1]) - {"LoggingConfig", "RuntimeVersionConfig"} <= expected_keys | {"Layers"}

    page = lam.list_versions_by_function(FunctionName=name, MaxItems=2)
    assert [v["Version"] for v in page["Versions"]] == ["$LATEST", "1"]
    rest = lam.list_versions_by_function(FunctionName=name, Marker=page["NextMarker"])
    assert [v["Version"] for v in rest["Versions"]] == ["2"]
    assert "NextMarker" not in rest

    # GetFunction with an explicit $LATEST qualifies the ARN, as AWS does.
    latest = lam.get_function(FunctionName=name, Qualifier="$LATEST")["Configuration"]
    assert latest["FunctionArn"].endswith(f":function:{name}:$LATEST")

    # ListFunctions with FunctionVersion=ALL pages through every version of every function.
    seen: list[str] = []
    marker: dict[str, str] = {}
    while True:
        page = lam.list_functions(FunctionVersion="ALL", MaxItems=2, **marker)
        seen += [f["FunctionArn"] for f in page["Functions"] if f["FunctionName"] == name]
        if "NextMarker" not in page:
            break
        marker = {"Marker": page["NextMarker"]}
    assert [arn.rsplit(":", 1)[1] for arn in seen] == ["$LATEST", "1", "2"]

    not_found = error(lam.get_function, FunctionName=name, Qualifier="1221")
    expected = reference(
        "TestLambdaFunction::test_ops_on_nonexisting_version[get_function]",
        "version_not_found_exception",
    )
    assert not_found["Error"]["Code"] == expected["Error"]["Code"]
    assert not_found["Error"]["Message"] == (
        f"Function not found: arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}:1221"
    )
    assert not_found["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_delete_versions(lam: Any, role: str) -> None:
    name = create(lam, role)
    lam.publish_version(FunctionName=name)
    update(lam, name, "two")
    lam.publish_version(FunctionName=name)
    lam.delete_function(FunctionName=name, Qualifier="1")
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]] == [
        "$LATEST",
        "2",
    ]
    # A version that is already gone: nothing to do, as on AWS.
    lam.delete_function(FunctionName=name, Qualifier="1")
    # Numbers are never reused.
    update(lam, name, "three")
    assert lam.publish_version(FunctionName=name)["Version"] == "3"

    err = error(lam.delete_function, FunctionName=name, Qualifier="$LATEST")
    assert err["Error"] == {
        "Code": "InvalidParameterValueException",
        "Message": "$LATEST version cannot be deleted without deleting the function.",
    }
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="2")
    err = error(lam.delete_function, FunctionName=f"{name}:2")
    assert err["Error"] == {
        "Code": "ResourceConflictException",
        "Message": "Unable to delete version because the following aliases reference it: [live]",
    }
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 409

    missing = unique_name("gone")
    err = error(lam.delete_function, FunctionName=missing, Qualifier="1")
    expected = reference(
        "TestLambdaFunction::test_delete_on_nonexisting_version",
        "delete_function_response_non_existent_with_qualifier",
    )
    assert err["Error"]["Message"] == expected["Error"]["Message"].replace(
        "arn:<partition>:lambda:<region>:111111111111:function:<fn-name>",
        f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{missing}",
    )
    lam.delete_function(FunctionName=name)
    err = error(lam.get_function, FunctionName=name, Qualifier="2")
    assert err["Error"]["Code"] == "ResourceNotFoundException"


def test_updates_refuse_a_qualifier(lam: Any, role: str) -> None:
    name = create(lam, role)
    lam.publish_version(FunctionName=name)
    err = error(lam.update_function_configuration, FunctionName=f"{name}:1", Timeout=5)
    assert err["Error"]["Code"] == "InvalidParameterValueException"
    err = error(lam.get_function, FunctionName=f"{name}:1", Qualifier="2")
    assert err["Error"]["Message"] == (
        "The derived qualifier from the function name does not match the specified qualifier."
    )
