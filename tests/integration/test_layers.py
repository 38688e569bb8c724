"""Layers through boto3 and the AWS CLI: the API as AWS answers it (compared with the
TestLambdaLayer recordings in the shared aws-reference), and what functions see at /opt.
"""

from __future__ import annotations

import base64
import ctypes.util
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdaplane.service.runtimes import find_interpreters
from lambdaplane.testing import ServerProcess, make_zip
from tests.integration.helpers import RUNTIME, reference, shape, unique_name, wait_settled

ACCOUNT = "000000000000"
REGION = "us-east-1"
PREFIX = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer"
MINOR = RUNTIME.removeprefix("python")
_NODES = sorted(r.id for r in find_interpreters() if r.family == "nodejs")
NODE = "nodejs20.x" if "nodejs20.x" in _NODES else next(iter(_NODES), None)


# -- helpers -------------------------------------------------------------------------


def publish(lam: Any, name: str, files: dict[str, str | bytes], **extra: Any) -> dict[str, Any]:
    response: dict[str, Any] = lam.publish_layer_version(
        LayerName=name, Content={"ZipFile": make_zip(files, **extra.pop("zip", {}))}, **extra
    )
    return response


def function(lam: Any, role: str, files: dict[str, str], layers: list[str], **extra: Any) -> str:
    name = unique_name("lyr")
    lam.create_function(
        FunctionName=name,
        Runtime=extra.pop("Runtime", RUNTIME),
        Role=role,
        Handler=extra.pop("Handler", "handler.handler"),
        Code={"ZipFile": make_zip({k: textwrap.dedent(v).lstrip() for k, v in files.items()})},
        Layers=layers,
        Timeout=10,
        **extra,
    )
    wait_settled(lam, name)
    return name


def call(lam: Any, name: str) -> Any:
    response = lam.invoke(FunctionName=name, Payload=b"{}")
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return body


