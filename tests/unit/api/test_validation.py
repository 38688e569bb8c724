"""Coral-style validation messages, compared with responses recorded against AWS.

Expected strings come from /work/shared/aws-reference/lambda/*.snapshot.json with the
recording's placeholders (``<partition>``, ``<region>``, generated names) filled in.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from lambdaplane.api import protocol
from lambdaplane.api.javaregex import compile_java, translate
from lambdaplane.api.validation import coral_name, java_double, render
from lambdaplane.errors import ValidationException

ZIP = base64.b64encode(b"PK\x03\x04").decode()
VALID_FUNCTION = {
    "FunctionName": "my-fn",
    "Runtime": "python3.12",
    "Role": "arn:aws:iam::111111111111:role/lambda-role",
    "Handler": "index.handler",
    "Code": {"ZipFile": ZIP},
}
NAMESPACED_NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
    r"(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?"
)
FUNCTION_NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
    r"(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)


def _function(**changes: Any) -> dict[str, Any]:
    return {**VALID_FUNCTION, **changes}


def _message(client: Any, method: str, url: str, body: Any = b"", **kwargs: Any) -> str:
    with pytest.raises(ValidationException) as caught:
        client.call(method, url, body, **kwargs)
    assert caught.value.status == 400
    assert caught.value.body().keys() == {"message"}
    message = caught.value.message
    assert message is not None
    return message


def one(violation: str) -> str:
    return "1 validation error detected: " + violation


def test_valid_create_function_passes(client: Any) -> None:
    name, params = client.call("POST", "/2015-03-31/functions", VALID_FUNCTION)
    assert name == "CreateFunction"
    assert params["Code"] == {"ZipFile": b"PK\x03\x04"}


# ------------------------------------------------------------- recorded AWS messages

RECORDED = [
    pytest.param(
        "POST",
        "/2015-03-31/functions",
        _function(Role="r1"),
        one(
            "Value 'r1' at 'role' failed to satisfy constraint: Member must satisfy regular "
            r"expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"
        ),
        id="role-pattern",
    ),
    pytest.param(
        "GET",
        "/2015-03-31/functions?FunctionVersion=invalid",
        b"",
        one(
            "Value 'invalid' at 'functionVersion' failed to satisfy constraint: Member must "
            "satisfy enum value set: [ALL]"
        ),
        id="function-version-enum",
    ),
    pytest.param(
        "POST",
        "/2015-03-31/functions",
        _function(Architectures=["x86_64", "arm64"]),
        one(
            "Value '[x86_64, arm64]' at 'architectures' failed to satisfy constraint: Member "
            "must have length less than or equal to 1"
        ),
        id="architectures-length",
    ),
    pytest.param(
        "POST",
        "/2015-03-31/functions",
        _function(Architectures=["X86_64"]),
        one(
            "Value '[X86_64]' at 'architectures' failed to satisfy constraint: Member must "
            "satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member "
            "must not be null]"
        ),
        id="architectures-member-enum",
    ),
    pytest.param(
        "POST",
        "/2015-03-31/functions",
        _function(VpcConfig={"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["subnet-2"]}),
        one(
            "Value '[subnet-2]' at 'vpcConfig.securityGroupIds' failed to satisfy constraint: "
            "Member must satisfy constraint: [Member must have length less than or equal to "
            "1024, Member must have length greater than or equal to 0, Member must satisfy "
            "regular expression pattern: sg-[0-9a-zA-Z]*]"
        ),
        id="security-group-ids",
    ),
    pytest.param(
        "POST",
        "/2015-03-31/functions",
        _function(SnapStart={"ApplyOn": "invalidOption"}),
        one(
            "Value 'invalidOption' at 'snapStart.applyOn' failed to satisfy constraint: "
            "Member must satisfy enum value set: [PublishedVersions, None]"
        ),
        id="snapstart-apply-on",
    ),
    pytest.param(
        "GET",
        "/2015-03-31/functions/my-function?Qualifier=invalid!",
        b"",
        one(
            "Value 'invalid!' at 'qualifier' failed to satisfy constraint: Member must satisfy "
            r"regular expression pattern: \$(LATEST(\.PUBLISHED)?)|[a-zA-Z0-9-_$]+"
        ),
        id="qualifier-pattern",
    ),
    pytest.param(
        "GET",
        "/2015-03-31/functions/my-function!",
        b"",
        one(
            "Value 'my-function!' at 'functionName' failed to satisfy constraint: Member must "
            "satisfy regular expression pattern: " + NAMESPACED_NAME_PATTERN
        ),
        id="function-name-pattern",
    ),
    pytest.param(
        "POST",
        "/2015-03-31/functions",
        _function(FunctionName="arn:aws:lambda:us-east-1:111111111111:function:my-fn:$LATEST:1"),
        one(
            "Value 'arn:aws:lambda:us-east-1:111111111111:function:my-fn:$LATEST:1' at "
            "'functionName' failed to satisfy constraint: Member must satisfy regular "
            "expression pattern: " + FUNCTION_NAME_PATTERN
        ),
        id="create-function-name-pattern",
    ),
    pytest.param(
        "POST",
        "/2015-03-31/functions/f/aliases",
        {"Name": "2024", "FunctionVersion": "1"},
        one(
            "Value '2024' at 'name' failed to satisfy constraint: Member must satisfy regular "
            "expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)"
        ),
        id="alias-name-lookahead",
    ),
    pytest.param(
        "POST",
        "/2015-03-31/functions/f/aliases",
        {
            "Name": "live",
            "FunctionVersion": "1",
            "RoutingConfig": {"AdditionalVersionWeights": {"2": 2.0}},
        },
        one(
            "Value '{2=2.0}' at 'routingConfig.additionalVersionWeights' failed to satisfy "
            "constraint: Map value must satisfy constraint: [Member must have value less than "
            "or equal to 1.0, Member must have value greater than or equal to 0.0, Member "
            "must not be null]"
        ),
        id="routing-weight-too-high",
    ),
    pytest.param(
        "PUT",
        "/2015-03-31/functions/f/aliases/live",
        {"RoutingConfig": {"AdditionalVersionWeights": {"2": -1}}},
        one(
            "Value '{2=-1.0}' at 'routingConfig.additionalVersionWeights' failed to satisfy "
            "constraint: Map value must satisfy constraint: [Member must have value less than "
            "or equal to 1.0, Member must have value greater than or equal to 0.0, Member "
            "must not be null]"
        ),
        id="routing-weight-subzero",
    ),
    pytest.param(
        "POST",
        "/2015-03-31/functions/f/aliases",
        {
            "Name": "live",
            "FunctionVersion": "1",
            "RoutingConfig": {"AdditionalVersionWeights": {"$LATEST": 0.5}},
        },
        one(
            "Value '{$LATEST=0.5}' at 'routingConfig.additionalVersionWeights' failed to "
            "satisfy constraint: Map keys must satisfy constraint: [Member must have length "
            "less than or equal to 1024, Member must have length greater than or equal to 1, "
            "Member must satisfy regular expression pattern: [0-9]+]"
        ),
        id="routing-weight-key",
    ),
    pytest.param(
        "POST",
        "/2015-03-31/functions/f/policy",
        {
            "StatementId": "example.com",
            "Action": "lambda:InvokeFunction",
            "Principal": "s3.amazonaws.com",
        },
        one(
            "Value 'example.com' at 'statementId' failed to satisfy constraint: Member must "
            "satisfy regular expression pattern: ([a-zA-Z0-9-_]+)"
        ),
        id="statement-id",
    ),
    pytest.param(
        "POST",
        "/2021-10-31/functions/f/url",
        {"AuthType": "NONE", "InvokeMode": "UNKNOWN"},
        one(
            "Value 'UNKNOWN' at 'invokeMode' failed to satisfy constraint: Member must satisfy "
            "enum value set: [RESPONSE_STREAM, BUFFERED]"
        ),
        id="invoke-mode-enum-order",
    ),
    pytest.param(
        "POST",
        "/2021-10-31/functions/f/url?Qualifier=1",
        {"AuthType": "NONE"},
        one(
            "Value '1' at 'qualifier' failed to satisfy constraint: Member must satisfy "
            r"regular expression pattern: ((?!^\d+$)^[0-9a-zA-Z-_]+$)"
        ),
        id="url-qualifier-numeric",
    ),
    pytest.param(
        "POST",
        "/2021-10-31/functions/f/url?Qualifier=%24LATEST",
        {"AuthType": "NONE"},
        one(
            "Value '$LATEST' at 'qualifier' failed to satisfy constraint: Member must satisfy "
            r"regular expression pattern: ((?!^\d+$)^[0-9a-zA-Z-_]+$)"
        ),
        id="url-qualifier-latest",
    ),
    pytest.param(
        "POST",
        "/2015-03-31/event-source-mappings",
        {
            "FunctionName": "f",
            "EventSourceArn": "arn:aws:kinesis:us-east-1:111111111111:stream/s",
            "StartingPosition": "invalid",
        },
        one(
            "Value 'invalid' at 'startingPosition' failed to satisfy constraint: Member must "
            "satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]"
        ),
        id="starting-position-enum-order",
    ),
    pytest.param(
        "PUT",
        "/2024-08-31/functions/f/recursion-config",
        {"RecursiveLoop": "InvalidValue"},
        one(
            "Value 'InvalidValue' at 'recursiveLoop' failed to satisfy constraint: Member must "
            "satisfy enum value set: [Terminate, Allow]"
        ),
        id="recursive-loop-enum-order",
    ),
    pytest.param(
        "GET",
        "/2018-10-31/layers?CompatibleArchitecture=archdoesnotexist",
        b"",
        one(
            "Value 'archdoesnotexist' at 'compatibleArchitecture' failed to satisfy "
            "constraint: Member must satisfy enum value set: [x86_64, arm64]"
        ),
        id="compatible-architecture",
    ),
    pytest.param(
        "PUT",
        "/2019-09-30/functions/f/provisioned-concurrency?Qualifier=1",
        {"ProvisionedConcurrentExecutions": 0},
        one(
            "Value '0' at 'provisionedConcurrentExecutions' failed to satisfy constraint: "
            "Member must have value greater than or equal to 1"
        ),
        id="provisioned-concurrency-min",
    ),
    pytest.param(
        "PUT",
        "/2019-09-25/functions/f/event-invoke-config",
        {
            "DestinationConfig": {
                "OnFailure": {
                    "Destination": "arn:aws:_-/!lambda:us-east-1:111111111111:function:my-fn"
                }
            }
        },
        one(
            "Value 'arn:aws:_-/!lambda:us-east-1:111111111111:function:my-fn' at "
            "'destinationConfig.onFailure.destination' failed to satisfy constraint: Member "
            r"must satisfy regular expression pattern: $|kafka://([^.]([a-zA-Z0-9\-_.]{0,248}))"
            r"|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))"
            r"?-[a-z]+-\d{1})?:(\d{12})?:(.*)"
        ),
        id="nested-destination",
    ),
    pytest.param(
        "DELETE",
        "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A111111111111%3Afunction%3Af",
        b"",
        one("Value null at 'tagKeys' failed to satisfy constraint: Member must not be null"),
        id="required-query-list",
    ),
]


@pytest.mark.parametrize(("method", "url", "body", "expected"), RECORDED)
def test_recorded_messages(client: Any, method: str, url: str, body: Any, expected: str) -> None:
    assert _message(client, method, url, body) == expected


LONG_REGION_ARN = "arn:aws:lambda:invalid-region:111111111111:function:my-function-" + "a" * 170


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/2015-03-31/functions/{}?Qualifier={}"),
        ("DELETE", "/2015-03-31/functions/{}?Qualifier={}"),
        ("POST", "/2015-03-31/functions/{}/invocations?Qualifier={}"),
    ],
)
def test_two_violations_qualifier_first(client: Any, method: str, path: str) -> None:
    """full_arn_and_qualifier_too_long_and_invalid_region: Count 2, qualifier first."""
    url = path.format(LONG_REGION_ARN.replace(":", "%3A"), "a" * 129)
    assert _message(client, method, url) == (
        "2 validation errors detected: "
        f"Value '{'a' * 129}' at 'qualifier' failed to satisfy constraint: Member must have "
        "length less than or equal to 128; "
        f"Value '{LONG_REGION_ARN}' at 'functionName' failed to satisfy constraint: Member "
        "must satisfy regular expression pattern: " + NAMESPACED_NAME_PATTERN
    )


def test_length_and_pattern_on_one_member(client: Any) -> None:
    """function_name_too_long_and_invalid_region-create_function: both rules reported."""
    name = "arn:aws:lambda:invalid-region:111111111111:function:my-function" + "a" * 170
    assert _message(client, "POST", "/2015-03-31/functions", _function(FunctionName=name)) == (
        "2 validation errors detected: "
        f"Value '{name}' at 'functionName' failed to satisfy constraint: Member must have "
        "length less than or equal to 140; "
        f"Value '{name}' at 'functionName' failed to satisfy constraint: Member must satisfy "
        "regular expression pattern: " + FUNCTION_NAME_PATTERN
    )


def test_layer_list_item_rules(client: Any, model: Any) -> None:
    """add_layer_arn_without_version_exc; AWS prints a slightly newer pattern than
    botocore's, so the expected pattern is the model's."""
    pattern = model.shape_for("LayerVersionArn").metadata["pattern"]
    layer = "arn:aws:lambda:us-east-1:111111111111:layer:my-layer"
    assert _message(client, "POST", "/2015-03-31/functions", _function(Layers=[layer])) == one(
        f"Value '[{layer}]' at 'layers' failed to satisfy constraint: Member must satisfy "
        "constraint: [Member must have length less than or equal to 2048, Member must have "
        "length greater than or equal to 1, Member must satisfy regular expression pattern: "
        f"{pattern}, Member must not be null]"
    )


# ------------------------------------------------------------------ the other rules


def test_required_members_are_reported_in_model_order(client: Any) -> None:
    assert _message(client, "POST", "/2015-03-31/functions", {"Runtime": "python3.12"}) == (
        "3 validation errors detected: "
        "Value null at 'functionName' failed to satisfy constraint: Member must not be null; "
        "Value null at 'role' failed to satisfy constraint: Member must not be null; "
        "Value null at 'code' failed to satisfy constraint: Member must not be null"
    )


def test_memory_size_override(client: Any) -> None:
    body = _function(MemorySize=10241)
    assert _message(client, "POST", "/2015-03-31/functions", body) == one(
        "Value '10241' at 'memorySize' failed to satisfy constraint: Member must have value "
        "less than or equal to 10240"
    )
    # Without the override the model's (newer, larger) limit applies.
    client.call("POST", "/2015-03-31/functions", body, overrides=None)
    assert _message(client, "POST", "/2015-03-31/functions", _function(MemorySize=127)) == one(
        "Value '127' at 'memorySize' failed to satisfy constraint: Member must have value "
        "greater than or equal to 128"
    )


def test_timeout_and_ephemeral_storage_overrides(client: Any) -> None:
    body = _function(Timeout=901, EphemeralStorage={"Size": 10241})
    assert _message(client, "POST", "/2015-03-31/functions", body) == (
        "2 validation errors detected: "
        "Value '901' at 'timeout' failed to satisfy constraint: Member must have value less "
        "than or equal to 900; "
        "Value '10241' at 'ephemeralStorage.size' failed to satisfy constraint: Member must "
        "have value less than or equal to 10240"
    )


def test_overrides_can_drop_or_replace_rules(model: Any) -> None:
    op = model.operation_model("CreateFunction")
    params = {**VALID_FUNCTION, "Role": "r1", "Code": {}, "PackageType": "Other"}
    protocol.validate(op, params, {"RoleArn": {"pattern": None}, "PackageType": {"enum": None}})
    with pytest.raises(ValidationException) as caught:
        protocol.validate(op, params, {"RoleArn": {"pattern": "r[0-9]"}})
    assert caught.value.message is not None
    assert "Member must satisfy enum value set: [Zip, Image]" in caught.value.message
    assert "regular expression" not in caught.value.message


def test_runtime_enum_is_left_to_the_service(client: Any) -> None:
    body = _function(Runtime="python9")
    client.call("POST", "/2015-03-31/functions", body)
    message = _message(client, "POST", "/2015-03-31/functions", body, skip_enum=frozenset())
    assert message.startswith(
        "1 validation error detected: Value 'python9' at 'runtime' failed to satisfy "
        "constraint: Member must satisfy enum value set: [nodejs, nodejs4.3, "
    )


def test_sensitive_values_are_not_printed(client: Any) -> None:
    body = _function(Environment={"Variables": {"a": "secret", "OK": "fine"}})
    assert _message(client, "POST", "/2015-03-31/functions", body) == one(
        "Value at 'environment.variables' failed to satisfy constraint: Map keys must "
        "satisfy constraint: [Member must satisfy regular expression pattern: "
        "[a-zA-Z]([a-zA-Z0-9_])+]"
    )


def test_null_list_items(client: Any) -> None:
    assert _message(
        client, "POST", "/2015-03-31/functions", _function(Architectures=[None])
    ) == one(
        "Value '[null]' at 'architectures' failed to satisfy constraint: Member must satisfy "
        "constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not "
        "be null]"
    )
    # VpcConfig's lists are recorded without "Member must not be null".
    client.call("POST", "/2015-03-31/functions", _function(VpcConfig={"SubnetIds": [None]}))


def test_null_map_value(client: Any) -> None:
    body = _function(Tags={"team": None})
    assert _message(client, "POST", "/2015-03-31/functions", body) == one(
        "Value '{team=null}' at 'tags' failed to satisfy constraint: Map value must satisfy "
        "constraint: [Member must have length less than or equal to 256, Member must have "
        "length greater than or equal to 0, Member must satisfy regular expression pattern: "
        r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*), Member must not be null]"
    )


def test_unicode_tag_keys_match_java_classes(client: Any) -> None:
    client.call("POST", "/2015-03-31/functions", _function(Tags={"日本 ٣": "ok"}))
    message = _message(client, "POST", "/2015-03-31/functions", _function(Tags={"bad!": "x"}))
    assert message.startswith(
        "1 validation error detected: Value '{bad!=x}' at 'tags' failed to satisfy "
        "constraint: Map keys must satisfy constraint: [Member must have length less than or "
        "equal to 128, Member must have length greater than or equal to 1, "
    )


def test_structures_inside_lists(client: Any) -> None:
    body = _function(FileSystemConfigs=[{"Arn": "bad"}])
    message = _message(client, "POST", "/2015-03-31/functions", body)
    assert message.startswith(
        "2 validation errors detected: Value 'bad' at 'fileSystemConfigs.1.member.arn' "
        "failed to satisfy constraint: Member must satisfy regular expression pattern: "
    )
    assert message.endswith(
        "; Value null at 'fileSystemConfigs.1.member.localMountPath' failed to satisfy "
        "constraint: Member must not be null"
    )


def test_string_length_counts_utf16_units(client: Any) -> None:
    client.call("POST", "/2015-03-31/functions", _function(Description="😀" * 128))
    message = _message(client, "POST", "/2015-03-31/functions", _function(Description="😀" * 129))
    assert message.endswith(
        "at 'description' failed to satisfy constraint: Member must have length less than or "
        "equal to 256"
    )


def test_header_enum(client: Any) -> None:
    message = _message(
        client,
        "POST",
        "/2015-03-31/functions/f/invocations",
        b"{}",
        headers={"X-Amz-Invocation-Type": "Later"},
    )
    assert message == one(
        "Value 'Later' at 'invocationType' failed to satisfy constraint: Member must satisfy "
        "enum value set: [Event, RequestResponse, DryRun]"
    )


def test_blob_sizes_are_not_checked_here(model: Any) -> None:
    op = model.operation_model("InvokeAsync")
    protocol.validate(op, {"FunctionName": "f", "InvokeArgs": b"x" * (7 * 1024 * 1024)})


# ---------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0, "1.0"), (0.0, "0.0"), (-1.0, "-1.0"), (0.5, "0.5"), (1e7, "1.0E7"), (1.5e-5, "1.5E-5")],
)
def test_java_double(value: float, text: str) -> None:
    assert java_double(value) == text


def test_render_values() -> None:
    assert render(["a", None, 1, True]) == "[a, null, 1, true]"
    assert render({"k": 2.0}) == "{k=2.0}"
    assert render(None) == "null"


def test_coral_names() -> None:
    assert coral_name("FunctionName") == "functionName"
    assert coral_name("UUID") == "UUID"
    assert coral_name("S3Bucket") == "s3Bucket"


def test_java_regex_translation() -> None:
    every_pattern_compiles = compile_java(r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*")
    assert every_pattern_compiles is not None
    assert every_pattern_compiles.fullmatch("Grüße 世界 ٣")
    assert not every_pattern_compiles.fullmatch("tab\there")
    dot = compile_java("a.c")
    assert dot is not None
    assert dot.fullmatch("abc") and not dot.fullmatch("a\rc") and not dot.fullmatch("a\u2028c")
    digits = compile_java(r"\d+")
    assert digits is not None and not digits.fullmatch("٣")
    quoted = compile_java(r"\Q1+1\E=2")
    assert quoted is not None and quoted.fullmatch("1+1=2")
    assert compile_java("[a[b]]") is None
    assert translate("[^.]x.") == "[^.]x[^\\n\\r\\u0085\\u2028\\u2029]"


def test_every_model_pattern_compiles(model: Any) -> None:
    for name in model.shape_names:
        pattern = model.shape_for(name).metadata.get("pattern")
        if pattern is not None:
            assert compile_java(pattern) is not None, name
