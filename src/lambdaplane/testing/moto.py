"""A real moto server (``moto[server]``) on loopback: the AWS peer of integration tests
and benchmarks (SQS, SNS, Kinesis, DynamoDB Streams ...), with dummy credentials."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaplane.testing.server import free_port

REGION = "us-east-1"
KEYS = {"aws_access_key_id": "lambdaplane", "aws_secret_access_key": "lambdaplane"}


@dataclass
class MotoServer:
    """A running moto server; ``client(service)`` gives boto3 clients of it (closed by
    ``stop``)."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    _clients: list[Any] = field(default_factory=list)

    def client(self, service: str) -> Any:
        import boto3

        client = boto3.client(service, endpoint_url=self.url, region_name=REGION, **KEYS)
        self._clients.append(client)
        return client

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_moto(log_dir: Path, timeout: float = 30) -> MotoServer:
    """Start ``python -m moto.server`` on 127.0.0.1 and wait until it listens."""
    if importlib.util.find_spec("moto") is None:
        raise RuntimeError('moto is not installed: the test extras need "moto[server]"')
    port = free_port()
    log = log_dir / "moto.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": KEYS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": KEYS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": REGION,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    server = MotoServer(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"moto server did not listen: {log.read_text()}")
