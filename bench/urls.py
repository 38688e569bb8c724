"""Function URL latency and throughput, beside the synchronous Invoke API's.

One warm Python function (this interpreter's version) answers both paths with the
same small body. Prints p50/p99 of sequential requests on one keep-alive connection,
then wrk's rate (32 connections, ``--duration`` seconds), every response checked:

- Invoke API (SigV4-signed POST /2015-03-31/functions/<name>/invocations);
- function URL by Host header (``<url-id>.lambda-url.<region>.localhost``), auth NONE;
- function URL by the path form (``/lambda-url/<url-id>/``);
- function URL with AuthType AWS_IAM (every request SigV4-signed; raw client only,
  since wrk would replay one signature).

    .venv/bin/python bench/urls.py [--samples 2000] [--duration 10]

Needs Debian's wrk for the throughput rows; skipped without it.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench.invoke

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bench.invoke import RUNTIME, run_wrk, signed_headers, summary, wait_active
from lambdaplane.testing import ServerProcess, make_zip, start_server

ROLE = "arn:aws:iam::000000000000:role/bench"
HANDLER = (
    "def handler(event, context):\n"
    "    if 'requestContext' in event:\n"
    "        return {'statusCode': 200, 'headers': {'content-type': 'text/plain'}, 'body': 'hello'}\n"
    "    return 'hello'\n"
)
URL_BODY = b"hello"
INVOKE_BODY = b'"hello"'


def sequential(
    port: int,
    method: str,
    path: str,
    body: bytes,
    expect: bytes,
    count: int,
    headers: dict[str, str] | None = None,
    sign: Any = None,
) -> list[float]:
    """``count`` requests on one keep-alive connection; ``sign`` re-signs each one."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        sent = sign() if sign is not None else headers or {}
        conn.request(method, path, body=body or None, headers=sent)
        response = conn.getresponse()
        data = response.read()
        samples.append(time.perf_counter() - start)
        if response.status != 200 or data != expect:
            raise SystemExit(f"bad response {response.status}: {data[:300]!r}")
    conn.close()
    return samples


def create(lam: Any, name: str, auth: str) -> str:
    """The function and its URL (public when ``auth`` is NONE); returns the URL."""
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": HANDLER})},
    )
    wait_active(lam, name)
    url: str = lam.create_function_url_config(FunctionName=name, AuthType=auth)["FunctionUrl"]
    if auth == "NONE":
        lam.add_permission(
            FunctionName=name,
            StatementId="public",
            Action="lambda:InvokeFunctionUrl",
            Principal="*",
            FunctionUrlAuthType="NONE",
        )
    return url


def run(server: ServerProcess, args: Any) -> None:
    lam = server.client()
    public = create(lam, "url-bench", "NONE")
    iam = create(lam, "url-bench-iam", "AWS_IAM")
    host = urlsplit(public).netloc
    url_id = host.split(".", 1)[0]
    port = server.port

    invoke_path = "/2015-03-31/functions/url-bench/invocations"
    invoke_headers = signed_headers(server, "POST", invoke_path, b"{}")
    by_host = {"Host": host}
    path_form = f"/lambda-url/{url_id}/"

    credentials = Credentials(server.access_key_id, server.secret_access_key)
    iam_url = iam.rstrip("/") + "/"
    iam_host = urlsplit(iam).netloc

    def sign_iam() -> dict[str, str]:
        request = AWSRequest(method="GET", url=iam_url)
        SigV4Auth(credentials, "lambda", server.region).add_auth(request)
        return {**request.prepare().headers, "Host": iam_host}  # the signed Host

    n = args.samples
    sequential(port, "POST", invoke_path, b"{}", INVOKE_BODY, 200, invoke_headers)  # warm up
    sequential(port, "GET", "/", b"", URL_BODY, 200, by_host)
    sequential(port, "GET", "/", b"", URL_BODY, 200, sign=sign_iam)
    summary(
        "Invoke API (SigV4), raw HTTP keep-alive",
        sequential(port, "POST", invoke_path, b"{}", INVOKE_BODY, n, invoke_headers),
    )
    summary(
        "function URL by Host, auth NONE, raw keep-alive",
        sequential(port, "GET", "/", b"", URL_BODY, n, by_host),
    )
    summary(
        "function URL path form, auth NONE, raw keep-alive",
        sequential(port, "GET", path_form, b"", URL_BODY, n),
    )
    summary(
        "function URL, AWS_IAM (signed each time), raw",
        sequential(port, "GET", "/", b"", URL_BODY, n, sign=sign_iam),
    )
    base = f"http://127.0.0.1:{port}"
    run_wrk("Invoke API", base + invoke_path, "POST", b"{}", INVOKE_BODY, invoke_headers,
            args.duration)  # fmt: skip
    run_wrk("function URL (Host)", base + "/", "GET", b"", URL_BODY, by_host, args.duration)
    run_wrk("function URL (path form)", base + path_form, "GET", b"", URL_BODY, {}, args.duration)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            run(server, args)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
