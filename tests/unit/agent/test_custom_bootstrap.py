"""The agent with a custom runtime: a shell ``bootstrap`` that drives the Runtime API with
curl, a new connection per request, as in AWS's custom runtime tutorial."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from lambdaplane.agent import wire

from .conftest import StartAgent

BOOTSTRAP = """\
#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
HEADERS="$(mktemp)"
echo "bootstrap started"
while true; do
  EVENT=$(curl -sS -D "$HEADERS" "$API/invocation/next")
  REQUEST_ID=$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  echo "handling $REQUEST_ID"
  if [ "$EVENT" = '"fail"' ]; then
    curl -sS -o /dev/null -H 'Lambda-Runtime-Function-Error-Type: Custom.Failed' \\
      -d '{"errorMessage":"failed","errorType":"Custom.Failed"}' "$API/invocation/$REQUEST_ID/error"
  else
    curl -sS -o /dev/null -d "{\\"echo\\":$EVENT}" "$API/invocation/$REQUEST_ID/response"
  fi
done
"""


@pytest.fixture
def bootstrap(tmp_path: Path) -> Path:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    path = tmp_path / "bootstrap"
    path.write_text(BOOTSTRAP)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_curl_bootstrap_loops_next_and_response(start_agent: StartAgent, bootstrap: Path) -> None:
    host = start_agent([str(bootstrap)], env={"TMPDIR": str(bootstrap.parent)})
    _, before = host.until(wire.NEXT)
    for n in range(5):
        host.invoke(json.dumps({"n": n}).encode(), request_id=f"curl-{n}")
        frame, before = host.until(wire.RESPONSE)
        assert frame.meta == {"request_id": f"curl-{n}"}
        assert json.loads(frame.body) == {"echo": {"n": n}}
        assert f"handling curl-{n}\n".encode() in host.logs(before)
        host.until(wire.NEXT)
    assert host.logs(host.seen).startswith(b"bootstrap started\n")


def test_curl_bootstrap_reports_errors(start_agent: StartAgent, bootstrap: Path) -> None:
    host = start_agent([str(bootstrap)], env={"TMPDIR": str(bootstrap.parent)})
    host.until(wire.NEXT)
    host.invoke(b'"fail"', request_id="curl-err")
    frame, _ = host.until(wire.ERROR)
    assert frame.meta == {"request_id": "curl-err", "error_type": "Custom.Failed"}
    assert json.loads(frame.body)["errorType"] == "Custom.Failed"
