"""Cold starts on demand, from provisioned environments and from a SnapStart snapshot.

For two Python functions (this interpreter's version, 128 MB):

- ``hello``: returns the time its handler was entered;
- ``boto3``: its init imports boto3 and builds a client (~300 ms of init here);

prints, for each way an environment can come to exist, the median and p90 of 20 first
invocations (each on an environment that has never run an invocation):

- request sent -> handler entry (the function reports ``time.time()`` at entry; same
  host clock);
- end to end (the raw HTTP request, SigV4-signed, on a fresh connection).

Ways: **on-demand** (a fresh function each sample, so no idle environment exists;
pre-initialised sandboxes are on, as in production), **provisioned** (a published
version with provisioned concurrency 1, invoked once it is READY) and **SnapStart**
(a published version of a function with ``SnapStart.ApplyOn=PublishedVersions``,
invoked once the version is Active, so the environment is restored from the
snapshot).

A second figure: the time for 100 simultaneous first invocations of a new version to
all complete (on-demand and from a snapshot), with how many environments served them.

    .venv/bin/python bench/coldstart.py [--samples 20] [--burst 100] [--only hello]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench.invoke

from bench.invoke import signed_headers
from lambdaplane.testing import ServerProcess, make_zip, start_server

ROLE = "arn:aws:iam::000000000000:role/bench"
# SnapStart needs Python 3.12 or later: use this interpreter's version when it qualifies.
RUNTIME = f"python3.{max(sys.version_info.minor, 12)}"

# Each environment has a hostname of its own (restored ones too, where AWS leaves the log
# stream variables out): it tells the environments apart.
HELLO = """
import os, socket, time

