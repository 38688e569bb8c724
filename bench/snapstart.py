"""Cold starts from a SnapStart snapshot versus on-demand ones, through the Invoke API.

    sudo .venv/bin/python bench/snapstart.py [--runs 20]

For a hello function and one whose init imports boto3 and builds a client, each run
is a new environment's first invocation: after every measured invoke the next one
makes its runtime exit, so the following invoke must start (or restore) a new one;
0.3 s later, so the snapshot's spare (or a pre-initialised sandbox) is ready again.
Prints the median (and p90) of:

- arrival -> handler: the client's send time to the handler's first line (same host
  clock; the client's send precedes the server's arrival by the HTTP hop, ~0.2 ms);
- end to end: send to the response read;
- REPORT's Restore Duration (SnapStart) or Init Duration (on-demand).

A last row invokes a warm environment of the version, the floor of the first two.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import statistics
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from lambdaplane.testing import make_zip, start_server

HELLO = """
import os, time

def handler(event, context):
    entered = time.time()
    if event.get("die"):
        os._exit(1)
    return {"entered": entered}
"""

BOTO3 = """
import os, time
import boto3

client = boto3.client("s3", region_name="us-east-1")

def handler(event, context):
    entered = time.time()
    if event.get("die"):
        os._exit(1)
    return {"entered": entered}
"""

ROLE = "arn:aws:iam::000000000000:role/bench"
RUNTIME = "python3.12"


def wait(lam: Any, name: str, qualifier: str) -> None:
    for _ in range(1200):
        state = lam.get_function_configuration(FunctionName=name, Qualifier=qualifier)["State"]
        if state == "Active":
            return
        if state == "Failed":
            raise SystemExit(f"{name}:{qualifier} failed")
        time.sleep(0.05)
    raise SystemExit(f"{name}:{qualifier} never became Active")


def measure(
    lam: Any, name: str, qualifier: str, runs: int, settle: float = 0.3
) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"handler": [], "e2e": [], "phase": []}
    for _ in range(runs):
        sent = time.time()
        response = lam.invoke(FunctionName=name, Qualifier=qualifier, Payload=b"{}", LogType="Tail")
        body = json.loads(response["Payload"].read())
        done = time.time()
        tail = base64.b64decode(response["LogResult"]).decode()
        match = re.search(r"(Restore|Init) Duration: ([0-9.]+) ms", tail)
        figures["handler"].append((body["entered"] - sent) * 1000)
        figures["e2e"].append((done - sent) * 1000)
        figures["phase"].append(float(match.group(2)) if match else float("nan"))
        if settle < 0:
            continue  # warm: the same environment again
        lam.invoke(FunctionName=name, Qualifier=qualifier, Payload=b'{"die": true}')
        time.sleep(settle)  # a snapshot's spare (or a pre-initialised sandbox) is ready again
    return figures


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"{statistics.median(values):7.2f} ms (p90 {p90:7.2f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            lam = server.client()
            for label, source in (("hello", HELLO), ("boto3 client", BOTO3)):
                name = f"bench-snap-{label.split()[0]}-{int(time.time())}"
                lam.create_function(
                    FunctionName=name,
                    Runtime=RUNTIME,
                    Role=ROLE,
                    Handler="handler.handler",
                    MemorySize=512,
                    Timeout=30,
                    Code={"ZipFile": make_zip({"handler.py": textwrap.dedent(source)})},
                    SnapStart={"ApplyOn": "PublishedVersions"},
                )
                wait(lam, name, "$LATEST")
                version = lam.publish_version(FunctionName=name)["Version"]
                wait(lam, name, version)
                measure(lam, name, version, 2)  # warm the host's caches
                measure(lam, name, "$LATEST", 2)
                modes = (("snapshot", version, 0.3), ("on-demand", "$LATEST", 0.3))
                for mode, qualifier, settle in (*modes, ("warm", version, -1.0)):
                    figures = measure(lam, name, qualifier, args.runs, settle)
                    phase = "Restore" if mode == "snapshot" else "Init"
                    print(
                        f"{label:13} {mode:9}  arrival->handler {summary(figures['handler'])}"
                        f"  end to end {summary(figures['e2e'])}"
                        f"  {phase} Duration {summary(figures['phase'])}"
                    )
        finally:
            server.process.terminate()
            server.process.wait(10)


if __name__ == "__main__":
    main()