def failure(fn: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as info:
        fn(**kwargs)
    response: dict[str, Any] = info.value.response
    return response


def same_as_aws(got: dict[str, Any], test: str, step: str, **names: str) -> None:
    """An error response equals AWS's recorded one: code, message, status and Type."""
    recorded = reference(f"TestLambdaLayer::{test}", step)
    message: str = recorded["Error"]["Message"]
    message = message.replace("arn:<partition>:lambda:<region>:111111111111", PREFIX[:-6])
    message = message.replace("<region>", REGION)
    for placeholder, value in names.items():
        message = message.replace(f"<{placeholder.replace('_', ':')}>", value)
    assert got["Error"]["Code"] == recorded["Error"]["Code"], step
    assert got["Error"]["Message"] == message, step
    status = got["ResponseMetadata"]["HTTPStatusCode"]
    assert status == recorded["ResponseMetadata"]["HTTPStatusCode"], step
    assert got.get("Type") == recorded.get("Type"), step


def zeros(name: str, size: int) -> bytes:
    """A small zip holding one file of ``size`` zero bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, b"\0" * size)
    return buf.getvalue()


def _aws(server: ServerProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or "aws"
    return subprocess.run(
        [aws, "lambda", *args, "--endpoint-url", server.endpoint, "--output", "json"],
        capture_output=True,
        text=True,
        env=server.cli_env(),
        timeout=60,
        check=check,
    )


# -- the API -------------------------------------------------------------------------


def test_lifecycle_matches_aws(lam: Any, role: str) -> None:
    test = "TestLambdaLayer::test_layer_lifecycle"
    layer = unique_name("layer")
    files: dict[str, str | bytes] = {"python/thing.py": "X = 1\n"}
    zip_bytes = make_zip(files)
    common = {
        "CompatibleRuntimes": [RUNTIME],
        "CompatibleArchitectures": ["x86_64"],
        "LicenseInfo": "MIT",
        "Description": "a layer",
    }
    first = publish(lam, layer, files, **common)
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert shape(first) == shape(reference(test, "publish_result"))
    assert first["Version"] == 1
    assert first["LayerArn"] == f"{PREFIX}:{layer}"
    assert first["LayerVersionArn"] == f"{PREFIX}:{layer}:1"
    assert first["Content"]["CodeSize"] == len(zip_bytes)
    sha = base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()
    assert first["Content"]["CodeSha256"] == sha
    assert first["CreatedDate"].endswith("+0000") and len(first["CreatedDate"]) == 28
    with urllib.request.urlopen(first["Content"]["Location"], timeout=10) as download:
        assert download.read() == zip_bytes

    second = publish(lam, layer, files, **common)  # nothing changed: still a new version
    assert second["Version"] == 2 and second["Content"]["CodeSha256"] == sha

    # As recorded: created with an empty Environment, and without layers.
    name = function(
        lam,
        role,
        {"handler.py": "def handler(e, c):\n    return 1\n"},
        [],
        Environment={"Variables": {}},
    )
    assert "Layers" not in lam.get_function_configuration(FunctionName=name)
    updated = lam.update_function_configuration(
        FunctionName=name, Layers=[first["LayerVersionArn"]]
    )
    assert shape(updated) == shape(reference(test, "update_fn_config"))
    assert updated["Layers"] == [{"Arn": first["LayerVersionArn"], "CodeSize": len(zip_bytes)}]
    settled = wait_settled(lam, name)
    assert shape(settled) == shape(reference(test, "get_fn_config"))

    got = lam.get_layer_version(LayerName=layer, VersionNumber=1)
    assert shape(got) == shape(reference(test, "get_layer_ver_result"))
    by_arn = lam.get_layer_version_by_arn(Arn=first["LayerVersionArn"])
    assert shape(by_arn) == shape(reference(test, "get_layer_by_arn_version"))
    for response in (got, by_arn):
        assert {k: v for k, v in response.items() if k not in ("ResponseMetadata", "Content")} == {
            k: v for k, v in first.items() if k not in ("ResponseMetadata", "Content")
        }
    by_layer_arn = lam.get_layer_version(LayerName=f"{PREFIX}:{layer}", VersionNumber=2)
    assert by_layer_arn["Version"] == 2

    listed = lam.list_layer_versions(LayerName=layer)
    assert shape(listed) == shape(reference(test, "list_layer_versions_predelete"))
    assert [v["Version"] for v in listed["LayerVersions"]] == [2, 1]
    layers = {x["LayerName"]: x for x in lam.list_layers()["Layers"]}
    assert layers[layer]["LatestMatchingVersion"]["Version"] == 2
    assert layers[layer]["LayerArn"] == f"{PREFIX}:{layer}"
    assert layer in {x["LayerName"] for x in lam.list_layers(CompatibleRuntime=RUNTIME)["Layers"]}
    assert layer not in {
        x["LayerName"] for x in lam.list_layers(CompatibleArchitecture="arm64")["Layers"]
    }

    deleted = lam.delete_layer_version(LayerName=layer, VersionNumber=1)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    # The function keeps its layer, as on AWS.
    after = lam.get_function_configuration(FunctionName=name)
    assert after["Layers"] == [{"Arn": first["LayerVersionArn"], "CodeSize": len(zip_bytes)}]
    lam.delete_layer_version(LayerName=layer, VersionNumber=2)
    assert lam.list_layer_versions(LayerName=layer)["LayerVersions"] == []
    assert layer not in {x["LayerName"] for x in lam.list_layers()["Layers"]}
    third = publish(lam, layer, files, **common)
    assert third["Version"] == 3  # numbers are never reused

    # Layers=[] removes them.
    lam.update_function_configuration(FunctionName=name, Layers=[])
    assert "Layers" not in wait_settled(lam, name)


def test_paging(lam: Any) -> None:
    layer = unique_name("paged")
    for _ in range(3):
        publish(lam, layer, {"a.txt": "a"})
    pages = lam.get_paginator("list_layer_versions").paginate(
        LayerName=layer, PaginationConfig={"PageSize": 2}
    )
    assert [[v["Version"] for v in page["LayerVersions"]] for page in pages] == [[3, 2], [1]]
    names = [
        x["LayerName"]
        for page in lam.get_paginator("list_layers").paginate(PaginationConfig={"PageSize": 1})
        for x in page["Layers"]
    ]
    assert layer in names and names == sorted(names) and len(names) == len(set(names))


def test_layer_exceptions_match_aws(lam: Any) -> None:
    test = "test_layer_exceptions"
    layer = unique_name("layer")
    published = publish(
        lam, layer, {"a.txt": "a"}, CompatibleRuntimes=[RUNTIME], CompatibleArchitectures=["x86_64"]
    )
    assert shape(published) == shape(reference(f"TestLambdaLayer::{test}", "publish_result"))

    for step, fn, kwargs in [
        (
            "list_layers_exc_compatibleruntime_invalid",
            lam.list_layers,
            {"CompatibleRuntime": "runtimedoesnotexist"},
        ),
        (
            "list_layers_exc_compatiblearchitecture_invalid",
            lam.list_layers,
            {"CompatibleArchitecture": "archdoesnotexist"},
        ),
        (
            "get_layer_version_exc_layer_doesnotexist",
            lam.get_layer_version,
            {"LayerName": "layerdoesnotexist", "VersionNumber": 1},
        ),
        (
            "get_layer_version_exc_layer_version_doesnotexist_negative",
            lam.get_layer_version,
            {"LayerName": layer, "VersionNumber": -1},
        ),
        (
            "get_layer_version_exc_layer_version_doesnotexist_zero",
            lam.get_layer_version,
            {"LayerName": layer, "VersionNumber": 0},
        ),
        (
            "get_layer_version_exc_layer_version_doesnotexist_2",
            lam.get_layer_version,
            {"LayerName": layer, "VersionNumber": 2},
        ),
        (
            "get_layer_version_by_arn_exc_invalidarn",
            lam.get_layer_version_by_arn,
            {"Arn": published["LayerArn"]},
        ),
        (
            "get_layer_version_by_arn_exc_nonexistentversion",
            lam.get_layer_version_by_arn,
            {"Arn": f"{published['LayerArn']}:2"},
        ),
        (
            "delete_layer_version_exc_layerversion_invalid_version",
            lam.delete_layer_version,
            {"LayerName": layer, "VersionNumber": -1},
        ),
        (
            "publish_layer_version_exc_invalid_runtime_arch",
            lam.publish_layer_version,
            {
                "LayerName": unique_name("bad"),
                "Content": {"ZipFile": make_zip({"a.txt": "a"})},
                "CompatibleRuntimes": ["invalidruntime"],
                "CompatibleArchitectures": ["invalidarch"],
            },
        ),
        (
            "publish_layer_version_exc_partially_invalid_values",
            lam.publish_layer_version,
            {
                "LayerName": unique_name("bad"),
                "Content": {"ZipFile": make_zip({"a.txt": "a"})},
                "CompatibleRuntimes": ["invalidruntime", "invalidruntime2", "nodejs20.x"],
                "CompatibleArchitectures": ["invalidarch", "x86_64"],
            },
        ),
    ]:
        same_as_aws(failure(fn, **kwargs), test, step, resource_1=layer)

    empty = lam.list_layer_versions(LayerName="layerdoesnotexist")
    assert empty["LayerVersions"] == [] and empty["ResponseMetadata"]["HTTPStatusCode"] == 200
    # Deleting is idempotent, as on AWS.
    for layer_name, number in (("layerdoesnotexist", 1), (layer, 2), (layer, 1), (layer, 1)):
        response = lam.delete_layer_version(LayerName=layer_name, VersionNumber=number)
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
    # Empty compatibility lists are valid, and kept.
    empty_lists = publish(
        lam, unique_name("empty"), {"a.txt": "a"}, CompatibleRuntimes=[], CompatibleArchitectures=[]
    )
    assert shape(empty_lists) == shape(
        reference(f"TestLambdaLayer::{test}", "publish_empty_result")
    )
    assert empty_lists["CompatibleRuntimes"] == [] == empty_lists["CompatibleArchitectures"]
    # Without them, the keys are absent (test_layer_s3_content's response).
    bare = publish(lam, unique_name("bare"), {"a.txt": "a"})
    assert shape(bare) == shape(
        reference("TestLambdaLayer::test_layer_s3_content", "publish_layer_result")
    )
    # There is no S3 here: the same answer as for function code from a missing bucket.
    s3 = failure(
        lam.publish_layer_version,
        LayerName=unique_name("s3"),
        Content={"S3Bucket": "no-such-bucket", "S3Key": "layer.zip"},
    )
    assert s3["Error"]["Code"] == "InvalidParameterValueException"
    assert "NoSuchBucket" in s3["Error"]["Message"]


def test_layer_policy_matches_aws(lam: Any) -> None:
    test = "test_layer_policy_exceptions"
    layer = unique_name("policy")
    publish(lam, layer, {"a.txt": "a"}, CompatibleRuntimes=[RUNTIME])
    same_as_aws(
        failure(lam.get_layer_version_policy, LayerName=layer, VersionNumber=1),
        test,
        "layer_permission_nopolicy_get",
    )
    permission = {
        "LayerName": layer,
        "VersionNumber": 1,
        "Action": "lambda:GetLayerVersion",
        "Principal": "*",
    }
    added = lam.add_layer_version_permission(**permission, StatementId="s1")
    assert added["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert json.loads(added["Statement"]) == {
        "Sid": "s1",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "lambda:GetLayerVersion",
        "Resource": f"{PREFIX}:{layer}:1",
    }
    missing_layer = {**permission, "LayerName": f"{layer}-doesnotexist"}
    missing_version = {**permission, "VersionNumber": 2}
    for step, fn, kwargs in [
        (
            "layer_permission_action_invalid",
            lam.add_layer_version_permission,
            {**permission, "Action": "*", "StatementId": "s-x"},
        ),
        (
            "layer_permission_duplicate_statement",
            lam.add_layer_version_permission,
            {**permission, "StatementId": "s1"},
        ),
        (
            "layer_permission_wrong_revision",
            lam.add_layer_version_permission,
            {**permission, "StatementId": "s2", "RevisionId": "wrong"},
        ),
        (
            "layer_permission_layername_doesnotexist_add",
            lam.add_layer_version_permission,
            {**missing_layer, "StatementId": "s-y"},
        ),
        (
            "layer_permission_layername_doesnotexist_get",
            lam.get_layer_version_policy,
            {"LayerName": f"{layer}-doesnotexist", "VersionNumber": 1},
        ),
        (
            "layer_permission_layername_doesnotexist_remove",
            lam.remove_layer_version_permission,
            {"LayerName": f"{layer}-doesnotexist", "VersionNumber": 1, "StatementId": "s1"},
        ),
        (
            "layer_permission_layerversion_doesnotexist_add",
            lam.add_layer_version_permission,
            {**missing_version, "StatementId": "s-z"},
        ),
        (
            "layer_permission_layerversion_doesnotexist_get",
            lam.get_layer_version_policy,
            {"LayerName": layer, "VersionNumber": 2},
        ),
        (
            "layer_permission_layerversion_doesnotexist_remove",
            lam.remove_layer_version_permission,
            {"LayerName": layer, "VersionNumber": 2, "StatementId": "s1"},
        ),
        (
            "layer_permission_statementid_doesnotexist_remove",
            lam.remove_layer_version_permission,
            {"LayerName": layer, "VersionNumber": 1, "StatementId": "doesnotexist"},
        ),
        (
            "layer_permission_wrong_revision_remove",
            lam.remove_layer_version_permission,
            {"LayerName": layer, "VersionNumber": 1, "StatementId": "s1", "RevisionId": "wrong"},
        ),
    ]:
        same_as_aws(failure(fn, **kwargs), test, step, resource_1=layer)


def test_layer_policy_lifecycle(lam: Any) -> None:
    layer = unique_name("policy")
    publish(lam, layer, {"a.txt": "a"})
    recorded = reference("TestLambdaLayer::test_layer_policy_lifecycle", "get_layer_version_policy")
    permission = {"LayerName": layer, "VersionNumber": 1, "Action": "lambda:GetLayerVersion"}
    first = lam.add_layer_version_permission(**permission, StatementId="s1", Principal="*")
    policy = lam.get_layer_version_policy(LayerName=layer, VersionNumber=1)
    assert policy["RevisionId"] == first["RevisionId"]
    document = json.loads(policy["Policy"])
    resource = f"{PREFIX}:{layer}:1"
    expected = json.loads(
        json.dumps(recorded["Policy"]).replace(
            "arn:<partition>:lambda:<region>:111111111111:layer:<resource:1>", f"{PREFIX}:{layer}"
        )
    )
    assert document == expected
    second = lam.add_layer_version_permission(
        **permission,
        StatementId="s2",
        Principal="123456789012",
        OrganizationId="o-abcdefghij",
        RevisionId=policy["RevisionId"],
    )
    assert json.loads(second["Statement"]) == {
        "Sid": "s2",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "lambda:GetLayerVersion",
        "Resource": resource,
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}},
    }
    both = lam.get_layer_version_policy(LayerName=layer, VersionNumber=1)
    assert [s["Sid"] for s in json.loads(both["Policy"])["Statement"]] == ["s1", "s2"]
    removed = lam.remove_layer_version_permission(
        LayerName=layer, VersionNumber=1, StatementId="s2", RevisionId=both["RevisionId"]
    )
    assert removed["ResponseMetadata"]["HTTPStatusCode"] == 204
    after = lam.get_layer_version_policy(LayerName=layer, VersionNumber=1)
    assert json.loads(after["Policy"]) == expected
    assert after["RevisionId"] not in (first["RevisionId"], both["RevisionId"])


def test_function_layer_errors_match_aws(lam: Any, role: str) -> None:
    test = "test_layer_function_exceptions"
    layer = unique_name("layer")
    arns = [
        publish(lam, layer, {"a.txt": "a"}, CompatibleArchitectures=["x86_64"])["LayerVersionArn"]
        for _ in range(3)
    ]
    name = function(lam, role, {"handler.py": "def handler(e, c):\n    return 1\n"}, [])
    before = lam.get_function_configuration(FunctionName=name)
    before.pop("ResponseMetadata")
    for step, layers in [
        ("two_layer_versions_single_function_exc", arns[:2]),
        ("three_layer_versions_single_function_exc", arns),
        ("two_identical_layer_versions_single_function_exc", [arns[0], arns[0]]),
        ("add_nonexistent_layer_exc", [f"{PREFIX}:doesnotexist:1"]),
        ("add_nonexistent_layer_version_exc", [f"{PREFIX}:{layer}:9"]),
        ("add_layer_arn_without_version_exc", [f"{PREFIX}:{layer}"]),
    ]:
        got = failure(lam.update_function_configuration, FunctionName=name, Layers=layers)
        same_as_aws(got, test, step, resource_1=layer)
    after = lam.get_function_configuration(FunctionName=name)
    after.pop("ResponseMetadata")
    assert after == before  # nothing changed

    create = {
        "FunctionName": unique_name("lyr"),
        "Runtime": RUNTIME,
        "Role": role,
        "Handler": "handler.handler",
        "Code": {"ZipFile": make_zip()},
    }
    other_region = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:{layer}:1"
    same_as_aws(
        failure(lam.create_function, **create, Layers=[other_region]),
        test,
        "create_function_with_layer_in_different_region",
    )
    six = [publish(lam, unique_name("six"), {"a.txt": "a"})["LayerVersionArn"] for _ in range(6)]
    same_as_aws(
        failure(lam.create_function, **create, Layers=six),
        "test_layer_function_quota_exception",
        "create_function_with_six_layers",
    )
    with pytest.raises(ClientError):
        lam.get_function(FunctionName=create["FunctionName"])  # nothing was created


def test_code_and_layers_together_stay_under_250_mb(lam: Any, role: str) -> None:
    half = 131_072_000  # two of these are exactly the limit; any code tips it over
    big = zeros("big.bin", half)
    arns = [
        lam.publish_layer_version(LayerName=unique_name("big"), Content={"ZipFile": big})[
            "LayerVersionArn"
        ]
        for _ in range(2)
    ]
    code = make_zip()
    unzipped = sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(code)).infolist())
    got = failure(
        lam.create_function,
        FunctionName=unique_name("big"),
        Runtime=RUNTIME,
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": code},
        Layers=arns,
    )
    assert got["Error"]["Code"] == "InvalidParameterValueException"
    assert got["Error"]["Message"] == (
        "Function code combined with layers exceeds the maximum allowed size of 262144000 "
        f"bytes. The actual size is {2 * half + unzipped} bytes."
    )
    name = function(lam, role, {"handler.py": "def handler(e, c):\n    return 1\n"}, arns[:1])
    bigger = zeros("handler.py", half + 1)  # fits alone, not with the layer
    too_big = failure(lam.update_function_code, FunctionName=name, ZipFile=bigger)
    assert "combined with layers exceeds" in too_big["Error"]["Message"]
    too_many = failure(lam.update_function_configuration, FunctionName=name, Layers=arns)
    assert "combined with layers exceeds" in too_many["Error"]["Message"]


# -- what functions see at /opt ------------------------------------------------------

PY_IMPORTS = """
import sys
import layered_mod
import layered_pkg

def handler(event, context):
    return {
        "mod": layered_mod.WHO,
        "pkg": layered_pkg.WHO,
        "pkg_file": layered_pkg.__file__,
        "prewarmed": "--prewarm" in sys.argv,
    }
"""


def test_layer_supplies_a_python_package(lam: Any, role: str) -> None:
    """Both search paths, on both ways a Python environment starts: spawned with its
    PYTHON* variables, or taken over pre-initialised (/opt mounted after the start)."""
    arn = publish(
        lam,
        unique_name("pylib"),
        {
            "python/layered_mod.py": "WHO = 'module in python/'\n",
            f"python/lib/python{MINOR}/site-packages/layered_pkg/__init__.py": "WHO = 'package'\n",
        },
        CompatibleRuntimes=[RUNTIME],
    )["LayerVersionArn"]
    spawned = function(
        lam,
        role,
        {"handler.py": PY_IMPORTS},
        [arn],
        Environment={"Variables": {"PYTHONSAFEPATH": "1"}},
    )
    body = call(lam, spawned)
    assert body["mod"] == "module in python/" and body["pkg"] == "package"
    assert (
        body["pkg_file"] == f"/opt/python/lib/python{MINOR}/site-packages/layered_pkg/__init__.py"
    )
    assert body["prewarmed"] is False
    # Pre-initialised environments of this kind are started after a cold start; new
    # functions then take them over, until one has.
    call(lam, function(lam, role, {"handler.py": "def handler(e, c):\n    return {}\n"}, []))
    seen = []
    for _ in range(20):
        time.sleep(0.5)
        body = call(lam, function(lam, role, {"handler.py": PY_IMPORTS}, [arn]))
        assert body["mod"] == "module in python/" and body["pkg"] == "package"
        seen.append(body["prewarmed"])
        if body["prewarmed"]:
            break
    assert seen[-1] is True, seen


@pytest.mark.skipif(NODE is None, reason="no `node` on this host")
def test_layer_supplies_a_node_module(lam: Any, role: str) -> None:
    arn = publish(
        lam,
        unique_name("nodelib"),
        {"nodejs/node_modules/layered/index.js": "module.exports = { who: 'node layer' };\n"},
    )["LayerVersionArn"]
    handler = """
    const layered = require('layered');
    exports.handler = async () => ({ who: layered.who, path: require.resolve('layered') });
    """
    name = function(lam, role, {"index.js": handler}, [arn], Runtime=NODE, Handler="index.handler")
    body = call(lam, name)
    assert body == {"who": "node layer", "path": "/opt/nodejs/node_modules/layered/index.js"}


SHARED = """
import shared

def handler(event, context):
    return shared.WHO
"""


def test_later_layers_override_earlier_ones(lam: Any, role: str) -> None:
    first = publish(lam, unique_name("first"), {"python/shared.py": "WHO = 'first'\n"})
    second = publish(lam, unique_name("second"), {"python/shared.py": "WHO = 'second'\n"})
    order = [first["LayerVersionArn"], second["LayerVersionArn"]]
    name = function(lam, role, {"handler.py": SHARED}, order)
    assert call(lam, name) == "second"
    lam.update_function_configuration(FunctionName=name, Layers=list(reversed(order)))
    wait_settled(lam, name)
    assert call(lam, name) == "first"


NATIVE = """
import ctypes, os, subprocess, sys

def handler(event, context):
    tool = subprocess.run(["layer-tool"], capture_output=True, text=True, check=True)
    zlib = ctypes.CDLL("liblayerz.so.1")
    zlib.zlibVersion.restype = ctypes.c_char_p
    return {
        "tool": tool.stdout.strip(),
        "zlib": zlib.zlibVersion().decode(),
        "path": os.environ["PATH"],
        "ld": os.environ["LD_LIBRARY_PATH"],
    }
"""


def test_bin_on_path_and_lib_on_ld_library_path(lam: Any, role: str) -> None:
    found = ctypes.util.find_library("z")
    candidates = [Path(p) / str(found) for p in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/lib")]
    library = next((c for c in candidates if c.exists()), None)
    if library is None:
        pytest.skip("no zlib shared library to ship in a layer")
    arn = publish(
        lam,
        unique_name("native"),
        {
            "bin/layer-tool": "#!/bin/sh\necho tool from the layer\n",
            "lib/liblayerz.so.1": library.resolve().read_bytes(),
        },
        zip={"mode": 0o755},
    )["LayerVersionArn"]
    body = call(lam, function(lam, role, {"handler.py": NATIVE}, [arn]))
    assert body["tool"] == "tool from the layer"
    assert body["zlib"].count(".") >= 2
    assert "/opt/bin" in body["path"].split(":") and "/opt/lib" in body["ld"].split(":")


def test_function_works_after_its_layer_version_is_deleted(lam: Any, role: str) -> None:
    layer = unique_name("gone")
    arn = publish(lam, layer, {"python/shared.py": "WHO = 'still here'\n"})["LayerVersionArn"]
    name = function(lam, role, {"handler.py": SHARED}, [arn])
    assert call(lam, name) == "still here"
    lam.delete_layer_version(LayerName=layer, VersionNumber=1)
    with pytest.raises(ClientError):
        lam.get_layer_version(LayerName=layer, VersionNumber=1)
    # A configuration change starts new environments: /opt is still there for them.
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"NEXT": "2"}})
    assert wait_settled(lam, name)["Layers"][0]["Arn"] == arn
    assert call(lam, name) == "still here"
    # But no function may newly reference the deleted version.
    got = failure(lam.update_function_configuration, FunctionName=name, Layers=[arn])
    assert got["Error"]["Message"] == f"Layer version {arn} does not exist."


EXTENSION = """#!/usr/bin/python3 -I
import json, os, urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2020-01-01/extension"
request = urllib.request.Request(
    API + "/register", data=json.dumps({"events": ["INVOKE"]}).encode(), method="POST",
    headers={"Lambda-Extension-Name": "recorder"},
)
with urllib.request.urlopen(request) as response:
    ident = response.headers["Lambda-Extension-Identifier"]
with open("/tmp/extension-registered", "w") as f:
    f.write("recorder")
while True:
    request = urllib.request.Request(
        API + "/event/next", headers={"Lambda-Extension-Identifier": ident}
    )
    with urllib.request.urlopen(request) as response:
        event = json.loads(response.read())
    with open("/tmp/extension-events", "a") as f:
        f.write(event.get("requestId", "") + "\\n")
"""

SEES_EXTENSION = """
import os

def read(path):
    return open(path).read() if os.path.exists(path) else None

def handler(event, context):
    return {
        "request_id": context.aws_request_id,
        "registered": read("/tmp/extension-registered"),
        "events": (read("/tmp/extension-events") or "").split(),
    }
"""


def test_layer_supplies_an_external_extension(lam: Any, role: str) -> None:
    arn = publish(lam, unique_name("ext"), {"extensions/recorder": EXTENSION}, zip={"mode": 0o755})[
        "LayerVersionArn"
    ]
    name = function(lam, role, {"handler.py": SEES_EXTENSION}, [arn])
    first = call(lam, name)
    assert first["registered"] == "recorder"
    second = call(lam, name)
    assert first["request_id"] in second["events"]


def test_cli(server: ServerProcess, tmp_path: Path, lam: Any) -> None:
    layer = unique_name("cli")
    package = tmp_path / "layer.zip"
    package.write_bytes(make_zip({"python/cli_mod.py": "X = 1\n"}))
    published = json.loads(
        _aws(
            server,
            "publish-layer-version",
            "--layer-name",
            layer,
            "--zip-file",
            f"fileb://{package}",
            "--compatible-runtimes",
            RUNTIME,
            "--compatible-architectures",
            "x86_64",
            "--license-info",
            "MIT",
        ).stdout
    )
    assert published["LayerVersionArn"] == f"{PREFIX}:{layer}:1"
    assert published["CompatibleRuntimes"] == [RUNTIME]
    listed = json.loads(
        _aws(
            server, "list-layer-versions", "--layer-name", layer, "--compatible-runtime", RUNTIME
        ).stdout
    )
    assert [v["Version"] for v in listed["LayerVersions"]] == [1]
    got = json.loads(
        _aws(server, "get-layer-version-by-arn", "--arn", published["LayerVersionArn"]).stdout
    )
    assert got["LicenseInfo"] == "MIT"
    statement = json.loads(
        _aws(
            server,
            "add-layer-version-permission",
            "--layer-name",
            layer,
            "--version-number",
            "1",
            "--statement-id",
            "everyone",
            "--action",
            "lambda:GetLayerVersion",
            "--principal",
            "*",
        ).stdout
    )
    assert json.loads(statement["Statement"])["Principal"] == "*"
    _aws(server, "delete-layer-version", "--layer-name", layer, "--version-number", "1")
    missing = _aws(
        server, "get-layer-version", "--layer-name", layer, "--version-number", "1", check=False
    )
    assert missing.returncode != 0
    assert "ResourceNotFoundException" in missing.stderr
    assert "The resource you requested does not exist." in missing.stderr
    assert os.environ.get("AWS_EC2_METADATA_DISABLED") == "true"


RUNTIME_LOOP = """
import json, os, urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(API + "next") as response:
        request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(response.read())
    handler = open(os.path.join(os.environ["LAMBDA_TASK_ROOT"], os.environ["_HANDLER"])).read()
    body = json.dumps({"runtime": "from a layer", "handler": handler.strip(), "event": event})
    urllib.request.urlopen(
        urllib.request.Request(API + request_id + "/response", data=body.encode(), method="POST")
    ).read()
"""


def test_layer_supplies_a_custom_runtime_bootstrap(lam: Any, role: str) -> None:
    arn = publish(
        lam,
        unique_name("runtime"),
        {
            "bootstrap": "#!/bin/sh\nexec /usr/bin/python3 -I /opt/runtime.py\n",
            "runtime.py": RUNTIME_LOOP,
        },
        zip={"mode": 0o755},
        CompatibleRuntimes=["provided.al2023"],
    )["LayerVersionArn"]
    name = function(
        lam, role, {"script.txt": "the function's own file"}, [arn],
        Runtime="provided.al2023", Handler="script.txt",
    )  # fmt: skip
    response = lam.invoke(FunctionName=name, Payload=b'{"n": 1}')
    body = json.loads(response["Payload"].read())
    assert body == {
        "runtime": "from a layer",
        "handler": "the function's own file",
        "event": {"n": 1},
    }
