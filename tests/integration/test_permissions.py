"""AddPermission, RemovePermission and GetPolicy through boto3, step by step against the
Permissions scenarios recorded from AWS (TestLambdaPermissions::*,
TestLambdaRevisions::test_function_revisions_permissions)."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.helpers import RUNTIME, reference
from tests.integration.test_versions import code, create, error, wait_version_active

ACCOUNT = "000000000000"
PERMS = "TestLambdaPermissions"
BUCKET_ARN = "arn:aws:s3:::test-bucket"
RECORDED_PREFIX = "arn:<partition>:lambda:<region>:111111111111"


def arn(name: str, qualifier: str | None = None) -> str:
    base = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
    return f"{base}:{qualifier}" if qualifier else base


def filled(value: Any, name: str, **placeholders: str) -> Any:
    """A recorded value with its placeholders replaced by this server's values."""
    if isinstance(value, dict):
        return {k: filled(v, name, **placeholders) for k, v in value.items()}
    if isinstance(value, list):
        return [filled(v, name, **placeholders) for v in value]
    if not isinstance(value, str):
        return value
    text = value.replace(RECORDED_PREFIX, f"arn:aws:lambda:us-east-1:{ACCOUNT}")
    text = text.replace("arn:<partition>:s3:::", "arn:aws:s3:::")
    text = text.replace("arn:<partition>:iam::111111111111", f"arn:aws:iam::{ACCOUNT}")
    for placeholder, replacement in placeholders.items():  # before the defaults below
        text = text.replace(f"<{placeholder}>", replacement)
    for placeholder in ("<function-name:1>", "<function-name>", "<resource:1>"):
        text = text.replace(placeholder, name)
    return text.replace("111111111111", ACCOUNT)  # the recording's account is ours


def recorded_statement(test: str, step: str, name: str, **placeholders: str) -> Any:
    return filled(reference(f"{PERMS}::{test}", step)["Statement"], name, **placeholders)


def recorded_policy(test: str, step: str, name: str, **placeholders: str) -> Any:
    return filled(reference(f"{PERMS}::{test}", step)["Policy"], name, **placeholders)


def assert_error(err: dict[str, Any], test: str, step: str, name: str) -> None:
    """Code, message, status and body keys exactly as recorded."""
    recorded = reference(test if "::" in test else f"{PERMS}::{test}", step)
    assert err["Error"]["Code"] == recorded["Error"]["Code"]
    assert err["Error"]["Message"] == filled(recorded["Error"]["Message"], name)
    status = err["ResponseMetadata"]["HTTPStatusCode"]
    assert status == recorded["ResponseMetadata"]["HTTPStatusCode"]
    assert set(err) - {"ResponseMetadata"} == set(recorded) - {"ResponseMetadata"}


def add_s3(lam: Any, name: str, sid: str = "s3", **extra: Any) -> dict[str, Any]:
    response: dict[str, Any] = lam.add_permission(
        FunctionName=name,
        Action="lambda:InvokeFunction",
        StatementId=sid,
        Principal="s3.amazonaws.com",
        SourceArn=BUCKET_ARN,
        **extra,
    )
    return response


def revision(lam: Any, name: str, qualifier: str | None = None) -> str:
    extra = {"Qualifier": qualifier} if qualifier else {}
    config = lam.get_function(FunctionName=name, **extra)["Configuration"]
    return str(config["RevisionId"])


def test_add_lambda_permission_aws(lam: Any, role: str) -> None:
    name = create(lam, role)
    added = add_s3(lam, name)
    assert added["ResponseMetadata"]["HTTPStatusCode"] == 201
    test = "test_add_lambda_permission_aws"
    assert json.loads(added["Statement"]) == recorded_statement(
        test, "add_permission", name, **{"resource:3": "test-bucket"}
    )
    policy = lam.get_policy(FunctionName=name)
    assert json.loads(policy["Policy"]) == recorded_policy(
        test, "get_policy", name, **{"resource:3": "test-bucket"}
    )
    # The policy's revision is the function's: adding the statement gave it a new one.
    assert policy["RevisionId"] == revision(lam, name)
    # AWS's compact rendering, key order included.
    assert added["Statement"].startswith('{"Sid":"s3","Effect":"Allow","Principal":')
    assert policy["Policy"].startswith('{"Version":"2012-10-17","Id":"default","Statement":[')


