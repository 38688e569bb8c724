"""Invoke latency and throughput against a real server and real sandboxes.

Prints, for a trivial Python function (runtime: this interpreter's version):
- cold start: invoke arrival -> handler entry, and end to end, median of 20 (fresh
  functions, each invoked once), for arrivals 0.3 s apart and for 20 back to back
  (which drains the pre-initialised sandboxes; see docs/benchmarks.md);
- warm sequential p50/p99 with a raw keep-alive HTTP client and with boto3;
- throughput with wrk (32 connections, 10 s, after a 3 s run that starts the 32
  environments), every response checked;
- the floor: the same raw-client and wrk figures for a bare echo endpoint
  (/_lambdaplane/echo) served by the same uvicorn stack.

    .venv/bin/python bench/invoke.py [--samples 2000] [--duration 10]

Needs Debian's wrk for the throughput rows (apt-get install wrk); skipped without it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
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
HELLO = "def handler(event, context):\n    return event\n"
ENTRY = "import time\ndef handler(event, context):\n    return {'entry': time.time()}\n"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.3f} ms"


def summary(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"{label:<52} n={len(samples):>5}  p50={ms(p50)}  p99={ms(p99)}")


def signed_headers(server: ServerProcess, method: str, path: str, body: bytes) -> dict[str, str]:
    request = AWSRequest(method=method, url=server.endpoint + path, data=body)
    SigV4Auth(
        Credentials(server.access_key_id, server.secret_access_key), "lambda", server.region
    ).add_auth(request)
    return dict(request.prepare().headers.items())


def raw_samples(
    server: ServerProcess, path: str, body: bytes, count: int, check: bytes
) -> list[float]:
    headers = signed_headers(server, "POST", path, body)
    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        samples.append(time.perf_counter() - start)
        if response.status != 200 or data != check:
            raise SystemExit(f"bad response {response.status}: {data[:200]!r}")
    conn.close()
    return samples


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


def lua_string(value: str) -> str:
    return "[==[" + value + "]==]"


def run_wrk(
    label: str,
    url: str,
    method: str,
    body: bytes,
    expect: bytes,
    headers: dict[str, str],
    duration: int,
) -> float | None:
    """Print (and return) the rate of 32 keep-alive connections for ``duration`` seconds,
    every response's status and body checked by the Lua script."""
    if shutil.which("wrk") is None:
        print(f"{'wrk ' + label:<52} skipped: install Debian's wrk")
        return None
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
            ["wrk", "-t2", "-c32", f"-d{duration}s", "--latency", "-s", handle.name, url],
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
    bad = re.search(r"BAD (\d+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    print(
        f"{'wrk 32 conns ' + label:<52} {float(rate.group(1)) if rate else 0:>9.0f} req/s  "
        f"p50={p50.group(1) if p50 else '?'}  bad bodies={bad.group(1) if bad else '?'}  "
        f"non-2xx={errors.group(1) if errors else 0}"
    )
    return float(rate.group(1)) if rate else None


def wrk(
    server: ServerProcess, path: str, body: bytes, expect: bytes, duration: int
) -> float | None:
    """``run_wrk`` for a SigV4-signed POST to this server's ``path``."""
    return run_wrk(
        path,
        server.endpoint + path,
        "POST",
        body,
        expect,
        signed_headers(server, "POST", path, body),
        duration,
    )


def idle_pss() -> None:
    """PSS of each environment's processes (cgroup v1 pids hierarchy; root only)."""
    root = Path("/sys/fs/cgroup/pids/lambdaplane")
    totals = []
    for procs in root.glob("*/cgroup.procs"):
        kib = 0
        for pid in procs.read_text().split():
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            match = re.search(r"^Pss:\s+(\d+) kB", rollup, re.M)
            kib += int(match.group(1)) if match else 0
        if kib:
            totals.append(kib / 1024)
    if totals:
        print(
            f"{'idle environment memory (PSS, all its processes)':<52} n={len(totals):>5}  p50={statistics.median(totals):8.1f} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument(
        "--cold", type=int, default=40, help="cold starts: half spaced, half back to back"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            run(server, args)
        finally:
            server.stop()


def wait_active(lam: Any, name: str) -> None:
    while lam.get_function_configuration(FunctionName=name).get("LastUpdateStatus") != "Successful":
        time.sleep(0.01)


def run(server: ServerProcess, args: Any) -> None:
    lam = server.client()
    # Cold starts: fresh functions, one invocation each.
    names = [f"cold-{i}" for i in range(args.cold)]
    for name in names:
        lam.create_function(
            FunctionName=name,
            Runtime=RUNTIME,
            Role=ROLE,
            Handler="handler.handler",
            Code={"ZipFile": make_zip({"handler.py": ENTRY})},
        )
    for name in names:
        wait_active(lam, name)
    # Spaced arrivals (the pre-initialised sandboxes refill between them), then a burst
    # of back-to-back cold starts that drains them.
    half = len(names) // 2
    for label, batch, gap in (
        ("spaced 0.3 s", names[:half], 0.3),
        ("back to back", names[half:], 0.0),
    ):
        to_entry, end_to_end = [], []
        for name in batch:
            time.sleep(gap)
            path = f"/2015-03-31/functions/{name}/invocations"
            headers = signed_headers(server, "POST", path, b"{}")
            conn = http.client.HTTPConnection("127.0.0.1", server.port)
            sent = time.time()
            start = time.perf_counter()
            conn.request("POST", path, body=b"{}", headers=headers)
            body = conn.getresponse().read()
            end_to_end.append(time.perf_counter() - start)
            to_entry.append(json.loads(body)["entry"] - sent)
            conn.close()
        summary(f"cold start ({label}): request sent -> handler entry", to_entry)
        summary(f"cold start ({label}): end to end (raw HTTP)", end_to_end)

    lam.create_function(
        FunctionName="warm",
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": HELLO})},
    )
    wait_active(lam, "warm")
    path = "/2015-03-31/functions/warm/invocations"
    body = b'{"hello":"world"}'
    returned = b'{"hello": "world"}'  # as the runtime's json.dumps writes it
    raw_samples(server, path, body, 200, returned)  # warm up
    summary(
        "warm invoke, raw HTTP keep-alive", raw_samples(server, path, body, args.samples, returned)
    )
    summary(
        "floor: bare echo, raw HTTP keep-alive",
        raw_samples(server, "/_lambdaplane/echo", body, args.samples, body),
    )
    boto = []
    for _ in range(args.samples):
        start = time.perf_counter()
        lam.invoke(FunctionName="warm", Payload=body)["Payload"].read()
        boto.append(time.perf_counter() - start)
    summary("warm invoke, boto3", boto)
    idle_pss()
    # wrk's 32 connections need 32 environments: start them in a short run first (its
    # rate includes those cold starts, so it is shown apart), then measure warm ones.
    run_wrk(
        "warm-up, 32 environments start (not warm)",
        server.endpoint + path,
        "POST",
        body,
        returned,
        signed_headers(server, "POST", path, body),
        3,
    )
    wrk(server, path, body, returned, args.duration)
    wrk(server, "/_lambdaplane/echo", body, body, args.duration)


if __name__ == "__main__":
    main()
