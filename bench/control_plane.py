"""Control-plane latency: CreateFunction, GetFunction and ListFunctions through boto3.

Starts a real ``lambdaplane serve`` on a free loopback port with a temporary data dir
and drives it with one boto3 client (keep-alive, as a user's script would), then prints
p50/p99 per operation. Measures what a user sees end to end: boto3's own signing and
parsing are included, exactly as in the peers' figures we compare against.

    .venv/bin/python bench/control_plane.py [--functions 1000] [--samples 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from lambdaplane.testing import make_zip, start_server

ROLE = "arn:aws:iam::000000000000:role/bench"
RUNTIME = f"python3.{sys.version_info.minor}"


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return p50 * 1000, p99 * 1000, statistics.fmean(ordered) * 1000


def timed(call: Callable[[], Any], count: int) -> list[float]:
    out = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def report(label: str, samples: list[float]) -> None:
    p50, p99, mean = percentiles(samples)
    print(
        f"{label:<44} n={len(samples):>5}  p50={p50:7.3f} ms  p99={p99:7.3f} ms  mean={mean:7.3f} ms"
    )


def raw_get(server: Any, name: str, count: int) -> list[float]:
    import http.client

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    path = f"/2015-03-31/functions/{name}"
    request = AWSRequest(method="GET", url=server.endpoint + path)
    SigV4Auth(
        Credentials(server.access_key_id, server.secret_access_key), "lambda", server.region
    ).add_auth(request)
    headers = dict(request.prepare().headers.items())
    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        samples.append(time.perf_counter() - start)
        assert response.status == 200, response.status
    conn.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--functions", type=int, default=1000, help="functions to create (and list)"
    )
    parser.add_argument("--samples", type=int, default=2000, help="GetFunction/ListFunctions calls")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            lam = server.client()
            package = make_zip()
            lam.list_functions()  # warm the connection and the client
            names = [f"bench-{i:05d}" for i in range(args.functions)]
            create = []
            for name in names:
                start = time.perf_counter()
                lam.create_function(
                    FunctionName=name,
                    Runtime=RUNTIME,
                    Role=ROLE,
                    Handler="handler.handler",
                    Code={"ZipFile": package},
                )
                create.append(time.perf_counter() - start)
            report(f"CreateFunction (small zip, {len(package)} B)", create)
            report(
                "GetFunction", timed(lambda: lam.get_function(FunctionName=names[0]), args.samples)
            )
            report(
                "GetFunctionConfiguration",
                timed(lambda: lam.get_function_configuration(FunctionName=names[0]), args.samples),
            )
            report(
                f"ListFunctions ({args.functions} functions, first 50)",
                timed(lambda: lam.list_functions(MaxItems=50), max(200, args.samples // 4)),
            )
            # The server's own share: the same signed GetFunction replayed over one raw
            # keep-alive connection (no client-side signing or parsing).
            report(
                "  (server alone: GetFunction, raw HTTP keep-alive)",
                raw_get(server, names[0], args.samples),
            )
            # The client's own share: the same GetFunction answered by a stub (no network).
            from botocore.stub import Stubber

            stubbed = server.client()
            reply = lam.get_function(FunctionName=names[0])
            reply.pop("ResponseMetadata")
            with Stubber(stubbed) as stub:

                def one() -> None:
                    stub.add_response("get_function", reply, {"FunctionName": names[0]})
                    stubbed.get_function(FunctionName=names[0])

                report("  (boto3 alone: GetFunction via Stubber)", timed(one, args.samples))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
