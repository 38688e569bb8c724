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
import re
import shutil
import subprocess
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

from bench.invoke import RUNTIME, lua_string, signed_headers, summary, wait_active
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

WRK_SCRIPT = """
wrk.method = {method}
wrk.body = {body}
wrk.headers = {headers}
local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  bad = 0
  sample = ""
end
function response(status, headers, body)
  if status ~= 200 or body ~= {expect} then
    bad = bad + 1
    if sample == "" then sample = status .. " " .. body end
  end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("bad")
    local s = thread:get("sample")
    if s ~= "" then io.write("SAMPLE " .. s .. "\\n") end
  end
  io.write(string.format("BAD %d\\n", total))
end
"""


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


def wrk(
    label: str,
    port: int,
    method: str,
    path: str,
    body: bytes,
    expect: bytes,
    headers: dict[str, str],
    duration: int,
) -> None:
    if shutil.which("wrk") is None:
        print(f"{'wrk ' + label:<52} skipped: install Debian's wrk")
        return
    lua_headers = (
        "{"
        + ", ".join(
            f"[ {lua_string(k)} ] = {lua_string(v)}"
            for k, v in headers.items()
            if k.lower() != "content-length"
        )
        + "}"
    )
    script = WRK_SCRIPT.format(
        method=lua_string(method),
        body=lua_string(body.decode()) if body else "nil",
        headers=lua_headers,
        expect=lua_string(expect.decode()),
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        result = subprocess.run(
            ["wrk", "-t2", "-c32", f"-d{duration}s", "--latency", "-s", handle.name,
             f"http://127.0.0.1:{port}{path}"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        os.unlink(handle.name)
    out = result.stdout + result.stderr
    if "BAD " not in out:
        raise SystemExit(f"wrk did not run the check script:\n{out}\n{script}")
    sample = re.search(r"SAMPLE (.*)", out)
    if sample:
        print(f"  first bad response: {sample.group(1)[:300]}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+([\d.]+\w+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    bad = re.search(r"BAD (\d+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    print(
        f"{'wrk 32 conns ' + label:<52} {float(rate.group(1)) if rate else 0:>9.0f} req/s  "
        f"p50={p50.group(1) if p50 else '?'}  p99={p99.group(1) if p99 else '?'}  "
        f"bad bodies={bad.group(1) if bad else '?'}  non-2xx={errors.group(1) if errors else 0}"
    )


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
    wrk("Invoke API", port, "POST", invoke_path, b"{}", INVOKE_BODY, invoke_headers, args.duration)
    wrk("function URL (Host)", port, "GET", "/", b"", URL_BODY, by_host, args.duration)
    wrk("function URL (path form)", port, "GET", path_form, b"", URL_BODY, {}, args.duration)


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
