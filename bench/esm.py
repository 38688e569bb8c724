"""SQS event source mapping: throughput (messages/s) and end-to-end latency.

A real lambdaplane server polls a real moto SQS server on loopback and invokes a trivial
Python function, which prints the time it was entered and the messages it got.

- Throughput: the queue is filled first, then the mapping is created; messages/s from
  the mapping's first invocation to its last, at BatchSize 1 and 100.
- The peer's own pace, for scale: one plain client draining a filled queue.
- Latency: one message at a time into an idle, polling mapping; from just before
  SendMessage to the handler's entry (same host clock). At BatchSize 100 the batching
  window (at least 1 s when BatchSize > 10, AWS's rule) is part of the latency.

    .venv/bin/python bench/esm.py [--messages 2000] [--latency-samples 50]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

from lambdaplane.testing import ServerProcess, make_zip, start_server
from lambdaplane.testing.moto import MotoServer, start_moto

ROLE = "arn:aws:iam::000000000000:role/bench"
RUNTIME = f"python3.{sys.version_info.minor}"
HANDLER = textwrap.dedent(
    """
    import json, time

    def handler(event, context):
        entered = time.time()
        print("BENCH " + json.dumps({"t": entered, "bodies": [r["body"] for r in event["Records"]]}))
        return {}
    """
)


def lines(server: ServerProcess, name: str) -> list[dict[str, Any]]:
    db = sqlite3.connect(f"file:{server.data_dir / 'lambdaplane.db'}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT message FROM log_events WHERE log_group = ? AND message LIKE 'BENCH %'",
            (f"/aws/lambda/{name}",),
        ).fetchall()
    finally:
        db.close()
    return [json.loads(m[6:]) for (m,) in rows]


def wait_for_bodies(server: ServerProcess, name: str, count: int, timeout: float) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        seen = lines(server, name)
        if sum(len(s["bodies"]) for s in seen) >= count:
            return seen
        if time.monotonic() > deadline:
            raise SystemExit(f"only {sum(len(s['bodies']) for s in seen)} of {count} arrived")
        time.sleep(0.2)


def deploy(lam: Any, name: str) -> None:
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": HANDLER})},
        Timeout=10,
        MemorySize=128,
    )
    while lam.get_function_configuration(FunctionName=name)["State"] != "Active":
        time.sleep(0.05)


def queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def fill(sqs: Any, url: str, count: int) -> None:
    for start in range(0, count, 10):
        entries = [
            {"Id": str(n), "MessageBody": json.dumps({"n": n})}
            for n in range(start, min(count, start + 10))
        ]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)


def drain_floor(sqs: Any, count: int) -> float:
    """The peer's own pace: one plain client draining a filled queue (receive 10, delete)."""
    url, _ = queue(sqs, "floor")
    fill(sqs, url, count)
    start = time.perf_counter()
    drained = 0
    while drained < count:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if messages:
            entries = [
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)
            ]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        drained += len(messages)
    return count / (time.perf_counter() - start)


def wait_enabled(lam: Any, uuid: str) -> None:
    while lam.get_event_source_mapping(UUID=uuid)["State"] != "Enabled":
        time.sleep(0.05)


def throughput(server: ServerProcess, lam: Any, sqs: Any, batch: int, count: int) -> float:
    name = f"tput-{batch}"
    deploy(lam, name)
    url, arn = queue(sqs, f"tput-{batch}")
    fill(sqs, url, count)
    window = {"MaximumBatchingWindowInSeconds": 1} if batch > 10 else {}
    created = time.time()
    lam.create_event_source_mapping(
        FunctionName=name, EventSourceArn=arn, BatchSize=batch, **window
    )
    seen = wait_for_bodies(server, name, count, timeout=600)
    times = sorted(s["t"] for s in seen)
    sizes = [len(s["bodies"]) for s in seen]
    elapsed = times[-1] - created
    print(
        f"  BatchSize {batch:>3}: {count} messages in {elapsed:.2f} s "
        f"({len(seen)} invocations, mean batch {statistics.mean(sizes):.1f})"
    )
    return count / elapsed


def latency(server: ServerProcess, lam: Any, sqs: Any, batch: int, samples: int) -> list[float]:
    name = f"lat-{batch}"
    deploy(lam, name)
    url, arn = queue(sqs, f"lat-{batch}")
    window = {"MaximumBatchingWindowInSeconds": 1} if batch > 10 else {}
    uuid = lam.create_event_source_mapping(
        FunctionName=name, EventSourceArn=arn, BatchSize=batch, **window
    )["UUID"]
    wait_enabled(lam, uuid)
    # One warm-up message: the first invocation is a cold start.
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"warmup": True}))
    wait_for_bodies(server, name, 1, timeout=60)
    sent: dict[str, float] = {}
    for n in range(samples):
        body = json.dumps({"n": n})
        sent[body] = time.time()
        sqs.send_message(QueueUrl=url, MessageBody=body)
        seen = wait_for_bodies(server, name, n + 2, timeout=60)
        time.sleep(0.02)
    entered = {b: s["t"] for s in seen for b in s["bodies"]}
    return sorted((entered[b] - t) * 1000 for b, t in sent.items())


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--latency-samples", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        moto: MotoServer = start_moto(Path(tmp))
        server = start_server(Path(tmp) / "data", "--sqs-endpoint", moto.url)
        lam = server.client()
        sqs = moto.client("sqs")
        try:
            floor = drain_floor(sqs, args.messages)
            print(f"the SQS peer alone: one client drains {floor:.0f} messages/s")
            print("throughput (queue filled first, then the mapping created):")
            rates = {b: throughput(server, lam, sqs, b, args.messages) for b in (1, 100)}
            print("latency (SendMessage -> handler entry, idle polling mapping):")
            delays = {b: latency(server, lam, sqs, b, args.latency_samples) for b in (1, 100)}
        finally:
            lam.close()
            server.stop()
            moto.stop()
    for batch in (1, 100):
        values = delays[batch]
        print(
            f"BatchSize {batch:>3}: {rates[batch]:8.0f} messages/s; latency p50 "
            f"{percentile(values, 0.5):.1f} ms, p95 {percentile(values, 0.95):.1f} ms, "
            f"max {values[-1]:.1f} ms"
        )


if __name__ == "__main__":
    main()
