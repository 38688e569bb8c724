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
