"""``lambdaplane usage`` for a scripted workload equals the bill computed by hand from the
REPORT lines the same invocations logged: requests, billed GB-seconds, storage, cost."""

from __future__ import annotations

import concurrent.futures
import json
import re
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lambdaplane.store import open_engine
from lambdaplane.store.usage import UsageRepository
from lambdaplane.testing import ServerProcess, make_zip
from tests.integration.helpers import RUNTIME, unique_name, wait_settled
from tests.integration.test_reserved_concurrency import gate, held_function, invoke_outcome, running

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
D = Decimal
REQUEST = D("0.0000002")  # $0.20 per million
X86, ARM = D("0.0000166667"), D("0.0000133334")  # per GB-second, first tier
STORAGE = D("0.0000000309")  # per GB-second above 512 MB
_BILLED = re.compile(r"Billed Duration: (\d+) ms\tMemory Size: (\d+) MB")


@pytest.fixture
def lam(server: ServerProcess) -> Iterator[Any]:
    client = server.client()
    yield client
    client.close()


def deploy(lam: Any, source: str, prefix: str, **extra: Any) -> str:
    name = unique_name(prefix)
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": textwrap.dedent(source)})},
        **extra,
    )
    wait_settled(lam, name)
    return name


def reports(server: ServerProcess, name: str) -> list[tuple[int, int]]:
    """(billed ms, memory MB) of each REPORT line the function logged."""
    db = sqlite3.connect(f"file:{server.data_dir / 'lambdaplane.db'}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT message FROM log_events WHERE log_group = ? AND message LIKE 'REPORT %'",
            (f"/aws/lambda/{name}",),
        ).fetchall()
    finally:
        db.close()
    found = [_BILLED.search(message) for (message,) in rows]
    return [(int(m[1]), int(m[2])) for m in found if m is not None]


