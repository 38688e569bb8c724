"""Start a real ``lambdaplane serve`` subprocess on a free loopback port.

Used by integration tests and benchmarks: the server is the real program, talked to
over real HTTP by real clients. Its output is kept so a failing test can show it.
"""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_KEY = re.compile(r"AWS_ACCESS_KEY_ID=(\S+)")
_SECRET = re.compile(r"AWS_SECRET_ACCESS_KEY=(\S+)")

SAFE_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_zip(files: dict[str, str | bytes] | None = None, mode: int = 0o644) -> bytes:
    """A deployment package holding ``files`` (default: a Python hello handler), each ``mode``."""
    files = files or {"handler.py": "def handler(event, context):\n    return {'ok': True}\n"}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            # A fixed timestamp keeps the bytes, and so CodeSha256, the same on every call.
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = mode << 16
            zf.writestr(info, content, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    port: int
    data_dir: Path
    region: str
    access_key_id: str = ""
    secret_access_key: str = ""
    output: list[str] = field(default_factory=list)
    pump: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, validate: bool = True, **kwargs: Any) -> Any:
        """A boto3 Lambda client using the server's printed root keys."""
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(
            aws_access_key_id=kwargs.pop("aws_access_key_id", self.access_key_id),
            aws_secret_access_key=kwargs.pop("aws_secret_access_key", self.secret_access_key),
            region_name=self.region,
        )
        config = Config(
            parameter_validation=validate,
            retries={"max_attempts": 0, "mode": "standard"},
            tcp_keepalive=True,
        )
        return session.client("lambda", endpoint_url=self.endpoint, config=config, **kwargs)

    def cli_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(SAFE_ENV)
        env.update(
            AWS_ACCESS_KEY_ID=self.access_key_id,
            AWS_SECRET_ACCESS_KEY=self.secret_access_key,
            AWS_DEFAULT_REGION=self.region,
            AWS_PAGER="",
        )
        return env

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.pump is not None:
            self.pump.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return int(self.process.returncode)

    def log(self) -> str:
        return "".join(self.output)

    def mountinfo(self) -> str:
        """The mounts the server sees (its own namespace when it runs as root)."""
        return Path(f"/proc/{self.process.pid}/mountinfo").read_text()


def _pump(stream: io.TextIOBase, sink: list[str]) -> None:
    for line in stream:
        sink.append(line)


def start_server(
    data_dir: Path,
    *extra: str,
    port: int | None = None,
    region: str = "us-east-1",
    timeout: float = 30,
) -> ServerProcess:
    """Start ``lambdaplane serve`` and wait until its health check answers 200."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(SAFE_ENV)
    command = [
        sys.executable,
        "-m",
        "lambdaplane",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--region",
        region,
        *extra,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    server = ServerProcess(process, port, data_dir, region)
    assert process.stdout is not None
    server.pump = threading.Thread(target=_pump, args=(process.stdout, server.output), daemon=True)
    server.pump.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"lambdaplane exited with {process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{server.endpoint}/_lambdaplane/health", timeout=1) as r:
                if r.status == 200 and _KEY.search(server.log()):
                    break
        except OSError:
            pass
        time.sleep(0.05)
    else:
        server.stop()
        raise RuntimeError(f"lambdaplane did not become healthy:\n{server.log()}")
    text = server.log()
    key, secret = _KEY.search(text), _SECRET.search(text)
    assert key and secret, text
    server.access_key_id, server.secret_access_key = key.group(1), secret.group(1)
    return server


def signed_request(
    server: ServerProcess,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    secret: str | None = None,
    access_key: str | None = None,
    sign: bool = True,
) -> tuple[int, dict[str, str], bytes]:
    """Send a raw HTTP request signed with SigV4 (botocore's signer) and return the reply.

    For malformed bodies and other inputs that boto3 itself would never send.
    """
    import http.client

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    all_headers = {"content-type": "application/json", **(headers or {})}
    request = AWSRequest(method=method, url=server.endpoint + path, data=body, headers=all_headers)
    if sign:
        credentials = Credentials(
            access_key or server.access_key_id, secret or server.secret_access_key
        )
        SigV4Auth(credentials, "lambda", server.region).add_auth(request)
    prepared = request.prepare()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=dict(prepared.headers.items()))
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()
