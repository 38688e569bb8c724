"""What versions and aliases cost on the invoke path and in the control plane.

Against a real server and real sandboxes, a trivial Python function (this interpreter's
version, 128 MB), warm, over one raw keep-alive HTTP connection:

- warm invoke of $LATEST, of version 1, of an alias on version 1, and of an alias
  routing 30% to version 2 (the qualifier resolution and the weighted draw);
- PublishVersion (a new version each time: the configuration changes in between),
  CreateAlias and UpdateAlias through boto3.

    .venv/bin/python bench/versions.py [--samples 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.invoke import ROLE, RUNTIME, raw_samples, summary, wait_active
from lambdaplane.testing import ServerProcess, make_zip, start_server

ECHO = "def handler(event, context):\n    return event\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--control", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            run(server, args)
        finally:
            server.stop()


def run(server: ServerProcess, args: Any) -> None:
    lam = server.client()
    lam.create_function(
        FunctionName="fn",
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": ECHO})},
    )
    wait_active(lam, "fn")
    lam.publish_version(FunctionName="fn")
    lam.update_function_configuration(FunctionName="fn", Description="two")
    wait_active(lam, "fn")
    lam.update_function_configuration(FunctionName="fn", Timeout=4)
    wait_active(lam, "fn")
    lam.publish_version(FunctionName="fn")
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    lam.create_alias(
        FunctionName="fn",
        Name="canary",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}},
    )
    body = b'{"x": 1}'
    for label, qualifier in (
        ("warm invoke $LATEST", ""),
        ("warm invoke version 1", "?Qualifier=1"),
        ("warm invoke alias -> 1", "?Qualifier=live"),
        ("warm invoke alias 70/30 over 1 and 2", "?Qualifier=canary"),
    ):
        path = f"/2015-03-31/functions/fn/invocations{qualifier}"
        raw_samples(server, path, body, 50, body)  # warm every version's environment
        summary(f"{label}, raw HTTP", raw_samples(server, path, body, args.samples, body))

    publish, create, update = [], [], []
    for i in range(args.control):
        lam.update_function_configuration(FunctionName="fn", Timeout=5 + i % 800)
        wait_active(lam, "fn")
        start = time.perf_counter()
        lam.publish_version(FunctionName="fn")
        publish.append(time.perf_counter() - start)
        start = time.perf_counter()
        lam.create_alias(FunctionName="fn", Name=f"a{i}", FunctionVersion="1")
        create.append(time.perf_counter() - start)
        start = time.perf_counter()
        lam.update_alias(FunctionName="fn", Name=f"a{i}", FunctionVersion="2")
        update.append(time.perf_counter() - start)
    summary("PublishVersion, boto3", publish)
    summary("CreateAlias, boto3", create)
    summary("UpdateAlias, boto3", update)
    lam.close()


if __name__ == "__main__":
    main()
