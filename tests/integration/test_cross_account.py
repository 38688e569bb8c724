"""Keys of other accounts against a running server: they may invoke exactly what the
functions' resource-based policies grant them, and nothing else."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from lambdaplane.auth.keys import AccessKey, KeyStore
from lambdaplane.testing import ServerProcess
from lambdaplane.testing.server import SAFE_ENV
from tests.integration.test_versions import create, error, wait_version_active

OWN = "000000000000"
OTHER = "111122223333"
ORG = "o-abcdefghij"


def denied(principal: str, action: str, resource: str) -> str:
    return (
        f"User: {principal} is not authorized to perform: {action} on resource: {resource} "
        f"because no resource-based policy allows the {action} action"
    )


def arn(name: str, qualifier: str | None = None) -> str:
    base = f"arn:aws:lambda:us-east-1:{OWN}:function:{name}"
    return f"{base}:{qualifier}" if qualifier else base


def client_for(server: ServerProcess, key: AccessKey) -> Any:
    """A client with ``key``, once the server has taken the new key in (within a second)."""
    client = server.client(
        aws_access_key_id=key.access_key_id, aws_secret_access_key=key.secret_access_key
    )
    deadline = time.monotonic() + 5
    while True:
        try:
            client.list_functions()
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code != "UnrecognizedClientException" or time.monotonic() > deadline:
                assert code == "AccessDeniedException", exc.response
                return client
        time.sleep(0.1)


@pytest.fixture
def function(lam: Any, role: str) -> Iterator[str]:
    """A function with version 1 and alias ``live`` on it."""
    name = create(lam, role)
    lam.publish_version(FunctionName=name)
    wait_version_active(lam, name, "1")
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    yield name
    lam.delete_function(FunctionName=name)


def invoke(client: Any, name: str, **extra: Any) -> Any:
    """What the function says (test_versions' handler: "one")."""
    response = client.invoke(FunctionName=name, Payload=b"{}", **extra)
    return json.loads(response["Payload"].read())["says"]


def grant(lam: Any, name: str, sid: str, principal: str, **extra: Any) -> None:
    lam.add_permission(
        FunctionName=name,
        StatementId=sid,
        Action="lambda:InvokeFunction",
        Principal=principal,
        **extra,
    )


def test_foreign_root_is_denied_until_granted_and_after_revoked(
    server: ServerProcess, lam: Any, function: str
) -> None:
    # A key made with the CLI against the running server's data directory.
    made = subprocess.run(
        [sys.executable, "-m", "lambdaplane", "keys", "add", "--account-id", OTHER,
         "--data-dir", str(server.data_dir), "--json"],
        capture_output=True, text=True, check=True, env={**SAFE_ENV, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    printed = json.loads(made.stdout)
    key = AccessKey(printed["AccessKeyId"], printed["SecretAccessKey"])
    other = client_for(server, key)
    principal = f"arn:aws:iam::{OTHER}:root"

    err = error(other.invoke, FunctionName=function, Payload=b"{}")
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert err["Error"]["Code"] == "AccessDeniedException"
    assert err["Error"]["Message"] == denied(principal, "lambda:InvokeFunction", arn(function))
    err = error(other.invoke_async, FunctionName=function, InvokeArgs=b"{}")
    assert err["Error"]["Code"] == "AccessDeniedException"

    grant(lam, function, "other-account", OTHER)
    assert invoke(other, function) == "one"
    assert invoke(other, arn(function)) == "one"
    assert other.invoke_async(FunctionName=function, InvokeArgs=b"{}")["Status"] == 202
    event = other.invoke(FunctionName=function, InvocationType="Event", Payload=b"{}")
    assert event["StatusCode"] == 202

    # The grant is the unqualified function's: a version or an alias has its own policy.
    err = error(other.invoke, FunctionName=function, Qualifier="live", Payload=b"{}")
    assert err["Error"]["Message"] == denied(
        principal, "lambda:InvokeFunction", arn(function, "live")
    )

    # Invoking is all: reading or changing the function stays the account's business.
    err = error(other.get_function, FunctionName=function)
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert err["Error"]["Message"] == denied(principal, "lambda:GetFunction", arn(function))
    err = error(
        other.add_permission,
        FunctionName=function,
        StatementId="self-grant",
        Action="lambda:*",
        Principal=OTHER,
    )
    assert err["Error"]["Message"] == denied(principal, "lambda:AddPermission", arn(function))
    err = error(other.get_policy, FunctionName=function)
    assert err["Error"]["Code"] == "AccessDeniedException"
    err = error(other.list_functions)
    assert err["Error"]["Message"] == denied(principal, "lambda:ListFunctions", arn("*"))
    # Nor the CloudWatch Logs API on the same endpoint.
    logs_client = boto3.client(
        "logs",
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=key.access_key_id,
        aws_secret_access_key=key.secret_access_key,
    )
    with pytest.raises(ClientError) as info:
        logs_client.describe_log_groups()
    assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"

    lam.remove_permission(FunctionName=function, StatementId="other-account")
    err = error(other.invoke, FunctionName=function, Payload=b"{}")
    assert err["Error"]["Message"] == denied(principal, "lambda:InvokeFunction", arn(function))


def test_user_arn_and_organization_grants(server: ServerProcess, lam: Any, function: str) -> None:
    alice_key = KeyStore.add_foreign_key(server.data_dir, OTHER, user="alice")
    bob_key = KeyStore.add_foreign_key(server.data_dir, OTHER, user="bob")
    org_key = KeyStore.add_foreign_key(server.data_dir, "444455556666", org_id=ORG)
    alice = client_for(server, alice_key)
    bob = client_for(server, bob_key)
    member = client_for(server, org_key)

    # A user's ARN on the alias: that user, through that alias only.
    grant(lam, function, "alice", f"arn:aws:iam::{OTHER}:user/alice", Qualifier="live")
    assert invoke(alice, function, Qualifier="live") == "one"
    assert invoke(alice, arn(function, "live")) == "one"
    err = error(bob.invoke, FunctionName=function, Qualifier="live", Payload=b"{}")
    assert err["Error"]["Message"] == denied(
        f"arn:aws:iam::{OTHER}:user/bob", "lambda:InvokeFunction", arn(function, "live")
    )
    assert error(alice.invoke, FunctionName=function, Payload=b"{}")["Error"]["Code"] == (
        "AccessDeniedException"
    )

    # Anyone in the organization, on version 1.
    grant(lam, function, "org", "*", Qualifier="1", PrincipalOrgID=ORG)
    assert invoke(member, function, Qualifier="1") == "one"
    err = error(alice.invoke, FunctionName=function, Qualifier="1", Payload=b"{}")
    assert err["Error"]["Message"] == denied(
        f"arn:aws:iam::{OTHER}:user/alice", "lambda:InvokeFunction", arn(function, "1")
    )

    # The account's root stands for all its users.
    grant(lam, function, "account", OTHER)
    assert invoke(bob, function) == "one"
    assert invoke(alice, function) == "one"
    assert error(member.invoke, FunctionName=function, Payload=b"{}")["Error"]["Code"] == (
        "AccessDeniedException"
    )

    lam.remove_permission(FunctionName=function, StatementId="alice", Qualifier="live")
    err = error(alice.invoke, FunctionName=function, Qualifier="live", Payload=b"{}")
    assert err["Error"]["Code"] == "AccessDeniedException"
    # The account's own keys are never checked.
    assert invoke(lam, function, Qualifier="live") == "one"


def test_a_removed_key_is_refused(server: ServerProcess, lam: Any, function: str) -> None:
    """`lambdaplane keys remove` revokes a key of a running server within a second."""
    key = KeyStore.add_foreign_key(server.data_dir, OTHER)
    other = client_for(server, key)
    grant(lam, function, "removed-key", OTHER)
    deadline = time.monotonic() + 10
    while True:  # the server reads new keys at most once a second
        try:
            assert invoke(other, function) == "one"
            break
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    removed = subprocess.run(
        [sys.executable, "-m", "lambdaplane", "keys", "remove", key.access_key_id,
         "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, check=True, env={**SAFE_ENV, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert key.access_key_id in removed.stdout
    deadline = time.monotonic() + 10
    while True:
        try:
            other.invoke(FunctionName=function, Payload=b"{}")
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "UnrecognizedClientException"
            break
        assert time.monotonic() < deadline, "the removed key still works"
        time.sleep(0.2)
    lam.remove_permission(FunctionName=function, StatementId="removed-key")
