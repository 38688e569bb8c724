"""Cold-start cost of layers against a real server and real sandboxes.

Prints, for a trivial Python function (runtime: this interpreter's version, 128 MB),
request sent -> handler entry and end to end, median and p99 over fresh functions each
invoked once, arrivals 0.3 s apart (so pre-initialised sandboxes refill in between),
the configurations interleaved so the machine's noise spreads over all of them:

- no layers;
- 5 layers (each a Python package of 20 modules and 256 KB of data), not imported;
- the same 5 layers, one module of each imported at init;
- 5 layers, one shipping a native library in lib/, spawned (a PYTHON* variable rules
  out a pre-initialised sandbox), and for comparison a function without layers that
  is spawned the same way.

Also how long CreateFunction takes to reach Active with 5 layers and without (the
first function using a list of layers merges them into one /opt tree).

    .venv/bin/python bench/layers.py [--cold 20]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from lambdaplane.testing import ServerProcess, make_zip, start_server

ROLE = "arn:aws:iam::000000000000:role/bench"
RUNTIME = f"python3.{sys.version_info.minor}"
ENTRY = "import time\ndef handler(event, context):\n    return {'entry': time.time()}\n"
IMPORTING = (
    "import layer0.m0, layer1.m0, layer2.m0, layer3.m0, layer4.m0\n" + ENTRY
)  # one module of each layer


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.3f} ms"


def summary(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"{label:<66} n={len(samples):>4}  p50={ms(p50)}  p99={ms(p99)}")


def layer_files(index: int) -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {f"python/layer{index}/__init__.py": ""}
    for module in range(20):
        files[f"python/layer{index}/m{module}.py"] = f"VALUE = {module}\n" + "X = 1\n" * 50
    files[f"python/layer{index}/data.bin"] = os.urandom(256 * 1024)
    return files


def publish_layers(lam: Any) -> tuple[list[str], list[str]]:
    plain = [
        lam.publish_layer_version(
            LayerName=f"bench-{i}", Content={"ZipFile": make_zip(layer_files(i))}
        )["LayerVersionArn"]
        for i in range(5)
    ]
    native_files = {**layer_files(4), "lib/libbench.so": b"\x7fELF not really loaded"}
    native = lam.publish_layer_version(
        LayerName="bench-native", Content={"ZipFile": make_zip(native_files)}
    )["LayerVersionArn"]
    return plain, [*plain[:4], native]


def create(
    lam: Any, name: str, handler: str, layers: list[str], variables: dict[str, str] | None = None
) -> float:
    """Create a function; seconds until it is Active."""
    start = time.perf_counter()
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": handler})},
        Layers=layers,
        Environment={"Variables": variables or {}},
    )
    while lam.get_function_configuration(FunctionName=name)["State"] != "Active":
        time.sleep(0.002)
    return time.perf_counter() - start


def cold_invoke(server: ServerProcess, name: str) -> tuple[float, float]:
    """(request sent -> handler entry, end to end) of a function's first invocation."""
    path = f"/2015-03-31/functions/{name}/invocations"
    request = AWSRequest(method="POST", url=server.endpoint + path, data=b"{}")
    credentials = Credentials(server.access_key_id, server.secret_access_key)
    SigV4Auth(credentials, "lambda", server.region).add_auth(request)
    headers = dict(request.prepare().headers.items())
    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    sent = time.time()
    start = time.perf_counter()
    conn.request("POST", path, body=b"{}", headers=headers)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    conn.close()
    if response.status != 200 or response.getheader("X-Amz-Function-Error"):
        raise SystemExit(f"{name}: {response.status} {body[:300]!r}")
    return json.loads(body)["entry"] - sent, elapsed


def run(server: ServerProcess, cold: int) -> None:
    lam = server.client()
    try:
        plain, with_native = publish_layers(lam)
        spawn = {"PYTHONNOUSERSITE": "1"}  # a PYTHON* variable: no pre-initialised sandbox
        configs: dict[str, tuple[str, list[str], dict[str, str]]] = {
            "no layers": (ENTRY, [], {}),
            "5 layers, not imported": (ENTRY, plain, {}),
            "5 layers, one module of each imported at init": (IMPORTING, plain, {}),
            "no layers, spawned (a PYTHON* variable)": (ENTRY, [], spawn),
            "5 layers, one with lib/, spawned (a PYTHON* variable)": (ENTRY, with_native, spawn),
        }
        # The first function of each list of layers merges /opt while settling.
        for label, layers in (("without layers", []), ("with 5 layers (merged now)", plain)):
            ready = create(lam, f"first-{len(layers)}", ENTRY, layers)
            print(f"{'CreateFunction -> Active, ' + label:<66} {ms(ready)}")
        names: dict[str, list[str]] = {label: [] for label in configs}
        for i in range(cold):
            for n, (label, (handler, layers, variables)) in enumerate(configs.items()):
                name = f"cold-{n}-{i}"
                create(lam, name, handler, layers, variables)
                names[label].append(name)
        cold_invoke(server, "first-0")  # the kind's pre-initialised sandboxes start now
        time.sleep(1.0)
        results: dict[str, list[tuple[float, float]]] = {label: [] for label in configs}
        for i in range(cold):
            for label in configs:
                time.sleep(0.3)
                results[label].append(cold_invoke(server, names[label][i]))
        for label, samples in results.items():
            summary(f"cold start, {label}: sent -> entry", [s[0] for s in samples])
            summary(f"cold start, {label}: end to end", [s[1] for s in samples])
    finally:
        lam.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold", type=int, default=20, help="cold starts per configuration")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            run(server, args.cold)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
