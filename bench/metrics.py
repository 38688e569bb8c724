"""What metrics and usage recording cost on the warm invoke path.

1. In process: the per-invocation hook (``InvokeService._record``: the metrics update
   and the usage row), its parts, a throttle, the background write of a usage row, and
   a scrape of 200 function versions.
2. End to end: three real servers — this tree; a copy that records metrics but no usage;
   a copy whose ``_record`` returns at once (recording off) — measured in rotating
   rounds so the machine's noise falls on all alike: warm invoke p50 over raw keep-alive
   HTTP and, with Debian's wrk (32 connections), throughput and the server process's
   CPU time per invocation (from /proc; far steadier than throughput on a shared machine).

    .venv/bin/python bench/metrics.py [--samples 2000] [--rounds 6] [--duration 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.invoke import ROLE, RUNTIME, raw_samples, wait_active, wrk
from lambdaplane.invoke.environment import Outcome
from lambdaplane.invoke.service import InvokeService
from lambdaplane.metrics import EnvironmentCensus, LambdaMetrics
from lambdaplane.store import open_engine, upgrade
from lambdaplane.store.usage import UsageRepository, UsageRow
from lambdaplane.testing import ServerProcess, make_zip, start_server
from lambdaplane.usage.recorder import UsageRecorder

ECHO = "def handler(event, context):\n    return event\n"
SRC = Path(__file__).resolve().parent.parent / "src"


def per_call(label: str, call: Callable[[], object], number: int = 200_000) -> float:
    seconds = min(timeit.repeat(call, number=number, repeat=5)) / number
    print(f"{label:<60} {seconds * 1e6:8.3f} us")
    return seconds


def in_process(tmp: Path) -> None:
    metrics = LambdaMetrics()
    usage = UsageRecorder(
        UsageRepository(open_engine(f"sqlite:///{tmp / 'hook.db'}"), "0" * 12, "us-east-1")
    )
    service = object.__new__(InvokeService)  # only _record's two collaborators are needed
    service._metrics = metrics
    service._usage = usage

    class Stored:
        name = "hello"
        config: dict[str, Any] = {"Architectures": ["x86_64"]}

    class Image:
        version = "$LATEST"
        memory_mb = 128
        tmp_mb = 512

    warm = Outcome(b"{}", duration_ms=0.31, max_memory_bytes=31 * 1024 * 1024)
    stored, image = Stored(), Image()

    def hook() -> None:
        service._record(stored, image, "req-id", warm)  # type: ignore[arg-type]
        if len(usage._pending) > 100_000:
            usage._pending.clear()

    print("In process (best of 5):")
    per_call("invoke hook: metrics + usage row (InvokeService._record)", hook)
    per_call(
        "  metrics only (LambdaMetrics.invoked)",
        lambda: metrics.invoked("hello", "$LATEST", 0.00031, False, None, 32505856),
    )
    row: UsageRow = (1, "hello", "$LATEST", "req-id", 1, 128, "x86_64", 512)
    rows: list[UsageRow] = []
    per_call("  usage row only (list append of a tuple)", lambda: rows.append(row))
    rows.clear()
    per_call("throttle (LambdaMetrics.throttled)", lambda: metrics.throttled("hello", "$LATEST"))
    engine = open_engine(f"sqlite:///{tmp / 'usage.db'}")
    upgrade(engine)
    repository = UsageRepository(engine, "0" * 12, "us-east-1")
    batch = [(i, "hello", "$LATEST", f"{i:036d}", 1, 128, "x86_64", 512) for i in range(5000)]
    started = time.perf_counter()
    for _ in range(10):
        repository.append(batch)
    per_row = (time.perf_counter() - started) / 50_000
    print(
        f"{'usage row written, batches of 5,000 (background thread)':<60} {per_row * 1e6:8.3f} us"
    )
    stop = threading.Event()

    def spin() -> None:  # a saturated event loop: a thread that always wants the GIL
        while not stop.is_set():
            pass

    spinner = threading.Thread(target=spin)
    spinner.start()
    started = time.perf_counter()
    for _ in range(4):
        repository.append(batch)
    per_row = (time.perf_counter() - started) / 20_000
    stop.set()
    spinner.join()
    print(f"{'  the same, wall time beside a busy thread':<60} {per_row * 1e6:8.3f} us")
    engine.dispose()
    for f in range(100):
        for version in ("$LATEST", "1"):
            metrics.invoked(f"fn-{f:03d}", version, 0.0003, f % 7 == 0, 0.004, 30_000_000)
    busy = {(f"fn-{f:03d}", "1"): 1 for f in range(0, 100, 10)}
    census = EnvironmentCensus({"busy": 10, "idle": 190}, busy, 1000)
    started = time.perf_counter()
    for _ in range(20):
        metrics.observe_environments(census)
        text = metrics.render()
    took = (time.perf_counter() - started) / 20
    print(
        f"{'scrape of 200 function versions (' + str(len(text) // 1024) + ' KB)':<60} "
        f"{took * 1e3:8.3f} ms"
    )


USAGE_HOOK = "        if self._usage is not None:\n            self._usage.add("
HOOK_DOC = '"""Count the invocation in the metrics, and record what it bills (as REPORT says)."""'


def patched_copy(tmp: Path, name: str, old: str, new: str) -> Path:
    """A copy of the package with one change to InvokeService._record."""
    copy = tmp / name / "src"
    shutil.copytree(
        SRC / "lambdaplane", copy / "lambdaplane", ignore=shutil.ignore_patterns("__pycache__")
    )
    service = copy / "lambdaplane" / "invoke" / "service.py"
    text = service.read_text()
    assert old in text, "InvokeService._record changed: update bench/metrics.py"
    service.write_text(text.replace(old, new))
    return copy


def start(data: Path, pythonpath: str | None) -> ServerProcess:
    saved = os.environ.get("PYTHONPATH")
    if pythonpath is not None:
        os.environ["PYTHONPATH"] = pythonpath
    try:
        return start_server(data)
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def prepare(server: ServerProcess) -> str:
    lam = server.client()
    try:
        lam.create_function(
            FunctionName="warm",
            Runtime=RUNTIME,
            Role=ROLE,
            Handler="handler.handler",
            Code={"ZipFile": make_zip({"handler.py": ECHO})},
        )
        wait_active(lam, "warm")
    finally:
        lam.close()
    path = "/2015-03-31/functions/warm/invocations"
    raw_samples(server, path, b"{}", 300, b"{}")  # warm up
    return path


def cpu_seconds(server: ServerProcess) -> float:
    """User + system CPU of the server process, all its threads (not the sandboxes)."""
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def end_to_end(tmp: Path, args: argparse.Namespace) -> None:
    no_usage = patched_copy(
        tmp, "metrics-only", USAGE_HOOK, USAGE_HOOK.replace("self._usage is not None", "False")
    )
    nothing = patched_copy(tmp, "off", HOOK_DOC, HOOK_DOC + "\n        return")
    servers = {
        "recording on": start(tmp / "on", None),
        "metrics only": start(tmp / "metrics-data", str(no_usage)),
        "recording off": start(tmp / "off-data", str(nothing)),
    }
    try:
        paths = {label: prepare(server) for label, server in servers.items()}
        p50s: dict[str, list[float]] = {label: [] for label in servers}
        floors: dict[str, list[float]] = {label: [] for label in servers}
        rates: dict[str, list[float]] = {label: [] for label in servers}
        cpu: dict[str, list[float]] = {label: [] for label in servers}
        print(f"\nEnd to end, {args.rounds} rotating rounds:")
        labels = list(servers)
        for round_ in range(args.rounds):
            shift = round_ % len(labels)
            for label in labels[shift:] + labels[:shift]:
                server, path = servers[label], paths[label]
                samples = raw_samples(server, path, b"{}", args.samples, b"{}")
                p50s[label].append(statistics.median(samples))
                echo = raw_samples(server, "/_lambdaplane/echo", b"{}", args.samples, b"{}")
                floors[label].append(statistics.median(echo))
                if args.duration:
                    before = cpu_seconds(server)
                    rate = wrk(server, path, b"{}", b"{}", args.duration)
                    used = cpu_seconds(server) - before
                    if rate:
                        rates[label].append(rate)
                        cpu[label].append(used / (rate * args.duration))
        print()
        for label in servers:
            print(
                f"{label:<14} warm p50 {statistics.median(p50s[label]) * 1000:.3f} ms "
                f"(rounds {min(p50s[label]) * 1000:.3f}-{max(p50s[label]) * 1000:.3f}), "
                f"over the echo floor {(statistics.median(p50s[label]) - statistics.median(floors[label])) * 1000:.3f} ms",
                end="",
            )
            if rates[label]:
                print(
                    f"; wrk {statistics.median(rates[label]):,.0f}/s "
                    f"(rounds {min(rates[label]):,.0f}-{max(rates[label]):,.0f}); "
                    f"server CPU {statistics.median(cpu[label]) * 1e6:.1f} us/invoke "
                    f"(rounds {min(cpu[label]) * 1e6:.1f}-{max(cpu[label]) * 1e6:.1f})",
                    end="",
                )
            print()
        off_p50 = statistics.median(p50s["recording off"])
        for label in ("recording on", "metrics only"):
            line = f"{label + ' - off':<24} warm p50 {(statistics.median(p50s[label]) - off_p50) * 1e6:+.1f} us"
            if cpu[label] and cpu["recording off"]:
                extra = statistics.median(cpu[label]) - statistics.median(cpu["recording off"])
                line += f", server CPU {extra * 1e6:+.1f} us/invoke"
            print(line)
    finally:
        for server in servers.values():
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=int, default=5, help="wrk seconds; 0 skips wrk")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        in_process(Path(tmp))
        end_to_end(Path(tmp), args)


if __name__ == "__main__":
    main()