def test_remove_multi_permissions(lam: Any, role: str) -> None:
    name = create(lam, role)
    test = "test_remove_multi_permissions"
    first = lam.add_permission(
        FunctionName=name,
        Action="lambda:InvokeFunction",
        StatementId="s3",
        Principal="s3.amazonaws.com",
    )
    assert json.loads(first["Statement"]) == recorded_statement(test, "add_permission_1", name)
    second = lam.add_permission(
        FunctionName=name,
        Action="lambda:InvokeFunction",
        StatementId="sqs",
        Principal="sqs.amazonaws.com",
        SourceArn=BUCKET_ARN,
    )
    bucket = {"resource:2": "test-bucket"}
    assert json.loads(second["Statement"]) == recorded_statement(
        test, "add_permission_2", name, **bucket
    )
    both = lam.get_policy(FunctionName=name)
    assert json.loads(both["Policy"]) == recorded_policy(test, "policy_after_2_add", name, **bucket)

    err = error(lam.remove_permission, FunctionName=name, StatementId="non-existent")
    assert_error(err, test, "remove_permission_exception_nonexisting_sid", name)

    lam.remove_permission(FunctionName=name, StatementId="sqs")
    after = lam.get_policy(FunctionName=name)
    assert json.loads(after["Policy"]) == recorded_policy(test, "policy_after_removal", name)
    assert after["RevisionId"] != both["RevisionId"]
    again = lam.get_policy(FunctionName=name)
    assert again["RevisionId"] == after["RevisionId"]  # reading changes nothing

    removed = lam.remove_permission(
        FunctionName=name, StatementId="s3", RevisionId=again["RevisionId"]
    )
    assert removed["ResponseMetadata"]["HTTPStatusCode"] == 204
    err = error(lam.get_policy, FunctionName=name)
    assert_error(err, test, "get_policy_exception_removed_all", name)


def test_create_multiple_lambda_permissions(lam: Any, role: str) -> None:
    name = create(lam, role)
    test = "test_create_multiple_lambda_permissions"
    for sid, service, step in (
        ("logs", "logs.amazonaws.com", "add_permission_response_1"),
        ("kinesis", "kinesis.amazonaws.com", "add_permission_response_2"),
    ):
        added = lam.add_permission(
            FunctionName=name, Action="lambda:InvokeFunction", StatementId=sid, Principal=service
        )
        assert json.loads(added["Statement"]) == recorded_statement(test, step, name)
    policy = lam.get_policy(FunctionName=name)
    assert json.loads(policy["Policy"]) == recorded_policy(test, "policy_after_2_add", name)


