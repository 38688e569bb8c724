"""Every bad input gets AWS's error code, status and message, and changes nothing."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdaplane.testing import ServerProcess, make_zip, signed_request
from tests.integration.helpers import RUNTIME, reference, unique_name, wait_settled

ACCOUNT = "000000000000"
FUNCTION_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
    r"(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?"
)


def _error(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    response: dict[str, Any] = exc.value.response
    return response


def _create_kwargs(role: str, name: str, **extra: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": RUNTIME,
        "Role": role,
        "Handler": "handler.handler",
        "Code": {"ZipFile": make_zip()},
    }
    kwargs.update(extra)
    return kwargs


def _function_count(lam: Any) -> int:
    return int(lam.get_account_settings()["AccountUsage"]["FunctionCount"])


@pytest.fixture
def existing(lam: Any, role: str) -> str:
    name = unique_name("existing")
    lam.create_function(**_create_kwargs(role, name))
    wait_settled(lam, name)
    return name


def test_duplicate_function(lam: Any, role: str, existing: str) -> None:
    err = _error(lam.create_function, **_create_kwargs(role, existing))
    assert err["Error"]["Code"] == "ResourceConflictException"
    assert err["Error"]["Message"] == f"Function already exist: {existing}"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert err["Type"] == "User"


def test_missing_function_everywhere(lam: Any) -> None:
    name = unique_name("missing")
    arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
    for call, kwargs in [
        (lam.get_function, {"FunctionName": name}),
        (lam.get_function_configuration, {"FunctionName": name}),
        (lam.delete_function, {"FunctionName": name}),
        (lam.update_function_configuration, {"FunctionName": name, "Description": "x"}),
        (lam.update_function_code, {"FunctionName": name, "ZipFile": make_zip()}),
        (lam.list_tags, {"Resource": arn}),
        (lam.tag_resource, {"Resource": arn, "Tags": {"a": "b"}}),
        (lam.untag_resource, {"Resource": arn, "TagKeys": ["a"]}),
    ]:
        err = _error(call, **kwargs)
        assert err["Error"]["Code"] == "ResourceNotFoundException", call
        assert err["Error"]["Message"] == f"Function not found: {arn}"
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 404
    err = _error(lam.get_function, FunctionName=name, Qualifier="1221")
    assert err["Error"]["Message"] == f"Function not found: {arn}:1221"


@pytest.mark.parametrize(
    "bad_name",
    [
        "my-function!",
        "*",
        "invalid-account:function:my-function",
        f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:my-function:$LATES",
        "arn:aws:ec2:us-east-1:000000000000:instance:i-1234567890abcdef0",
        "function:my-function:$LATEST:extra",
    ],
)
def test_invalid_function_names(raw_lam: Any, bad_name: str) -> None:
    err = _error(raw_lam.get_function, FunctionName=bad_name)
    assert err["Error"]["Code"] == "ValidationException"
    assert err["Error"]["Message"] == (
        f"1 validation error detected: Value '{bad_name}' at 'functionName' failed to satisfy "
        f"constraint: Member must satisfy regular expression pattern: {FUNCTION_PATTERN}"
    )
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_name_too_long_on_create(raw_lam: Any, role: str) -> None:
    expected = reference("TestLambdaFunction::test_function_arns", "long_function_name_exc")
    name = "a" * 65
    err = _error(raw_lam.create_function, **_create_kwargs(role, name))
    assert err["Error"] == {
        "Code": expected["Error"]["Code"],
        "Message": expected["Error"]["Message"],
    }
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_qualifier_and_region_rules(lam: Any, raw_lam: Any, existing: str) -> None:
    err = _error(raw_lam.get_function, FunctionName=f"{existing}:1", Qualifier="2")
    assert err["Error"] == {
        "Code": "InvalidParameterValueException",
        "Message": "The derived qualifier from the function name does not match the specified qualifier.",
    }
    err = _error(
        lam.get_function,
        FunctionName=f"arn:aws:lambda:ap-southeast-1:{ACCOUNT}:function:{existing}",
    )
    assert err["Error"]["Code"] == "ResourceNotFoundException"
    assert (
        err["Error"]["Message"]
        == "Functions from 'ap-southeast-1' are not reachable in this region ('us-east-1')"
    )
    err = _error(
        lam.get_function, FunctionName=f"arn:aws:lambda:us-east-1:111111111111:function:{existing}"
    )
    assert err["Error"]["Code"] == "AccessDeniedException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 403
    err = _error(lam.delete_function, FunctionName=existing, Qualifier="$LATEST")
    assert (
        err["Error"]["Message"]
        == "$LATEST version cannot be deleted without deleting the function."
    )
    assert lam.get_function(FunctionName=existing)


def test_validation_errors_match_aws(raw_lam: Any, role: str, lam: Any) -> None:
    before = _function_count(lam)
    name = unique_name()
    expected = reference(
        "TestLambdaFunction::test_create_lambda_exceptions", "invalid_role_arn_exc"
    )["Error"]
    err = _error(raw_lam.create_function, **_create_kwargs("r1", name))
    assert err["Error"] == expected

    for runtime in ["non-existent-runtime", "PYTHON3.9"]:
        err = _error(raw_lam.create_function, **_create_kwargs(role, name, Runtime=runtime))
        assert err["Error"]["Code"] == "InvalidParameterValueException"
        assert err["Error"]["Message"].startswith(
            f"Value {runtime} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: ["
        )
        assert err["Error"]["Message"].endswith("] or be a valid ARN")
        assert RUNTIME in err["Error"]["Message"]

    err = _error(raw_lam.create_function, **_create_kwargs(role, name, Runtime="python3.7"))
    assert err["Error"]["Message"] == (
        "The runtime parameter of python3.7 is no longer supported for creating or updating AWS "
        "Lambda functions. We recommend you use a supported runtime while creating or updating functions."
    )

    expected = reference(
        "TestLambdaFunction::test_create_lambda_exceptions", "multiple_architectures"
    )["Error"]
    err = _error(
        raw_lam.create_function, **_create_kwargs(role, name, Architectures=["x86_64", "arm64"])
    )
    assert err["Error"] == expected
    expected = reference(
        "TestLambdaFunction::test_create_lambda_exceptions", "uppercase_architecture"
    )["Error"]
    err = _error(raw_lam.create_function, **_create_kwargs(role, name, Architectures=["X86_64"]))
    assert err["Error"] == expected

    for field, value, limit, word in [
        ("MemorySize", 10241, 10240, "less"),
        ("MemorySize", 127, 128, "greater"),
        ("Timeout", 901, 900, "less"),
        ("Timeout", 0, 1, "greater"),
    ]:
        err = _error(raw_lam.create_function, **_create_kwargs(role, name, **{field: value}))
        lower = field[0].lower() + field[1:]
        assert err["Error"] == {
            "Code": "ValidationException",
            "Message": f"1 validation error detected: Value '{value}' at '{lower}' failed to satisfy "
            f"constraint: Member must have value {word} than or equal to {limit}",
        }
    err = _error(
        raw_lam.create_function, **_create_kwargs(role, name, EphemeralStorage={"Size": 10241})
    )
    assert err["Error"]["Message"] == (
        "1 validation error detected: Value '10241' at 'ephemeralStorage.size' failed to satisfy "
        "constraint: Member must have value less than or equal to 10240"
    )
    expected = reference(
        "TestLambdaFunction::test_list_functions", "list_functions_invalid_functionversion"
    )["Error"]
    assert _error(raw_lam.list_functions, FunctionVersion="invalid")["Error"] == expected
    assert _function_count(lam) == before


def test_environment_limits(raw_lam: Any, role: str, lam: Any, existing: str) -> None:
    name = unique_name()
    big = {"LARGE_VAR": "x" * 4096}
    err = _error(
        raw_lam.create_function, **_create_kwargs(role, name, Environment={"Variables": big})
    )
    assert err["Error"]["Code"] == "InvalidParameterValueException"
    assert err["Error"]["Message"] == (
        "Lambda was unable to configure your environment variables because the environment variables "
        "you have provided exceeded the 4KB limit. String measured: "
        + json.dumps(big, separators=(",", ":"))
    )
    err = _error(
        raw_lam.update_function_configuration,
        FunctionName=existing,
        Environment={"Variables": {"AWS_REGION": "x"}},
    )
    assert err["Error"]["Code"] == "InvalidParameterValueException"
    assert "Reserved keys used in this request: AWS_REGION" in err["Error"]["Message"]
    assert "Environment" not in lam.get_function_configuration(FunctionName=existing)


def _zip_with(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buf.getvalue()


def test_bad_zips_are_refused_before_anything_is_written(
    raw_lam: Any, role: str, lam: Any, server: ServerProcess
) -> None:
    unzip_error = "Could not unzip uploaded file. Please check your file, then try to upload again."
    link = zipfile.ZipInfo("evil-link")
    link.external_attr = 0o120777 << 16
    bad = {
        "corrupt": b"PK\x03\x04 this is not a zip",
        "traversal": _zip_with([("../../evil.py", b"x")]),
        "absolute": _zip_with([("/etc/evil.py", b"x")]),
        "symlink-out": _zip_with([(link, b"/etc/shadow")]),
    }
    blobs_before = sorted(p.name for p in (server.data_dir / "code").rglob("*"))
    before = _function_count(lam)
    for label, data in bad.items():
        err = _error(
            raw_lam.create_function, **_create_kwargs(role, unique_name(), Code={"ZipFile": data})
        )
        assert err["Error"] == {"Code": "InvalidParameterValueException", "Message": unzip_error}, (
            label
        )
    assert _function_count(lam) == before
    assert sorted(p.name for p in (server.data_dir / "code").rglob("*")) == blobs_before


@pytest.mark.slow
def test_size_limits(raw_lam: Any, role: str, server: ServerProcess) -> None:
    # 251 MB of zeros compresses to a small zip: refused for its unzipped size.
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("big.bin", "w", force_zip64=True) as handle,
    ):
        chunk = b"\0" * (1 << 20)
        for _ in range(251):
            handle.write(chunk)
    err = _error(
        raw_lam.create_function,
        **_create_kwargs(role, unique_name(), Code={"ZipFile": buf.getvalue()}),
    )
    assert err["Error"] == {
        "Code": "InvalidParameterValueException",
        "Message": "Unzipped size must be smaller than 262144000 bytes",
    }

    # Over 50 MB zipped (incompressible): 413.
    import os

    blob = os.urandom(50 * 1024 * 1024 + 1024)
    big_zip = _zip_with([("blob.bin", blob)])
    err = _error(
        raw_lam.create_function, **_create_kwargs(role, unique_name(), Code={"ZipFile": big_zip})
    )
    assert err["Error"] == {
        "Code": "RequestEntityTooLargeException",
        "Message": "Zipped size must be smaller than 52428800 bytes",
    }
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 413

    # A body over the front door's limit: 413 before it is even parsed.
    status, headers, body = signed_request(
        server, "POST", "/2015-03-31/functions", b"{" + b" " * 70_167_300 + b"}"
    )
    assert status == 413
    assert headers["x-amzn-errortype"].split(":")[0] == "RequestEntityTooLargeException"
    assert json.loads(body) == {
        "message": "Request must be smaller than 70167211 bytes for the CreateFunction operation"
    }


def test_malformed_json_unknown_fields_and_wrong_types(
    server: ServerProcess, lam: Any, role: str
) -> None:
    before = _function_count(lam)
    path = "/2015-03-31/functions"
    cases = {
        "malformed": b'{"FunctionName": "x",',
        "not-an-object": b"[1, 2]",
        "unknown-field": json.dumps(
            {"FunctionName": unique_name(), "Role": role, "Code": {}, "Bogus": 1}
        ).encode(),
        "unknown-nested": json.dumps(
            {"FunctionName": unique_name(), "Role": role, "Code": {}, "Environment": {"Vars": {}}}
        ).encode(),
        "wrong-type": json.dumps(
            {"FunctionName": unique_name(), "Role": role, "Code": {}, "MemorySize": "big"}
        ).encode(),
    }
    for label, body in cases.items():
        status, headers, payload = signed_request(server, "POST", path, body)
        assert status == 400, label
        assert headers["x-amzn-errortype"].split(":")[0] == "InvalidRequestContentException", label
        decoded = json.loads(payload)
        assert decoded["Type"] == "User"
        assert decoded["message"].startswith("Could not parse request body into json: "), (
            label,
            decoded,
        )
    status, _, payload = signed_request(server, "POST", path, cases["unknown-field"])
    assert 'Unrecognized field "Bogus"' in json.loads(payload)["message"]
    assert _function_count(lam) == before


def test_revision_id_precondition(lam: Any, existing: str) -> None:
    stale = "00000000-0000-0000-0000-000000000000"
    message = (
        "The Revision Id provided does not match the latest Revision Id. "
        "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
    )
    for call, kwargs in [
        (lam.update_function_configuration, {"Description": "nope"}),
        (lam.update_function_code, {"ZipFile": make_zip({"z.py": "1"})}),
    ]:
        err = _error(call, FunctionName=existing, RevisionId=stale, **kwargs)
        assert err["Error"] == {"Code": "PreconditionFailedException", "Message": message}
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 412
    current = lam.get_function_configuration(FunctionName=existing)
    assert current["Description"] == ""
    ok = lam.update_function_configuration(
        FunctionName=existing, Description="yes", RevisionId=current["RevisionId"]
    )
    assert ok["Description"] == "yes"


def test_update_while_in_progress_conflicts(lam: Any, existing: str) -> None:
    lam.update_function_configuration(FunctionName=existing, Description="first")
    # The settler may already have finished; only when it has not is a conflict due.
    try:
        lam.update_function_configuration(FunctionName=existing, Description="second")
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "ResourceConflictException"
        assert exc.response["Error"]["Message"] == (
            "The operation cannot be performed at this time. An update is in progress for resource: "
            f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{existing}"
        )


def test_tag_errors(lam: Any, raw_lam: Any, existing: str) -> None:
    arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{existing}"
    err = _error(lam.tag_resource, Resource=f"{arn}:alias", Tags={"a": "b"})
    assert (
        err["Error"]["Message"]
        == "Tags on function aliases and versions are not supported. Please specify a function ARN."
    )
    err = _error(raw_lam.tag_resource, Resource=arn, Tags={})
    assert err["Error"] == {
        "Code": "InvalidParameterValueException",
        "Message": "An error occurred and the request cannot be processed.",
    }
    err = _error(lam.tag_resource, Resource=arn, Tags={f"k{i}": "v" for i in range(51)})
    assert err["Error"]["Message"] == "Number of tags exceeds resource tag limit."
    assert lam.list_tags(Resource=arn)["Tags"] == {}
    err = _error(raw_lam.list_tags, Resource=f"arn:aws:lambda:us-east-1:{ACCOUNT}:foobar:x")
    assert err["Error"]["Code"] == "ValidationException"


def test_unimplemented_operations_answer_aws_shaped(lam: Any) -> None:
    err = _error(lam.list_code_signing_configs)
    assert err["Error"]["Code"] == "NotImplementedException"
    assert "ListCodeSigningConfigs" in err["Error"]["Message"]
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 501


def test_unknown_path_is_not_html(server: ServerProcess) -> None:
    status, headers, body = signed_request(server, "GET", "/2015-03-31/nothing-here")
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert headers["x-amzn-errortype"].split(":")[0] == "UnknownOperationException"
    json.loads(body)
