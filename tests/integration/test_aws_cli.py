"""The real AWS CLI against the real server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from lambdaplane.testing import ServerProcess, make_zip
from tests.integration.helpers import RUNTIME, unique_name, wait_settled


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


def test_cli_lifecycle(server: ServerProcess, tmp_path: Path, role: str, lam: Any) -> None:
    name = unique_name("cli")
    package = tmp_path / "fn.zip"
    package.write_bytes(make_zip())
    created = json.loads(
        _aws(
            server,
            "create-function",
            "--function-name",
            name,
            "--runtime",
            RUNTIME,
            "--role",
            role,
            "--handler",
            "handler.handler",
            "--zip-file",
            f"fileb://{package}",
            "--tags",
            "team=core",
        ).stdout
    )
    assert created["FunctionName"] == name and created["State"] == "Pending"
    wait_settled(lam, name)
    got = json.loads(_aws(server, "get-function", "--function-name", name).stdout)
    assert got["Configuration"]["State"] == "Active"
    assert got["Tags"] == {"team": "core"}
    listed = json.loads(_aws(server, "list-functions").stdout)
    assert name in [f["FunctionName"] for f in listed["Functions"]]
    updated = json.loads(
        _aws(
            server,
            "update-function-configuration",
            "--function-name",
            name,
            "--memory-size",
            "1024",
        ).stdout
    )
    assert updated["MemorySize"] == 1024
    settings = json.loads(_aws(server, "get-account-settings").stdout)
    assert settings["AccountLimit"]["CodeSizeZipped"] == 52428800
    _aws(server, "delete-function", "--function-name", name)
    missing = _aws(server, "get-function", "--function-name", name, check=False)
    assert missing.returncode != 0
    assert "ResourceNotFoundException" in missing.stderr
    assert (
        f"Function not found: arn:aws:lambda:us-east-1:000000000000:function:{name}"
        in missing.stderr
    )


def test_cli_permissions(server: ServerProcess, role: str, lam: Any) -> None:
    """add-permission / get-policy / remove-permission through the real CLI."""
    name = unique_name("cliperm")
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": make_zip()},
    )
    wait_settled(lam, name)
    added = json.loads(
        _aws(
            server,
            "add-permission",
            "--function-name",
            name,
            "--statement-id",
            "public-url",
            "--action",
            "lambda:InvokeFunctionUrl",
            "--principal",
            "*",
            "--function-url-auth-type",
            "NONE",
        ).stdout
    )
    statement = json.loads(added["Statement"])
    assert statement["Sid"] == "public-url"
    assert statement["Condition"] == {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}
    policy = json.loads(
        json.loads(_aws(server, "get-policy", "--function-name", name).stdout)["Policy"]
    )
    assert [s["Sid"] for s in policy["Statement"]] == ["public-url"]
    duplicate = _aws(
        server,
        "add-permission",
        "--function-name",
        name,
        "--statement-id",
        "public-url",
        "--action",
        "lambda:InvokeFunction",
        "--principal",
        "s3.amazonaws.com",
        check=False,
    )
    assert duplicate.returncode != 0 and "ResourceConflictException" in duplicate.stderr
    _aws(server, "remove-permission", "--function-name", name, "--statement-id", "public-url")
    gone = _aws(server, "get-policy", "--function-name", name, check=False)
    assert gone.returncode != 0 and "ResourceNotFoundException" in gone.stderr