def handler(event, context):
    return {"entry": time.time(), "env": socket.gethostname(),
            "init": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")}
"""

BOTO3 = """
import os, socket, time
import boto3

client = boto3.client("s3", region_name="us-east-1")

def handler(event, context):
    return {"entry": time.time(), "env": socket.gethostname(),
            "init": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")}
"""

FUNCTIONS = {"hello": HELLO, "boto3": BOTO3}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms"


def report(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    print(f"{label:<58} n={len(samples):>3}  p50={ms(statistics.median(ordered))}  p90={ms(p90)}")


def first_invoke(
    server: ServerProcess, name: str, qualifier: str | None
) -> tuple[float, float, dict[str, Any]]:
    """(request sent -> handler entry, end to end, the function's answer) of one invocation."""
    path = f"/2015-03-31/functions/{name}/invocations"
    if qualifier:
        path += f"?Qualifier={qualifier}"
    headers = signed_headers(server, "POST", path, b"{}")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    sent = time.time()
    start = time.perf_counter()
    conn.request("POST", path, body=b"{}", headers=headers)
    response = conn.getresponse()
    body = response.read()
    end_to_end = time.perf_counter() - start
    conn.close()
    if response.status != 200:
        raise SystemExit(f"invoke {name}:{qualifier} -> {response.status} {body[:300]!r}")
    answer = json.loads(body)
    if "entry" not in answer:
        raise SystemExit(f"invoke {name}:{qualifier} failed: {body[:300]!r}")
    return answer["entry"] - sent, end_to_end, answer


def wait_for(check: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.02)


def create(lam: Any, name: str, source: str, **extra: Any) -> None:
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": source})},
        Environment={"Variables": {"AWS_EC2_METADATA_DISABLED": "true"}},
        **extra,
    )
    wait_for(
        lambda: (
            lam.get_function_configuration(FunctionName=name).get("LastUpdateStatus")
            == "Successful"
        ),
        f"{name} to be Active",
    )


def publish(lam: Any, name: str) -> str:
    version: str = lam.publish_version(FunctionName=name)["Version"]
    wait_for(
        lambda: (
            lam.get_function_configuration(FunctionName=name, Qualifier=version)["State"]
            == "Active"
        ),
        f"{name}:{version} to be Active",
    )
    return version


def on_demand(server: ServerProcess, lam: Any, kind: str, count: int) -> None:
    entry, total = [], []
    for i in range(count):
        name = f"od-{kind}-{i}"
        create(lam, name, FUNCTIONS[kind])
        time.sleep(0.3)  # let the pre-initialised sandboxes refill, as between real arrivals
        to_entry, end_to_end, _ = first_invoke(server, name, None)
        entry.append(to_entry)
        total.append(end_to_end)
    report(f"{kind}: on-demand, request -> handler entry", entry)
    report(f"{kind}: on-demand, end to end", total)


def provisioned(server: ServerProcess, lam: Any, kind: str, count: int) -> None:
    entry, total = [], []
    for i in range(count):
        name = f"pc-{kind}-{i}"
        create(lam, name, FUNCTIONS[kind])
        version = publish(lam, name)
        lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1
        )
        wait_for(
            lambda: (
                lam.get_provisioned_concurrency_config(
                    FunctionName=name,  # noqa: B023 - called before the loop moves on
                    Qualifier=version,  # noqa: B023
                )["Status"]
                == "READY"
            ),
            f"{name}:{version} provisioned",
        )
        to_entry, end_to_end, answer = first_invoke(server, name, version)
        if answer.get("init") != "provisioned-concurrency":
            raise SystemExit(f"not a provisioned environment: {answer}")
        entry.append(to_entry)
        total.append(end_to_end)
        lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    report(f"{kind}: provisioned, request -> handler entry", entry)
    report(f"{kind}: provisioned, end to end", total)


def snapstart(server: ServerProcess, lam: Any, kind: str, count: int) -> None:
    entry, total = [], []
    for i in range(count):
        name = f"ss-{kind}-{i}"
        create(lam, name, FUNCTIONS[kind], SnapStart={"ApplyOn": "PublishedVersions"})
        version = publish(lam, name)
        time.sleep(0.3)  # as on-demand: the first arrival comes a moment after the publish
        to_entry, end_to_end, answer = first_invoke(server, name, version)
        if answer.get("init") != "snap-start":
            raise SystemExit(f"not restored from a snapshot: {answer}")
        entry.append(to_entry)
        total.append(end_to_end)
    report(f"{kind}: SnapStart restore, request -> handler entry", entry)
    report(f"{kind}: SnapStart restore, end to end", total)


def burst(server: ServerProcess, lam: Any, kind: str, size: int, snap: bool) -> None:
    """``size`` simultaneous first invocations of a new version: time until all complete."""
    name = f"burst-{'ss' if snap else 'od'}-{kind}"
    extra = {"SnapStart": {"ApplyOn": "PublishedVersions"}} if snap else {}
    create(lam, name, FUNCTIONS[kind], **extra)
    version = publish(lam, name)
    path = f"/2015-03-31/functions/{name}/invocations?Qualifier={version}"
    headers = signed_headers(server, "POST", path, b"{}")
    conns = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=300) for _ in range(size)]
    for conn in conns:
        conn.connect()
    go = threading.Barrier(size + 1)
    results: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def one(conn: http.client.HTTPConnection) -> None:
        go.wait()
        conn.request("POST", path, body=b"{}", headers=headers)
        response = conn.getresponse()
        body = response.read()
        with lock:
            results.append((response.status, body))

    threads = [threading.Thread(target=one, args=(c,)) for c in conns]
    for thread in threads:
        thread.start()
    go.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    ok = [json.loads(b) for s, b in results if s == 200]
    failed = [a for a in ok if not isinstance(a, dict) or "entry" not in a]
    ok = [a for a in ok if a not in failed]
    throttled = sum(1 for s, _ in results if s == 429)
    others = [(s, b[:200]) for s, b in results if s not in (200, 429)]
    if failed or others:
        print(
            f"  failed: {len(failed)} function errors, e.g. {failed[:1]}; other statuses {others[:2]}"
        )
    envs = len({a.get("env") for a in ok if isinstance(a, dict)})
    label = f"{kind}: {size} simultaneous first invokes, {'SnapStart' if snap else 'on-demand'}"
    print(
        f"{label:<58} all done in {ms(elapsed)}  ok={len(ok)} throttled={throttled} "
        f"environments={envs}"
    )


def run(server: ServerProcess, args: Any) -> None:
    lam = server.client()
    kinds = [args.only] if args.only else list(FUNCTIONS)
    for kind in kinds:
        on_demand(server, lam, kind, args.samples)
        provisioned(server, lam, kind, args.samples)
        snapstart(server, lam, kind, args.samples)
    for kind in kinds:
        burst(server, lam, kind, args.burst, snap=False)
        burst(server, lam, kind, args.burst, snap=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--only", choices=sorted(FUNCTIONS), default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            run(server, args)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
