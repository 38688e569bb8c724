"""Asynchronous invocation: the durable enqueue rate and the drain rate.

Enqueue: InvocationType=Event requests over raw keep-alive HTTP connections (one signed
request replayed), each answered 202 only after the event is committed to the store;
measured with 1 and with 8 concurrent clients. Drain: how fast the delivery workers
empty the queue through a trivial Python function.

    .venv/bin/python bench/async.py [--events 5000]
"""

from __future__ import annotations

import argparse
import http.client
import os
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

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


def depth(server: ServerProcess) -> int:
    db = sqlite3.connect(f"file:{server.data_dir / 'lambdaplane.db'}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM async_events").fetchone()[0])
    finally:
        db.close()


def enqueue(server: ServerProcess, name: str, count: int, clients: int) -> float:
    path = f"/2015-03-31/functions/{name}/invocations"
    body = b'{"hello":"world"}'
    request = AWSRequest(
        method="POST",
        url=server.endpoint + path,
        data=body,
        headers={"X-Amz-Invocation-Type": "Event"},
    )
    SigV4Auth(
        Credentials(server.access_key_id, server.secret_access_key), "lambda", server.region
    ).add_auth(request)
    headers = dict(request.prepare().headers.items())
    per_client = count // clients

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        for _ in range(per_client):
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 202:
                raise SystemExit(f"enqueue answered {response.status}")
        conn.close()

    threads = [threading.Thread(target=run) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return per_client * clients / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # Enqueue alone: no workers take events while we measure.
        server = start_server(Path(tmp) / "enqueue", "--async-workers", "0")
        try:
            lam = server.client()
            lam.create_function(
                FunctionName="sink",
                Runtime=RUNTIME,
                Role=ROLE,
                Handler="handler.handler",
                Code={"ZipFile": make_zip()},
            )
            while (
                lam.get_function_configuration(FunctionName="sink").get("LastUpdateStatus")
                != "Successful"
            ):
                time.sleep(0.01)
            for clients in (1, 8):
                rate = enqueue(server, "sink", args.events, clients)
                print(
                    f"durable enqueue, {clients} client(s): {rate:8.0f} events/s (202 after commit)"
                )
        finally:
            server.stop()
        server = start_server(Path(tmp) / "drain", "--async-workers", "0")
        try:
            lam = server.client()
            lam.create_function(
                FunctionName="drain",
                Runtime=RUNTIME,
                Role=ROLE,
                Handler="handler.handler",
                Code={"ZipFile": make_zip()},
            )
            while (
                lam.get_function_configuration(FunctionName="drain").get("LastUpdateStatus")
                != "Successful"
            ):
                time.sleep(0.01)
            enqueue(server, "drain", args.events, 8)
        finally:
            server.stop()
        # Restart the same data with workers: they drain what is queued.
        server = start_server(Path(tmp) / "drain")
        try:
            start = time.perf_counter()
            queued = depth(server)
            while depth(server) > 0:
                time.sleep(0.05)
            elapsed = time.perf_counter() - start
            print(
                f"drain, trivial function, 4 workers:   {queued / elapsed:8.0f} events/s ({queued} events)"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
