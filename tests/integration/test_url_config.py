"""Function URL configs through boto3 and the AWS CLI: lifecycle, paging, AWS's errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from lambdaplane.store import AliasRepository, FunctionRepository, StoredAlias, upgrade
from lambdaplane.store.url_configs import StoredUrlConfig, UrlConfigExists, UrlConfigRepository
from lambdaplane.testing import ServerProcess
from tests.integration.helpers import _reference_dir, reference, shape
from tests.integration.test_store import _fn
from tests.integration.test_versions import create, error

ACCOUNT = "000000000000"
URL = re.compile(r"http://([a-z0-9]{32})\.lambda-url\.us-east-1\.localhost:(\d+)/")
LIFECYCLE = "TestLambdaUrl::test_url_config_lifecycle"
EXCEPTIONS = "TestLambdaUrl::test_url_config_exceptions"
PAGING = "TestLambdaUrl::test_url_config_list_paging"
NO_QUALIFIER = "TestLambdaUrl::test_url_config_deletion_without_qualifier"


def arn(name: str, qualifier: str | None = None) -> str:
    base = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
    return f"{base}:{qualifier}" if qualifier else base


def aws_error(test: str, step: str, name: str) -> dict[str, Any]:
    """A recorded error with this server's ARN in place of AWS's placeholders."""
    recorded: dict[str, Any] = reference(test, step)
    text = json.dumps(recorded["Error"])
    text = text.replace(
        "arn:<partition>:lambda:<region>:111111111111", f"arn:aws:lambda:us-east-1:{ACCOUNT}"
    )
    return {
        **json.loads(text.replace("<resource:1>", name)),
        "status": recorded["ResponseMetadata"]["HTTPStatusCode"],
    }


def behaviour_reference(test: str, step: str) -> Any:
    """A step recorded by AWS in ``test_lambda.snapshot.json`` (the behaviour tests)."""
    data = json.loads((_reference_dir() / "test_lambda.snapshot.json").read_text())
    return data[f"tests/aws/services/lambda_/test_lambda.py::{test}"]["recorded-content"][step]


def seen(err: dict[str, Any]) -> dict[str, Any]:
    return {**err["Error"], "status": err["ResponseMetadata"]["HTTPStatusCode"]}


@pytest.fixture
def fn(lam: Any, role: str) -> str:
    return create(lam, role)


def test_url_config_lifecycle(lam: Any, fn: str, server: ServerProcess) -> None:
    created = lam.create_function_url_config(FunctionName=fn, AuthType="NONE")
    assert shape(created) == shape(reference(LIFECYCLE, "url_creation"))
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["FunctionArn"] == arn(fn)
    match = URL.fullmatch(created["FunctionUrl"])
    assert match and int(match.group(2)) == server.port

    dup = error(lam.create_function_url_config, FunctionName=fn, AuthType="NONE")
    assert seen(dup) == aws_error(LIFECYCLE, "failed_duplication", fn)

    got = lam.get_function_url_config(FunctionName=fn)
    assert shape(got) == shape(reference(LIFECYCLE, "get_url_config"))
    assert (got["InvokeMode"], got["FunctionUrl"]) == ("BUFFERED", created["FunctionUrl"])
    assert got["CreationTime"] == created["CreationTime"]

    updated = lam.update_function_url_config(FunctionName=fn, AuthType="AWS_IAM")
    assert shape(updated) == shape(reference(LIFECYCLE, "updated_url_config"))
    assert updated["AuthType"] == "AWS_IAM"
    assert updated["FunctionUrl"] == created["FunctionUrl"]  # the url id is stable

    cors = {
        "AllowOrigins": ["http://a.example"],
        "AllowMethods": ["GET", "POST"],
        "AllowHeaders": ["x-custom"],
        "ExposeHeaders": ["x-served-by"],
        "MaxAge": 60,
        "AllowCredentials": True,
    }
    with_cors = lam.update_function_url_config(
        FunctionName=fn, Cors=cors, InvokeMode="RESPONSE_STREAM"
    )
    assert (with_cors["Cors"], with_cors["InvokeMode"]) == (cors, "RESPONSE_STREAM")
    assert with_cors["AuthType"] == "AWS_IAM"  # left as it was
    assert lam.get_function_url_config(FunctionName=fn)["Cors"] == cors

    deleted = lam.delete_function_url_config(FunctionName=fn)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    gone = error(lam.get_function_url_config, FunctionName=fn)
    assert seen(gone) == aws_error(LIFECYCLE, "failed_getter", fn)


def test_invoke_mode_is_reported_as_aws_does(lam: Any, fn: str) -> None:
    created = lam.create_function_url_config(
        FunctionName=fn, AuthType="NONE", InvokeMode="BUFFERED"
    )
    assert created["InvokeMode"] == "BUFFERED"
    modified = lam.update_function_url_config(FunctionName=fn, InvokeMode="RESPONSE_STREAM")
    assert modified["InvokeMode"] == "RESPONSE_STREAM"
    untouched = lam.update_function_url_config(FunctionName=fn)
    assert untouched["InvokeMode"] == "RESPONSE_STREAM"


def test_invalid_invoke_mode(raw_lam: Any, fn: str) -> None:
    err = error(
        raw_lam.create_function_url_config, FunctionName=fn, AuthType="NONE", InvokeMode="UNKNOWN"
    )
    recorded = behaviour_reference(
        "TestLambdaURL::test_lambda_url_invalid_invoke_mode", "invoke_function_invalid_invoke_type"
    )
    assert err["Error"] == recorded["Error"]


def test_url_config_exceptions(lam: Any, raw_lam: Any, fn: str) -> None:
    lam.publish_version(FunctionName=fn)
    lam.create_alias(FunctionName=fn, Name="urlalias", FunctionVersion="1")
    missing = "doesnotexist-" + fn[-6:]
    cases: dict[str, dict[str, Any]] = {
        "name_doesnotexist": {"FunctionName": missing},
        "arn_doesnotexist": {"FunctionName": arn(missing)},
        "name_doesnotexist_qualifier": {"FunctionName": missing, "Qualifier": "1"},
        "qualifier_version": {"FunctionName": fn, "Qualifier": "1"},
        "qualifier_version_doesnotexist": {"FunctionName": fn, "Qualifier": "2"},
        "qualifier_alias_doesnotexist": {"FunctionName": fn, "Qualifier": "nonexistent"},
        "qualifier_alias_doesnotmatch_arn": {
            "FunctionName": arn(fn, "urlalias"),
            "Qualifier": "other",
        },
        "qualifier_latest": {"FunctionName": fn, "Qualifier": "$LATEST"},
        "config_doesnotexist": {"FunctionName": fn},
    }
    operations = {
        "create_function_url_config": {"AuthType": "NONE"},
        "get_function_url_config": {},
        "delete_function_url_config": {},
        "update_function_url_config": {"AuthType": "NONE"},
    }
    checked = 0
    for operation, extra in operations.items():
        for case, args in cases.items():
            step = f"{operation}_{case}"
            try:
                recorded = reference(EXCEPTIONS, step)
            except KeyError:
                continue
            if not isinstance(recorded, dict):  # AWS failed internally: nothing to match
                continue
            err = error(getattr(raw_lam, operation), **args, **extra)
            assert seen(err) == aws_error(EXCEPTIONS, step, fn), step
            checked += 1
    assert checked >= 30


def test_list_paging(lam: Any, fn: str) -> None:
    missing = error(lam.list_function_url_configs, FunctionName="nope-" + fn[-6:])
    assert seen(missing) == aws_error(PAGING, "list_function_notfound", fn)
    empty = lam.list_function_url_configs(FunctionName=fn)
    assert empty["FunctionUrlConfigs"] == [] and "NextMarker" not in empty
    lam.publish_version(FunctionName=fn)
    lam.create_alias(FunctionName=fn, Name="urlalias", FunctionVersion="1")
    on_fn = lam.create_function_url_config(FunctionName=fn, AuthType="NONE")
    on_alias = lam.create_function_url_config(
        FunctionName=fn, Qualifier="urlalias", AuthType="NONE"
    )
    assert shape(on_alias) == shape(reference(PAGING, "url_config_alias"))
    assert on_alias["FunctionArn"] == arn(fn, "urlalias")
    assert on_alias["FunctionUrl"] != on_fn["FunctionUrl"]
    listed = lam.list_function_url_configs(FunctionName=fn)
    assert shape(listed) == shape(reference(PAGING, "list_all"))
    assert [c["FunctionArn"] for c in listed["FunctionUrlConfigs"]] == [
        arn(fn),
        arn(fn, "urlalias"),
    ]
    first = lam.list_function_url_configs(FunctionName=fn, MaxItems=1)
    assert [c["FunctionArn"] for c in first["FunctionUrlConfigs"]] == [arn(fn)]
    rest = lam.list_function_url_configs(FunctionName=fn, Marker=first["NextMarker"], MaxItems=1)
    assert [c["FunctionArn"] for c in rest["FunctionUrlConfigs"]] == [arn(fn, "urlalias")]
    assert "NextMarker" not in rest


def test_unqualified_delete_keeps_the_alias_url(lam: Any, fn: str) -> None:
    lam.publish_version(FunctionName=fn)
    lam.create_alias(FunctionName=fn, Name="test-alias", FunctionVersion="1")
    lam.create_function_url_config(FunctionName=fn, AuthType="NONE")
    lam.create_function_url_config(FunctionName=fn, Qualifier="test-alias", AuthType="NONE")
    lam.delete_function_url_config(FunctionName=fn)
    gone = error(lam.get_function_url_config, FunctionName=fn)
    assert seen(gone) == aws_error(NO_QUALIFIER, "get_url_config_after_deletion", fn)
    kept = lam.get_function_url_config(FunctionName=fn, Qualifier="test-alias")
    assert shape(kept) == shape(reference(NO_QUALIFIER, "get_url_config_with_alias_after_deletion"))


def test_deleting_the_alias_or_function_deletes_its_urls(lam: Any, fn: str) -> None:
    lam.publish_version(FunctionName=fn)
    lam.create_alias(FunctionName=fn, Name="live", FunctionVersion="1")
    lam.create_function_url_config(FunctionName=fn, Qualifier="live", AuthType="NONE")
    lam.delete_alias(FunctionName=fn, Name="live")
    lam.create_alias(FunctionName=fn, Name="live", FunctionVersion="1")
    error(lam.get_function_url_config, FunctionName=fn, Qualifier="live")
    lam.create_function_url_config(FunctionName=fn, AuthType="NONE")
    lam.delete_function(FunctionName=fn)
    nf = error(lam.get_function_url_config, FunctionName=fn)
    assert nf["Error"]["Code"] == "ResourceNotFoundException"


def test_nonexisting_function_and_wrong_region(lam: Any) -> None:
    err = error(lam.get_function_url_config, FunctionName="doesnotexist-url")
    recorded = reference(
        "TestLambdaFunction::test_ops_on_nonexisting_fn[get_function_url_config]",
        "not_found_exception",
    )
    assert err["Error"] == recorded["Error"]
    wrong = error(
        lam.get_function_url_config,
        FunctionName="arn:aws:lambda:eu-west-1:000000000000:function:x",
    )
    assert wrong["Error"]["Message"] == (
        "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')"
    )


def test_cli_create_function_url_config(server: ServerProcess, fn: str) -> None:
    aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or "aws"
    result = subprocess.run(
        [
            aws, "lambda", "create-function-url-config", "--function-name", fn,
            "--auth-type", "NONE", "--cors", "AllowOrigins=http://a.example,MaxAge=5",
            "--endpoint-url", server.endpoint, "--output", "json",
        ],
        capture_output=True, text=True, env=server.cli_env(), timeout=60, check=True,
    )  # fmt: skip
    created = json.loads(result.stdout)
    assert URL.fullmatch(created["FunctionUrl"])
    assert created["Cors"] == {"AllowOrigins": ["http://a.example"], "MaxAge": 5}


# -- the store, on SQLite and PostgreSQL ------------------------------------------------


def test_store_round_trip(bare_engine: sa.Engine) -> None:
    upgrade(bare_engine)
    functions = FunctionRepository(bare_engine, ACCOUNT, "us-east-1")
    functions.create(_fn("f"))
    aliases = AliasRepository(bare_engine, ACCOUNT, "us-east-1")
    aliases.create(StoredAlias("f", "live", "$LATEST", "", "r1"))
    urls = UrlConfigRepository(bare_engine, ACCOUNT, "us-east-1")
    latest = StoredUrlConfig("f", "$LATEST", "a" * 32, "NONE", None, None, 1.0, 1.0)
    live = StoredUrlConfig("f", "live", "b" * 32, "AWS_IAM", "BUFFERED", {"MaxAge": 3}, 2.0, 2.0)
    assert urls.create(latest) and urls.create(live)
    with pytest.raises(UrlConfigExists):
        urls.create(StoredUrlConfig("f", "$LATEST", "c" * 32, "NONE", None, None, 3.0, 3.0))
    assert not urls.create(StoredUrlConfig("gone", "$LATEST", "d" * 32, "NONE", None, None, 1, 1))
    got = urls.by_url_id("b" * 32)
    assert got is not None and (got.qualifier, got.cors, got.auth_type) == (
        "live",
        {"MaxAge": 3},
        "AWS_IAM",
    )
    page = urls.of_function("f")
    assert [c.qualifier for c in page] == ["$LATEST", "live"]
    assert [c.qualifier for c in urls.of_function("f", after=page[0].position)] == ["live"]
    assert urls.replace(StoredUrlConfig("f", "live", "b" * 32, "NONE", None, None, 2.0, 5.0))
    replaced = urls.get("f", "live")
    assert replaced is not None and (replaced.auth_type, replaced.last_modified) == ("NONE", 5.0)
    assert aliases.delete("f", "live")  # the alias's URL goes with it
    assert urls.get("f", "live") is None
    assert functions.delete("f")  # and the function's with the function
    assert urls.by_url_id("a" * 32) is None
