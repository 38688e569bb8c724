"""Aliases through boto3 and the AWS CLI: lifecycle, weighted routing, AWS's errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdaplane.testing import ServerProcess
from tests.integration.helpers import reference, wait_settled
from tests.integration.test_versions import call, create, error, update

ACCOUNT = "000000000000"
ALIAS_TEST = "TestLambdaAlias::test_notfound_and_invalid_routingconfigs"


def arn(name: str, qualifier: str | None = None) -> str:
    base = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
    return f"{base}:{qualifier}" if qualifier else base


def aws_message(test: str, step: str, name: str) -> str:
    """A recorded AWS message with its placeholders filled in for this server and function."""
    message: str = reference(test, step)["Error"]["Message"]
    return message.replace(
        "arn:<partition>:lambda:<region>:111111111111", f"arn:aws:lambda:us-east-1:{ACCOUNT}"
    ).replace("<function-name:1>", name)


@pytest.fixture
def two_versions(lam: Any, role: str) -> str:
    """A function whose version 1 says "one" and version 2 says "two"."""
    name = create(lam, role, "one")
    lam.publish_version(FunctionName=name)
    update(lam, name, "two")
    lam.publish_version(FunctionName=name)
    return name


def test_alias_lifecycle(lam: Any, two_versions: str) -> None:
    name = two_versions
    created = lam.create_alias(
        FunctionName=name,
        Name="live",
        FunctionVersion="1",
        Description="custom-alias",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.2}},
    )
    recorded = reference("TestLambdaAlias::test_alias_lifecycle", "create_alias_1_1")
    assert set(created) == set(recorded)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["AliasArn"] == arn(name, "live")
    assert created["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.2}}
    got = lam.get_alias(FunctionName=name, Name="live")
    got.pop("ResponseMetadata")
    created.pop("ResponseMetadata")
    assert got == created

    lam.create_alias(FunctionName=name, Name="plain", FunctionVersion="2")
    plain = lam.get_alias(FunctionName=arn(name), Name="plain")
    assert "RoutingConfig" not in plain
    assert plain["Description"] == ""

    listed = lam.list_aliases(FunctionName=name)["Aliases"]
    assert [a["Name"] for a in listed] == ["live", "plain"]
    assert [
        a["Name"] for a in lam.list_aliases(FunctionName=name, FunctionVersion="2")["Aliases"]
    ] == ["plain"]
    page = lam.list_aliases(FunctionName=name, MaxItems=1)
    assert [a["Name"] for a in page["Aliases"]] == ["live"]
    rest = lam.list_aliases(FunctionName=name, Marker=page["NextMarker"])
    assert [a["Name"] for a in rest["Aliases"]] == ["plain"]

    updated = lam.update_alias(
        FunctionName=name, Name="live", RoutingConfig={"AdditionalVersionWeights": {}}
    )
    assert "RoutingConfig" not in updated
    assert updated["Description"] == "custom-alias"  # left as it was
    assert updated["RevisionId"] != created["RevisionId"]

    err = error(lam.update_alias, FunctionName=name, Name="live", RevisionId=created["RevisionId"])
    recorded = reference(
        "TestLambdaRevisions::test_function_revisions_version_and_alias",
        "update_alias_revision_exception",
    )
    assert err["Error"] == recorded["Error"]
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 412

    # GetFunction through an alias shows the version it points at, under the alias's ARN.
    through = lam.get_function_configuration(FunctionName=name, Qualifier="plain")
    assert (through["Version"], through["FunctionArn"]) == ("2", arn(name, "plain"))

    lam.delete_alias(FunctionName=name, Name="live")
    lam.delete_alias(FunctionName=name, Name="live")  # already gone: no error, as on AWS
    assert [a["Name"] for a in lam.list_aliases(FunctionName=name)["Aliases"]] == ["plain"]


def test_invoke_through_an_alias(lam: Any, two_versions: str) -> None:
    name = two_versions
    lam.create_alias(FunctionName=name, Name="prod", FunctionVersion="1")
    response, body = call(lam, name, Qualifier="prod")
    assert response["ExecutedVersion"] == "1"
    assert body["says"] == "one"
    assert body["version"] == "1"
    assert body["invoked_arn"] == arn(name, "prod")
    lam.update_alias(FunctionName=name, Name="prod", FunctionVersion="2")
    response, body = call(lam, f"{name}:prod")
    assert (response["ExecutedVersion"], body["says"]) == ("2", "two")


def test_weighted_routing_splits_invocations(lam: Any, two_versions: str) -> None:
    name = two_versions
    lam.create_alias(
        FunctionName=name,
        Name="canary",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}},
    )
    executed: Counter[str] = Counter()
    says: Counter[str] = Counter()
    for _ in range(1000):
        response, body = call(lam, name, Qualifier="canary")
        executed[response["ExecutedVersion"]] += 1
        says[body["says"]] += 1
    assert executed["1"] + executed["2"] == 1000
    assert 250 <= executed["2"] <= 350, executed
    assert says["two"] == executed["2"]  # the header says which version really ran


def test_alias_errors_match_aws(lam: Any, raw_lam: Any, two_versions: str) -> None:
    name = two_versions
    lam.create_alias(FunctionName=name, Name="custom", FunctionVersion="1")
    cases: list[tuple[str, dict[str, Any]]] = [
        ("routing_config_exc_toomany", {"FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.5, "3": 0.2}}}),
        ("routing_config_exc_toohigh", {"FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"2": 2}}}),
        ("routing_config_exc_subzero", {"FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"2": -1}}}),
        ("routing_config_exc_sameversion", {"FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"1": 0.5}}}),
        ("target_version_doesnotexist", {"FunctionVersion": "10"}),
        ("routing_config_exc_version_doesnotexist", {"FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"10": 0.5}}}),
        ("target_version_exc_version_latest", {"FunctionVersion": "$LATEST", "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.5}}}),
        ("routing_config_exc_version_latest", {"FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"$LATEST": 0.5}}}),
    ]  # fmt: skip
    for step, params in cases:
        recorded = reference(ALIAS_TEST, step)
        err = error(raw_lam.create_alias, FunctionName=name, Name="fresh", **params)
        assert err["Error"]["Code"] == recorded["Error"]["Code"], step
        assert err["Error"]["Message"] == aws_message(ALIAS_TEST, step, name), step
        status = recorded["ResponseMetadata"]["HTTPStatusCode"]
        assert err["ResponseMetadata"]["HTTPStatusCode"] == status, step

    err = error(lam.create_alias, FunctionName=f"{name}-unknown", Name="fresh", FunctionVersion="1")
    assert err["Error"]["Message"] == aws_message(
        ALIAS_TEST, "routing_config_exc_fn_doesnotexist", name
    )
    err = error(lam.create_alias, FunctionName=name, Name="custom", FunctionVersion="1")
    assert err["Error"]["Message"] == aws_message(
        ALIAS_TEST, "routing_config_exc_already_exist", name
    )
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 409
    err = error(lam.get_alias, FunctionName=name, Name="non-existent")
    assert err["Error"]["Message"] == aws_message(ALIAS_TEST, "alias_does_not_exist_esc", name)
    err = error(lam.update_alias, FunctionName=name, Name="non-existent", FunctionVersion="1")
    assert err["Error"]["Message"] == aws_message(
        "TestLambdaAlias::test_non_existent_alias_update", "update_alias_response", name
    )
    err = error(raw_lam.create_alias, FunctionName=name, Name="2024", FunctionVersion="1")
    assert err["Error"] == {
        k: v
        for k, v in reference(
            "TestLambdaAlias::test_alias_naming", "create_alias_number_exception"
        )["Error"].items()
    }
    err = error(lam.get_function, FunctionName=name, Qualifier="aliasdoesnotexist")
    assert err["Error"]["Message"] == aws_message(
        "TestLambdaAlias::test_alias_lifecycle", "get_function_alias_notfound_exc", name
    )
    err = error(lam.invoke, FunctionName=name, Qualifier="aliasdoesnotexist", Payload=b"{}")
    assert err["Error"]["Code"] == "ResourceNotFoundException"
    # Nothing above changed anything.
    assert [a["Name"] for a in lam.list_aliases(FunctionName=name)["Aliases"]] == ["custom"]


def test_event_invoke_config_on_versions_and_aliases(lam: Any, two_versions: str) -> None:
    name = two_versions
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    for qualifier in ("1", "live"):
        lam.put_function_event_invoke_config(
            FunctionName=name, Qualifier=qualifier, MaximumRetryAttempts=0
        )
        got = lam.get_function_event_invoke_config(FunctionName=name, Qualifier=qualifier)
        assert got["FunctionArn"] == arn(name, qualifier)
    err = error(lam.get_function_event_invoke_config, FunctionName=name, Qualifier="1221")
    recorded = reference(
        "TestLambdaFunction::test_ops_on_nonexisting_version[get_function_event_invoke_config]",
        "version_not_found_exception",
    )
    assert err["Error"]["Message"] == recorded["Error"]["Message"].replace(
        "arn:<partition>:lambda:<region>:111111111111:function:<fn-name>", arn(name)
    )
    err = error(
        lam.put_function_event_invoke_config,
        FunctionName=name,
        Qualifier="9",
        MaximumRetryAttempts=0,
    )
    assert err["Error"]["Code"] == "ResourceNotFoundException"


def test_async_invoke_through_an_alias(lam: Any, two_versions: str) -> None:
    name = two_versions
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="2")
    accepted = lam.invoke(
        FunctionName=name, Qualifier="live", InvocationType="Event", Payload=b"{}"
    )
    assert accepted["StatusCode"] == 202
    accepted["Payload"].read()


def _aws(server: ServerProcess, *args: str) -> Any:
    aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or "aws"
    done = subprocess.run(
        [aws, "lambda", *args, "--endpoint-url", server.endpoint, "--output", "json"],
        capture_output=True,
        text=True,
        env=server.cli_env(),
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout) if done.stdout.strip() else None


def test_aws_cli_versions_and_aliases(
    server: ServerProcess, lam: Any, role: str, tmp_path: Path
) -> None:
    name = create(lam, role, "one")
    published = _aws(server, "publish-version", "--function-name", name, "--description", "cli")
    assert published["Version"] == "1"
    alias = _aws(
        server, "create-alias", "--function-name", name, "--name", "live", "--function-version", "1",
        "--routing-config", "AdditionalVersionWeights={}",
    )  # fmt: skip
    assert alias["AliasArn"] == arn(name, "live")
    versions = _aws(server, "list-versions-by-function", "--function-name", name)
    assert [v["Version"] for v in versions["Versions"]] == ["$LATEST", "1"]
    out = tmp_path / "out.json"
    meta = _aws(server, "invoke", "--function-name", name, "--qualifier", "live", str(out))
    assert meta["ExecutedVersion"] == "1"
    assert json.loads(out.read_text())["says"] == "one"
    aliases = _aws(server, "list-aliases", "--function-name", name)
    assert [a["Name"] for a in aliases["Aliases"]] == ["live"]
    _aws(server, "delete-alias", "--function-name", name, "--name", "live")
    with pytest.raises(ClientError):
        lam.get_alias(FunctionName=name, Name="live")


def test_routing_needs_the_same_role(lam: Any, role: str) -> None:
    name = create(lam, role)
    lam.publish_version(FunctionName=name)
    lam.update_function_configuration(FunctionName=name, Role=role + "-other")
    wait_settled(lam, name)
    lam.publish_version(FunctionName=name)
    err = error(
        lam.create_alias,
        FunctionName=name,
        Name="split",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
    )
    assert err["Error"] == {
        "Code": "InvalidParameterValueException",
        "Message": "Specified versions must be associated with the same execution role",
    }
