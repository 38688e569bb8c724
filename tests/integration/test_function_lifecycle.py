"""The function lifecycle through boto3, compared field by field with real AWS's responses."""

from __future__ import annotations

import base64
import hashlib
import urllib.request
from typing import Any

import pytest

from lambdaplane.testing import ServerProcess, make_zip, start_server
from tests.integration.helpers import RUNTIME, reference, shape, unique_name, wait_settled

LIFECYCLE = "TestLambdaFunction::test_function_lifecycle"


def _create(lam: Any, role: str, name: str, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": RUNTIME,
        "Role": role,
        "Handler": "handler.handler",
        "Code": {"ZipFile": make_zip()},
        "MemorySize": 256,
        "Timeout": 5,
        "Environment": {"Variables": {}},
    }
    params.update(extra)
    response: dict[str, Any] = lam.create_function(**params)
    return response


def test_lifecycle_matches_aws(lam: Any, role: str, server: ServerProcess) -> None:
    name = unique_name()
    arn = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"

    created = _create(lam, role, name)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert shape(created) == shape(
        reference(LIFECYCLE, "create_response")["CreateFunctionResponse"]
    )
    assert created["State"] == "Pending"
    assert created["StateReason"] == "The function is being created."
    assert created["StateReasonCode"] == "Creating"
    assert created["FunctionArn"] == arn
    assert created["Version"] == "$LATEST"
    zip_bytes = make_zip()
    assert created["CodeSha256"] == base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()
    assert created["CodeSize"] == len(zip_bytes)
    assert created["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"}
    assert created["SnapStart"] == {"ApplyOn": "None", "OptimizationStatus": "Off"}
    assert created["LastModified"].endswith("+0000") and len(created["LastModified"]) == 28

    settled = wait_settled(lam, name)
    assert settled["RevisionId"] != created["RevisionId"]

    got = lam.get_function(FunctionName=name)
    assert shape(got) == shape(reference(LIFECYCLE, "get_function_response"))
    assert got["Configuration"]["State"] == "Active"
    assert got["Configuration"]["LastUpdateStatus"] == "Successful"
    assert got["Code"]["RepositoryType"] == "S3"

    updated = lam.update_function_configuration(
        FunctionName=name,
        Description="Changed-Description",
        MemorySize=512,
        Timeout=10,
        Environment={"Variables": {"ENV_A": "a"}},
    )
    assert shape(updated) == shape(reference(LIFECYCLE, "update_func_conf_response"))
    assert updated["LastUpdateStatus"] == "InProgress"
    assert updated["LastUpdateStatusReasonCode"] == "Creating"
    assert (updated["MemorySize"], updated["Timeout"], updated["Description"]) == (
        512,
        10,
        "Changed-Description",
    )
    wait_settled(lam, name)
    after_conf = lam.get_function(FunctionName=name)
    assert shape(after_conf) == shape(reference(LIFECYCLE, "get_function_response_postupdate"))
    assert after_conf["Configuration"]["Environment"] == {"Variables": {"ENV_A": "a"}}

    new_zip = make_zip({"handler.py": "def handler(e, c):\n    return 2\n"})
    code_updated = lam.update_function_code(FunctionName=name, ZipFile=new_zip)
    assert shape(code_updated) == shape(reference(LIFECYCLE, "update_code_response"))
    assert code_updated["CodeSha256"] == base64.b64encode(hashlib.sha256(new_zip).digest()).decode()
    assert code_updated["LastUpdateStatus"] == "InProgress"
    wait_settled(lam, name)
    after_code = lam.get_function(FunctionName=name)
    assert shape(after_code) == shape(reference(LIFECYCLE, "get_function_response_postcodeupdate"))

    # Code.Location downloads exactly the current zip.
    with urllib.request.urlopen(after_code["Code"]["Location"], timeout=10) as response:
        assert response.read() == new_zip

    lam.tag_resource(Resource=arn, Tags={"team": "core", "env": "dev"})
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "core", "env": "dev"}
    assert lam.get_function(FunctionName=name)["Tags"] == {"team": "core", "env": "dev"}
    lam.untag_resource(Resource=arn, TagKeys=["env"])
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "core"}

    deleted = lam.delete_function(FunctionName=name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
        lam.get_function(FunctionName=name)
    error = exc.value.response
    assert error["Error"]["Message"] == f"Function not found: {arn}"
    assert error["Type"] == "User"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_function_name_forms(lam: Any, role: str) -> None:
    name = unique_name()
    _create(lam, role, f"arn:aws:lambda:us-east-1:000000000000:function:{name}")
    wait_settled(lam, name)
    for form in (
        name,
        f"000000000000:function:{name}",
        f"arn:aws:lambda:us-east-1:000000000000:function:{name}",
        f"{name}:$LATEST",
    ):
        assert lam.get_function_configuration(FunctionName=form)["FunctionName"] == name
    assert (
        lam.get_function(FunctionName=name, Qualifier="$LATEST")["Configuration"]["FunctionName"]
        == name
    )
    lam.delete_function(FunctionName=f"000000000000:function:{name}")


def test_list_functions_paginates(lam: Any, role: str) -> None:
    prefix = unique_name("page")
    names = [f"{prefix}-{i:02d}" for i in range(7)]
    for name in names:
        _create(lam, role, name)
    seen: list[str] = []
    marker = None
    while True:
        kwargs: dict[str, Any] = {"MaxItems": 3}
        if marker:
            kwargs["Marker"] = marker
        page = lam.list_functions(**kwargs)
        assert len(page["Functions"]) <= 3
        seen += [f["FunctionName"] for f in page["Functions"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert [n for n in seen if n.startswith(prefix)] == names
    listed = next(f for f in lam.list_functions()["Functions"] if f["FunctionName"] == names[0])
    assert "State" not in listed and "RuntimeVersionConfig" not in listed
    assert listed["FunctionArn"].endswith(f":function:{names[0]}")
    all_versions = lam.list_functions(FunctionVersion="ALL")["Functions"]
    assert any(f["FunctionArn"].endswith(f"{names[0]}:$LATEST") for f in all_versions)
    paginator = lam.get_paginator("list_functions")
    via_paginator = [
        f["FunctionName"]
        for p in paginator.paginate(PaginationConfig={"PageSize": 2})
        for f in p["Functions"]
    ]
    assert [n for n in via_paginator if n.startswith(prefix)] == names
    for name in names:
        lam.delete_function(FunctionName=name)


def test_update_configuration_fields(lam: Any, role: str) -> None:
    name = unique_name()
    _create(lam, role, name)
    wait_settled(lam, name)
    result = lam.update_function_configuration(
        FunctionName=name,
        Handler="other.handler",
        EphemeralStorage={"Size": 1024},
        TracingConfig={"Mode": "Active"},
        DeadLetterConfig={"TargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq"},
        LoggingConfig={"LogFormat": "JSON"},
    )
    assert result["Handler"] == "other.handler"
    assert result["EphemeralStorage"] == {"Size": 1024}
    assert result["TracingConfig"] == {"Mode": "Active"}
    assert result["DeadLetterConfig"] == {"TargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq"}
    assert result["LoggingConfig"] == {
        "ApplicationLogLevel": "INFO",
        "LogFormat": "JSON",
        "LogGroup": f"/aws/lambda/{name}",
        "SystemLogLevel": "INFO",
    }
    settled = wait_settled(lam, name)
    assert settled["Handler"] == "other.handler"
    lam.delete_function(FunctionName=name)


def test_revision_id_changes_on_every_change(lam: Any, role: str) -> None:
    name = unique_name()
    seen = {_create(lam, role, name)["RevisionId"]}
    seen.add(wait_settled(lam, name)["RevisionId"])
    seen.add(lam.update_function_configuration(FunctionName=name, Description="x")["RevisionId"])
    seen.add(wait_settled(lam, name)["RevisionId"])
    seen.add(
        lam.update_function_code(FunctionName=name, ZipFile=make_zip({"a.py": "x=1"}))["RevisionId"]
    )
    seen.add(wait_settled(lam, name)["RevisionId"])
    assert len(seen) == 6
    lam.delete_function(FunctionName=name)


def test_update_code_dry_run_changes_nothing(lam: Any, role: str) -> None:
    name = unique_name()
    _create(lam, role, name)
    before = wait_settled(lam, name)
    new_zip = make_zip({"x.py": "y = 2"})
    dry = lam.update_function_code(FunctionName=name, ZipFile=new_zip, DryRun=True)
    assert dry["CodeSha256"] == base64.b64encode(hashlib.sha256(new_zip).digest()).decode()
    after = lam.get_function_configuration(FunctionName=name)
    assert after["CodeSha256"] == before["CodeSha256"]
    assert after["RevisionId"] == before["RevisionId"]
    lam.delete_function(FunctionName=name)


def test_create_with_tags_and_account_settings(lam: Any, role: str) -> None:
    before = lam.get_account_settings()
    assert shape(before) == shape(
        {
            "AccountLimit": {
                k: 1
                for k in (
                    "TotalCodeSize",
                    "CodeSizeUnzipped",
                    "CodeSizeZipped",
                    "ConcurrentExecutions",
                    "UnreservedConcurrentExecutions",
                )
            },
            "AccountUsage": {"TotalCodeSize": 1, "FunctionCount": 1},
        }
    )
    assert before["AccountLimit"]["CodeSizeZipped"] == 52428800
    assert before["AccountLimit"]["CodeSizeUnzipped"] == 262144000
    name = unique_name()
    _create(lam, role, name, Tags={"key_a": "value_a"})
    after = lam.get_account_settings()
    assert after["AccountUsage"]["FunctionCount"] == before["AccountUsage"]["FunctionCount"] + 1
    assert after["AccountUsage"]["TotalCodeSize"] == before["AccountUsage"]["TotalCodeSize"] + len(
        make_zip()
    )
    assert lam.list_tags(Resource=f"arn:aws:lambda:us-east-1:000000000000:function:{name}")[
        "Tags"
    ] == {"key_a": "value_a"}
    lam.delete_function(FunctionName=name)


def test_restart_keeps_everything(tmp_path: Any, role: str) -> None:
    first = start_server(tmp_path / "data")
    try:
        lam = first.client()
        name = unique_name()
        _create(lam, role, name, Tags={"k": "v"}, Description="kept")
        config = wait_settled(lam, name)
        config.pop("ResponseMetadata")
        lam.close()
    finally:
        assert first.stop() == 0, first.log()
    second = start_server(tmp_path / "data")
    try:
        assert (second.access_key_id, second.secret_access_key) == (
            first.access_key_id,
            first.secret_access_key,
        )
        assert "created now" not in second.log()
        lam = second.client()
        again = lam.get_function(FunctionName=name)
        assert again["Configuration"] == {**config}
        assert again["Tags"] == {"k": "v"}
        with urllib.request.urlopen(again["Code"]["Location"], timeout=10) as response:
            assert response.read() == make_zip()
        lam.close()
    finally:
        assert second.stop() == 0, second.log()
