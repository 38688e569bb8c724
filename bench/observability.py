"""What LoggingConfig JSON and OTLP span export cost on the warm invoke path.

Two real servers, one without an OTLP endpoint and one exporting to a local OTLP/HTTP
sink that answers 200 and drops what it gets. On each, the same trivial Python
function (Text and JSON log formats, quiet and with one `logging` line plus one print per
invocation) is invoked warm over one raw keep-alive connection, in interleaved rounds so
drift hits every variant alike. Prints p50/p99 per variant.

    .venv/bin/python bench/observability.py [--samples 2000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import http.server
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.invoke import ROLE, RUNTIME, raw_samples, summary, wait_active
from lambdaplane.testing import ServerProcess, make_zip, start_server

QUIET = "def handler(event, context):\n    return event\n"
LOGGING = (
    "import logging\nlog = logging.getLogger('bench')\n"
    "def handler(event, context):\n"
    "    log.warning('one line %d', 1)\n    print('printed')\n    return event\n"
)
VARIANTS = {
    "Text, quiet": (QUIET, {"LogFormat": "Text"}),
    "JSON, quiet": (QUIET, {"LogFormat": "JSON"}),
    "Text, 1 logging + 1 print": (LOGGING, {"LogFormat": "Text"}),
    "JSON, 1 logging + 1 print": (LOGGING, {"LogFormat": "JSON"}),
}


class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def deploy(server: ServerProcess) -> dict[str, str]:
    lam = server.client()
    names = {}
    for i, (label, (source, logging_config)) in enumerate(VARIANTS.items()):
        name = f"obs-{i}"
        lam.create_function(
            FunctionName=name,
            Runtime=RUNTIME,
            Role=ROLE,
            Handler="handler.handler",
            Code={"ZipFile": make_zip({"handler.py": source})},
            LoggingConfig=logging_config,
        )
        wait_active(lam, name)
        names[label] = name
    lam.close()
    return names


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    otlp = f"http://127.0.0.1:{sink.server_address[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        servers = {
            "no OTLP": start_server(Path(tmp) / "plain"),
            "OTLP on": start_server(Path(tmp) / "otlp", "--otlp-endpoint", otlp),
        }
        try:
            deployed = {label: deploy(server) for label, server in servers.items()}
            results: dict[str, list[float]] = {}
            per_round = max(1, args.samples // args.rounds)
            for _ in range(args.rounds):
                for server_label, server in servers.items():
                    for variant, name in deployed[server_label].items():
                        path = f"/2015-03-31/functions/{name}/invocations"
                        samples = raw_samples(server, path, b"{}", per_round, b"{}")
                        results.setdefault(f"{server_label}: {variant}", []).extend(samples)
            for label, samples in results.items():
                summary(f"warm invoke, {label}", samples)
        finally:
            for server in servers.values():
                server.stop()
            sink.shutdown()


if __name__ == "__main__":
    main()