def test_permission_exceptions(lam: Any, role: str) -> None:
    name = create(lam, role)
    test = "test_permission_exceptions"
    base = {"Action": "lambda:InvokeFunction", "Principal": "s3.amazonaws.com"}
    s3 = {**base, "StatementId": "s3", "SourceArn": BUCKET_ARN}
    cases: list[tuple[str, Any, dict[str, Any]]] = [
        ("add_permission_invalid_statement_id", lam.add_permission,
         {**base, "FunctionName": name, "StatementId": "example.com"}),
        ("add_permission_fn_qualifier_mismatch", lam.add_permission,
         {**s3, "FunctionName": f"{name}:alias-not-42", "Qualifier": "42"}),
        ("add_permission_fn_qualifier_latest", lam.add_permission,
         {**s3, "FunctionName": f"{name}:$LATEST", "Qualifier": "$LATEST"}),
        ("add_permission_principal_invalid", lam.add_permission,
         {"FunctionName": name, "Action": "lambda:InvokeFunction", "StatementId": "lambda",
          "Principal": "invalid.nonaws.com", "SourceAccount": ACCOUNT}),
        ("get_policy_fn_doesnotexist", lam.get_policy, {"FunctionName": "doesnotexist"}),
        ("get_policy_fn_version_doesnotexist", lam.get_policy,
         {"FunctionName": name, "Qualifier": "77"}),
        ("add_permission_fn_doesnotexist", lam.add_permission,
         {**s3, "FunctionName": "doesnotexist"}),
        ("remove_permission_policy_doesnotexist", lam.remove_permission,
         {"FunctionName": name, "StatementId": "s3"}),
        ("add_permission_fn_alias_doesnotexist", lam.add_permission,
         {**s3, "FunctionName": f"{name}:alias-doesnotexist"}),
        ("add_permission_fn_version_doesnotexist", lam.add_permission,
         {**s3, "FunctionName": name, "Qualifier": "42"}),
        ("add_permission_fn_qualifier_invalid", lam.add_permission,
         {**s3, "FunctionName": name, "Qualifier": "invalid-qualifier-with-?-char"}),
        ("add_permission_fn_qualifier_valid_doesnotexist", lam.add_permission,
         {**s3, "FunctionName": name, "Qualifier": "valid-with-$-but-doesnotexist"}),
    ]  # fmt: skip
    for step, call, params in cases:
        assert_error(error(call, **params), test, step, name)

    lam.add_permission(FunctionName=name, **s3)
    err = error(lam.add_permission, FunctionName=name, **s3)
    assert_error(err, test, "add_permission_conflicting_statement_id", name)
    err = error(lam.remove_permission, FunctionName="doesnotexist", StatementId="s3")
    assert_error(err, test, "remove_permission_fn_doesnotexist", name)
    err = error(
        lam.remove_permission, FunctionName=name, StatementId="s3", Qualifier="alias-doesnotexist"
    )
    assert_error(err, test, "remove_permission_fn_alias_doesnotexist", name)