def usage(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lambdaplane", "usage", "--data-dir", str(server.data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def usage_json(server: ServerProcess, *args: str) -> dict[str, Any]:
    done = usage(server, "--json", "--since", "1h", *args)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def by_function(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["function"]: entry for entry in document["functions"]}


def test_usage_equals_the_bill_computed_from_the_report_lines(
    server: ServerProcess, lam: Any, tmp_path: Path
) -> None:
    echo = "def handler(event, context):\n    return event\n"
    small = deploy(lam, echo, "small")  # 128 MB, x86_64
    big = deploy(
        lam,
        "import time\ndef handler(event, context):\n    time.sleep(0.02)\n",
        "big",
        MemorySize=1024,
        EphemeralStorage={"Size": 2048},
    )
    arm = deploy(lam, echo, "arm", MemorySize=512, Architectures=["arm64"])
    fail = deploy(lam, "def handler(event, context):\n    raise ValueError('x')\n", "fail")
    plan = {small: 5, big: 3, arm: 4, fail: 2}
    request_ids: dict[str, set[str]] = {name: set() for name in plan}
    for name, count in plan.items():
        for _ in range(count):
            response = lam.invoke(FunctionName=name, Payload=b"{}")
            response["Payload"].read()
            request_ids[name].add(response["ResponseMetadata"]["RequestId"])
    # An asynchronous invocation is billed like any other.
    event = lam.invoke(FunctionName=small, InvocationType="Event", Payload=b"{}")
    event["Payload"].read()
    plan[small] += 1

    deadline = time.monotonic() + 30
    while True:
        document = usage_json(server)
        seen = by_function(document)
        logged = {name: reports(server, name) for name in plan}
        if all(
            len(logged[n]) == c and seen.get(n, {}).get("requests") == c for n, c in plan.items()
        ):
            break
        assert time.monotonic() < deadline, (plan, logged, seen)
        time.sleep(0.2)

    rates = {small: X86, big: X86, arm: ARM, fail: X86}
    storage_mb = {big: 2048 - 512}
    total_cost = D(0)
    for name, lines in logged.items():
        billed = sum(ms for ms, _ in lines)
        gb_s = sum((D(ms * mb) / 1_024_000 for ms, mb in lines), D(0))
        storage_gb_s = D(billed * storage_mb.get(name, 0)) / 1_024_000
        cost = len(lines) * REQUEST + gb_s * rates[name] + storage_gb_s * STORAGE
        entry = seen[name]
        assert entry["requests"] == plan[name]
        assert entry["billed_duration_ms"] == billed
        assert D(entry["gb_seconds"]) == gb_s
        assert D(entry["ephemeral_storage_gb_seconds"]) == storage_gb_s
        assert D(entry["cost"]["total"]) == cost, name
        total_cost += cost
    assert seen[big]["billed_duration_ms"] >= 3 * 20  # it slept 20 ms each time
    assert D(document["total"]["cost"]["total"]) == total_cost
    assert document["total"]["requests"] == sum(plan.values())

    # One record per invocation, under the invocation's request id.
    engine = open_engine(f"sqlite:///{server.data_dir / 'lambdaplane.db'}")
    try:
        records = UsageRepository(engine, "", "").records()
    finally:
        engine.dispose()
    for name, ids in request_ids.items():
        mine = [r for r in records if r["function_name"] == name]
        assert ids <= {r["request_id"] for r in mine}
        assert {(r["memory_mb"], r["architecture"], r["version"]) for r in mine} == {
            (
                {small: 128, big: 1024, arm: 512, fail: 128}[name],
                "arm64" if name == arm else "x86_64",
                "$LATEST",
            )
        }
    assert {r["ephemeral_mb"] for r in records if r["function_name"] == big} == {2048}

    # One function; the text table; another price list, given or in the data directory.
    only = usage_json(server, "--function", big)
    assert [e["function"] for e in only["functions"]] == [big]
    assert only["total"] == {k: v for k, v in seen[big].items() if k != "function"}
    text = usage(server, "--since", "1h", "--function", small)
    assert text.returncode == 0, text.stderr
    last = text.stdout.splitlines()[-1].split()
    assert last[:2] == ["TOTAL", str(plan[small])]
    flat = {
        "requests": {"price_per_million": 1},
        "duration": {"x86_64": [{"price_per_gb_second": 1}], "arm64": [{"price_per_gb_second": 2}]},
    }
    prices = tmp_path / "flat.json"
    prices.write_text(json.dumps(flat))
    priced = by_function(usage_json(server, "--prices", str(prices)))
    gb_arm = D(seen[arm]["gb_seconds"])
    assert D(priced[arm]["cost"]["total"]) == plan[arm] * D("0.000001") + 2 * gb_arm
    assert priced[arm]["cost"]["ephemeral_storage"] == "0"
    local = server.data_dir / "prices.json"
    local.write_text(json.dumps(flat))
    try:
        assert usage_json(server)["prices"] == str(local)
    finally:
        local.unlink()
    assert usage_json(server)["prices"] == "built-in AWS us-east-1 price list"


def test_usage_refuses_what_it_cannot_use(server: ServerProcess, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    done = usage(server, "--prices", str(bad))
    assert done.returncode == 2 and "not valid JSON" in done.stderr
    done = usage(server, "--since", "yesterday")
    assert done.returncode == 2 and "--since" in done.stderr
    empty = subprocess.run(
        [sys.executable, "-m", "lambdaplane", "usage", "--data-dir", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert empty.returncode == 2 and "no lambdaplane store" in empty.stderr


PC_X86, PC_DURATION_X86 = D("0.0000041667"), D("0.0000097222")


def test_provisioned_concurrency_is_billed(server: ServerProcess, lam: Any) -> None:
    """A provisioned version: its configuration bills whole 5-minute steps from the Put to
    the delete (concurrency x memory), the invocations its provisioned environments ran
    are billed at the provisioned duration price, and a spill-over at the on-demand one."""
    name = held_function(lam, ROLE, "pc")
    lam.publish_version(FunctionName=name)
    deadline = time.monotonic() + 30
    while lam.get_function(FunctionName=name, Qualifier="1")["Configuration"]["State"] != "Active":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=2
    )
    while (
        lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="1")["Status"]
        != "READY"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # Three held at once on two provisioned environments: one spills over to on demand.
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        calls = [pool.submit(invoke_outcome, server, f"{name}:1", n) for n in range(3)]
        while len(running(server, name)) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        gate(server, lam, name).touch()
        assert sorted(call.result() for call in calls) == [0, 1, 2]
    for n in range(3):  # one at a time: provisioned environments first
        assert invoke_outcome(server, f"{name}:1", n) == n
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1")

    engine = open_engine(f"sqlite:///{server.data_dir / 'lambdaplane.db'}")
    try:
        repository = UsageRepository(engine, "", "")
        deadline = time.monotonic() + 30
        while len(repository.records(name)) < 6:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        records = repository.records(name)
        (pc,) = repository.provisioned_periods(0, 2**62, name)
    finally:
        engine.dispose()
    assert [r["provisioned"] for r in records].count(False) == 1  # the spill-over
    assert (pc.qualifier, pc.concurrency, pc.memory_mb, pc.architecture) == ("1", 2, 128, "x86_64")
    assert pc.end_ms is not None and 0 < pc.end_ms - pc.start_ms < 60_000

    entry = by_function(usage_json(server, "--function", name))[name]
    provisioned_ms = sum(r["billed_ms"] for r in records if r["provisioned"])
    on_demand_ms = sum(r["billed_ms"] for r in records if not r["provisioned"])
    configured = D(2 * 300) * D(128) / 1024  # two environments for 5 minutes at 128 MB
    assert D(entry["provisioned_concurrency_gb_seconds"]) == configured
    assert D(entry["cost"]["provisioned_concurrency"]) == configured * PC_X86
    assert D(entry["cost"]["duration"]) == (
        D(provisioned_ms * 128) / 1_024_000 * PC_DURATION_X86
        + D(on_demand_ms * 128) / 1_024_000 * X86
    )
    assert entry["requests"] == 6
    text = usage(server, "--since", "1h", "--function", name).stdout.splitlines()
    assert "PROVISIONED GB-S" in text[2]
    assert text[-1].split()[:5] == ["TOTAL", "6", str(D(provisioned_ms + on_demand_ms) / 1000),
                                    entry["gb_seconds"], "75"]  # fmt: skip


SNAP_CACHE, SNAP_RESTORE = D("0.0000015046"), D("0.0001397998")


def test_snapstart_is_billed(server: ServerProcess, lam: Any) -> None:
    """A SnapStart version: its snapshot is billed from when it is taken (a 3-hour minimum
    once its version is deleted), each restore at its memory, and the restore's first
    invocation bills its Restore Duration as REPORT's Billed Duration says."""
    name = unique_name("snap")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": "def handler(event, context):\n    return 1\n"})},
        MemorySize=256,
        SnapStart={"ApplyOn": "PublishedVersions"},
    )
    wait_settled(lam, name)
    version = lam.publish_version(FunctionName=name)["Version"]
    deadline = time.monotonic() + 60
    while (
        lam.get_function(FunctionName=name, Qualifier=version)["Configuration"]["State"] != "Active"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for _ in range(3):
        lam.invoke(FunctionName=name, Qualifier=version, Payload=b"{}")["Payload"].read()

    deadline = time.monotonic() + 30
    while len(lines := reports(server, name)) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    while (entry := by_function(usage_json(server, "--function", name)).get(name)) is None or (
        entry["requests"] < 3
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert entry["snapstart_restores"] == 1  # one environment, restored once
    assert entry["billed_duration_ms"] == sum(ms for ms, _ in lines)  # restore included
    cached = D(entry["snapstart_cache_gb_seconds"])
    assert 0 < cached < 60 * D("0.25")  # a quarter GB, cached for seconds so far
    restore_cost = D("0.25") * SNAP_RESTORE
    assert D(entry["cost"]["snapstart"]) == cached * SNAP_CACHE + restore_cost

    lam.delete_function(FunctionName=name, Qualifier=version)
    entry = by_function(usage_json(server, "--function", name))[name]
    assert D(entry["snapstart_cache_gb_seconds"]) == D(3 * 3600) * D("0.25")  # the minimum