def test_add_lambda_permission_fields(lam: Any, role: str) -> None:
    name = create(lam, role)
    test = "test_add_lambda_permission_fields"
    user_arn = f"arn:aws:iam::{ACCOUNT}:user/alice"
    requests: list[tuple[str, dict[str, Any]]] = [
        ("add_permission_principal_wildcard",
         {"StatementId": "wilcard", "Principal": "*", "SourceAccount": ACCOUNT}),
        ("add_permission_principal_service",
         {"StatementId": "lambda", "Principal": "lambda.amazonaws.com", "SourceAccount": ACCOUNT}),
        ("add_permission_principal_account", {"StatementId": "account-id", "Principal": ACCOUNT}),
        ("add_permission_principal_arn",
         {"StatementId": "user-arn", "Principal": user_arn, "SourceAccount": ACCOUNT}),
        ("add_permission_optional_fields",
         {"StatementId": "urlPermission", "Action": "lambda:InvokeFunctionUrl", "Principal": "*",
          "SourceArn": BUCKET_ARN, "SourceAccount": ACCOUNT, "PrincipalOrgID": "o-1234567890",
          "FunctionUrlAuthType": "NONE"}),
        ("add_permission_alexa_skill",
         {"StatementId": "alexaSkill", "Principal": "*",
          "EventSourceToken": "amzn1.ask.skill.xxxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"}),
    ]  # fmt: skip
    placeholders = {"resource:2": "root", "resource:3": "test-bucket", "user_arn": user_arn}
    for step, params in requests:
        added = lam.add_permission(
            FunctionName=name, **{"Action": "lambda:InvokeFunction", **params}
        )
        assert added["ResponseMetadata"]["HTTPStatusCode"] == 201
        statement = json.loads(added["Statement"])
        assert statement == recorded_statement(test, step, name, **placeholders)
        # Condition operators and keys in AWS's order, too.
        recorded = recorded_statement(test, step, name, **placeholders)
        assert json.dumps(statement) == json.dumps(recorded)
    policy = json.loads(lam.get_policy(FunctionName=name)["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == [
        "wilcard", "lambda", "account-id", "user-arn", "urlPermission", "alexaSkill",
    ]  # fmt: skip


def test_lambda_permission_fn_versioning(lam: Any, role: str) -> None:
    name = create(lam, role)
    test = "test_lambda_permission_fn_versioning"
    bucket = {"resource:1": "test-bucket"}

    def policy_of(step: str) -> Any:
        return recorded_policy(test, step, name, **bucket)

    added = add_s3(lam, name)
    assert json.loads(added["Statement"]) == policy_of("get_policy")["Statement"][0]
    base = lam.get_policy(FunctionName=name)
    assert json.loads(base["Policy"]) == policy_of("get_policy")

    published = lam.publish_version(FunctionName=name)
    wait_version_active(lam, name, "1")
    # Publishing gives $LATEST a new RevisionId; the policy keeps its own.
    latest_revision = revision(lam, name)
    assert latest_revision != base["RevisionId"]
    after_publish = lam.get_policy(FunctionName=name)
    assert after_publish["RevisionId"] == base["RevisionId"]
    assert after_publish["Policy"] == base["Policy"]
    # Policies are per qualifier: the new version has none.
    err = error(lam.get_policy, FunctionName=name, Qualifier="1")
    assert_error(err, test, "get_policy_after_publishing_new_version", name)

    add_s3(lam, f"{name}:1", Qualifier="1")
    version_policy = lam.get_policy(FunctionName=name, Qualifier="1")
    assert json.loads(version_policy["Policy"]) == policy_of("get_policy_version")
    assert version_policy["RevisionId"] not in (published["RevisionId"], base["RevisionId"])
    assert version_policy["RevisionId"] == revision(lam, name, "1")

    alias = lam.create_alias(FunctionName=name, Name="permission-alias", FunctionVersion="1")
    err = error(
        lam.add_permission,
        FunctionName=name,
        Action="lambda:InvokeFunction",
        StatementId="s3",
        Principal="s3.amazonaws.com",
        SourceArn=BUCKET_ARN,
        Qualifier="permission-alias",
        RevisionId="wrong",
    )
    assert_error(err, test, "add_permission_alias_revision_exception", name)
    add_s3(lam, f"{name}:permission-alias", Qualifier="permission-alias",
           RevisionId=alias["RevisionId"])  # fmt: skip
    alias_policy = lam.get_policy(FunctionName=name, Qualifier="permission-alias")
    assert json.loads(alias_policy["Policy"]) == policy_of("get_policy_alias")
    assert alias_policy["RevisionId"] != alias["RevisionId"]
    got_alias = lam.get_alias(FunctionName=name, Name="permission-alias")
    assert got_alias["RevisionId"] == alias_policy["RevisionId"]

    unqualified = lam.get_policy(FunctionName=name)
    assert json.loads(unqualified["Policy"]) == policy_of("get_policy_after_adding_to_new_version")
    assert unqualified["RevisionId"] == base["RevisionId"]
    add_s3(lam, name, sid="s3_2", RevisionId=unqualified["RevisionId"])
    two = lam.get_policy(FunctionName=name)
    assert json.loads(two["Policy"]) == policy_of("get_policy_after_adding_2")
    assert two["RevisionId"] not in (base["RevisionId"], latest_revision)
    assert two["RevisionId"] == revision(lam, name)


def test_lambda_permission_revisions(lam: Any, role: str) -> None:
    """The 2022 recording: RemovePermission's stale-revision answer, and the RevisionIds
    of the function and a version moving with their policies."""
    name = create(lam, role)
    test = "test_lambda_permission_revisions"
    add_s3(lam, name)
    err = error(lam.remove_permission, FunctionName=name, StatementId="s3", RevisionId="wrong")
    assert_error(err, test, "remove_permission_fn_revision_id_doesnotmatch", name)
    add_s3(lam, name, sid="s3_2", RevisionId=lam.get_policy(FunctionName=name)["RevisionId"])
    lam.publish_version(FunctionName=name)
    wait_version_active(lam, name, "1")
    add_s3(lam, name, sid="s3_2", Qualifier="1")
    unqualified = lam.get_policy(FunctionName=name)
    version = lam.get_policy(FunctionName=name, Qualifier="1")
    bucket = {"resource:1": "test-bucket"}
    assert json.loads(unqualified["Policy"]) == recorded_policy(
        test, "get_policy_after_publish_version", name, **bucket
    )
    assert json.loads(version["Policy"]) == recorded_policy(
        test, "get_policy_v1_after_publish_version", name, **bucket
    )
    # fn8/fn8_v1: each policy's RevisionId is its function version's.
    assert version["RevisionId"] == revision(lam, name, "1")
    before_latest = revision(lam, name)
    add_s3(lam, name, sid="s3_3", Qualifier="1", RevisionId=version["RevisionId"])
    # fn9/fn9_v1: $LATEST unchanged, version 1 has a new RevisionId, shared with its policy.
    assert revision(lam, name) == before_latest
    after = lam.get_policy(FunctionName=name, Qualifier="1")
    assert json.loads(after["Policy"]) == recorded_policy(
        test, "get_policy_v1_after_add_permission9", name, **bucket
    )
    assert after["RevisionId"] == revision(lam, name, "1") != version["RevisionId"]


def test_function_revisions_permissions(lam: Any, role: str) -> None:
    name = create(lam, role)
    rev2 = revision(lam, name)
    err = error(
        lam.add_permission,
        FunctionName=name,
        StatementId="s3",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
        RevisionId="wrong",
    )
    recorded = "TestLambdaRevisions::test_function_revisions_permissions"
    assert_error(err, recorded, "add_permission_revision_exception", name)
    # The 2022 recording of the same step named GetFunction/GetAlias; AWS now says GetPolicy.
    old = reference(
        f"{PERMS}::test_lambda_permission_revisions", "add_permission_revision_id_doesnotmatch"
    )
    assert old["Error"]["Message"] != err["Error"]["Message"]

    lam.add_permission(
        FunctionName=name,
        StatementId="s3",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
        RevisionId=rev2,
    )
    rev3 = lam.get_policy(FunctionName=name)["RevisionId"]
    assert rev3 != rev2
    assert revision(lam, name) == rev3
    err = error(lam.remove_permission, FunctionName=name, StatementId="s3", RevisionId="wrong")
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert err["Error"]["Code"] == "PreconditionFailedException"
    lam.remove_permission(FunctionName=name, StatementId="s3", RevisionId=rev3)
    assert revision(lam, name) != rev3


def test_lambda_permission_versioning_2022(lam: Any, role: str) -> None:
    """The older recording of the same walk: what each GetPolicy shows."""
    name = create(lam, role)
    test = "test_lambda_permission_versioning"
    bucket = {"resource:2": "test-bucket"}
    add_s3(lam, name)
    first = lam.get_policy(FunctionName=name)
    assert json.loads(first["Policy"]) == recorded_policy(test, "get_policy", name, **bucket)
    lam.publish_version(FunctionName=name)
    assert lam.get_policy(FunctionName=name)["Policy"] == first["Policy"]
    err = error(lam.get_policy, FunctionName=name, Qualifier="1")
    assert_error(err, test, "get_policy_after_publishing_new_version", name)
    add_s3(lam, name, sid="s3_2", RevisionId=first["RevisionId"])
    two = lam.get_policy(FunctionName=name)
    assert json.loads(two["Policy"]) == recorded_policy(
        test, "get_policy_after_adding_2", name, **bucket
    )


def test_deleting_drops_policies(lam: Any, role: str) -> None:
    name = create(lam, role)
    add_s3(lam, name)
    lam.publish_version(FunctionName=name)
    wait_version_active(lam, name, "1")
    add_s3(lam, name, Qualifier="1")
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    add_s3(lam, name, Qualifier="live")

    lam.delete_alias(FunctionName=name, Name="live")
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    assert error(lam.get_policy, FunctionName=name, Qualifier="live")["Error"]["Code"] == (
        "ResourceNotFoundException"
    )
    lam.get_policy(FunctionName=name, Qualifier="1")  # untouched by the alias
    lam.delete_alias(FunctionName=name, Name="live")
    lam.delete_function(FunctionName=name, Qualifier="1")
    assert error(lam.get_policy, FunctionName=name, Qualifier="1")["Error"]["Code"] == (
        "ResourceNotFoundException"
    )
    lam.get_policy(FunctionName=name)  # the unqualified policy stays

    lam.delete_function(FunctionName=name)
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": code("again")},
    )
    err = error(lam.get_policy, FunctionName=name)
    assert err["Error"]["Message"] == "The resource you requested does not exist."
