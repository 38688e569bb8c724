"""LoggingConfig through a real server: JSON platform records, application JSON logs on
every Python path, ApplicationLogLevel and SystemLogLevel, and a custom log group."""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import textwrap
import time
from typing import Any

import pytest

from lambdaplane.service.runtimes import find_interpreters
from lambdaplane.testing import ServerProcess, make_zip
from tests.integration.helpers import RUNTIME, unique_name, wait_settled

ISO_MS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"

LOGGING = """
import logging, os
logging.getLogger().info("init of %s", os.environ["AWS_LAMBDA_FUNCTION_NAME"])

def handler(event, context):
    logger = logging.getLogger("orders")
    print("printed", event.get("n"))
    logger.debug("a debug line")
    logger.info("an info line %d", 42)
    logger.warning("a warning")
    logger.error("an error", extra={"order": 7})
    if event.get("fail"):
        raise ValueError("boom")
    return {
        "stream": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"],
        "group": context.log_group_name,
    }
"""

# An external extension that only waits for SHUTDOWN: its layer sends the function
# through the agent and `python -m awslambdaric` instead of the direct path.
EXTENSION = """#!/usr/bin/python3
import json, os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2020-01-01/extension/"
request = urllib.request.Request(api + "register", method="POST",
    data=json.dumps({"events": ["SHUTDOWN"]}).encode(),
    headers={"Lambda-Extension-Name": "idle"})
with urllib.request.urlopen(request) as response:
    ident = response.headers["Lambda-Extension-Identifier"]
next_event = urllib.request.Request(api + "event/next",
    headers={"Lambda-Extension-Identifier": ident})
urllib.request.urlopen(next_event).read()
"""


def deploy(lam: Any, role: str, source: str = LOGGING, **extra: Any) -> str:
    name = unique_name("logcfg")
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": textwrap.dedent(source)})},
        **extra,
    )
    wait_settled(lam, name)
    return name


def call(lam: Any, name: str, event: Any = None) -> tuple[dict[str, Any], Any, list[str]]:
    response = lam.invoke(
        FunctionName=name, Payload=json.dumps(event or {}).encode(), LogType="Tail"
    )
    body = json.loads(response["Payload"].read())
    return response, body, base64.b64decode(response["LogResult"]).decode().splitlines()


def stored(server: ServerProcess, group: str, wait: float = 0.6) -> list[tuple[str, str]]:
    """(stream, message) of every event stored under ``group``, oldest first."""
    time.sleep(wait)  # the sink writes every 200 ms
    db = sqlite3.connect(f"file:{server.data_dir / 'lambdaplane.db'}?mode=ro", uri=True)
    try:
        return db.execute(
            "SELECT log_stream, message FROM log_events WHERE log_group = ? ORDER BY timestamp, id",
            (group,),
        ).fetchall()
    finally:
        db.close()


def platform(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.startswith('{"time":')]


def application(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.startswith('{"timestamp"')]


def check_json_invocation(lines: list[str], name: str, cold: bool) -> str:
    """The records of one invocation at the default levels (INFO); returns its request id."""
    records = platform(lines)
    types = [r["type"] for r in records]
    assert types == (["platform.initStart"] if cold else []) + ["platform.start", "platform.report"]
    assert all(re.fullmatch(ISO_MS, r["time"]) for r in records)
    if cold:
        init = records.pop(0)["record"]
        assert init["initializationType"] == "on-demand" and init["phase"] == "init"
        assert init["functionName"] == name and init["functionVersion"] == "$LATEST"
        assert init["runtimeVersion"] == RUNTIME
        assert init["runtimeVersionArn"].startswith("arn:aws:lambda:us-east-1::runtime:")
    start, report = (r["record"] for r in records)
    request_id = start["requestId"]
    assert start == {"requestId": request_id, "version": "$LATEST"}
    assert report["requestId"] == request_id and report["status"] == "success"
    metrics = report["metrics"]
    assert set(metrics) == {"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB"} | (
        {"initDurationMs"} if cold else set()
    )
    assert metrics["memorySizeMB"] == 128 and metrics["billedDurationMs"] >= 1
    assert not any(line.startswith(("START ", "END ", "REPORT ", "INIT_START")) for line in lines)
    # Python's logging module: JSON records at INFO and above, with the request id.
    logs = application(lines)
    assert [(r["level"], r["logger"], r["message"]) for r in logs[-3:]] == [
        ("INFO", "orders", "an info line 42"),
        ("WARNING", "orders", "a warning"),
        ("ERROR", "orders", "an error"),
    ]
    assert all(r["requestId"] == request_id for r in logs[-3:])
    assert logs[-1]["order"] == 7  # `extra` fields, as awslambdaric writes them
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["timestamp"]) for r in logs)
    assert not any(r["level"] == "DEBUG" for r in logs)
    # print() stays plain text.
    assert any(line.startswith("printed ") for line in lines)
    return str(request_id)


def test_json_records_on_the_spawned_path(lam: Any, role: str, server: ServerProcess) -> None:
    name = deploy(lam, role, LoggingConfig={"LogFormat": "JSON"})
    _, body, cold = call(lam, name, {"n": 1})
    check_json_invocation(cold, name, cold=True)
    init = application(cold)[0]
    assert init["message"] == f"init of {name}" and not init.get("requestId")
    _, _, warm = call(lam, name, {"n": 2})
    check_json_invocation(warm, name, cold=False)
    # The store has the same lines as the tails, in the function's stream.
    rows = stored(server, f"/aws/lambda/{name}")
    assert {stream for stream, _ in rows} == {body["stream"]}
    assert [m for _, m in rows] == cold + warm


def test_json_records_on_a_claimed_preinitialised_sandbox(
    lam: Any, role: str, server: ServerProcess
) -> None:
    """The pre-initialised interpreter loaded awslambdaric before the function's format
    and level were known: it must honour them all the same."""
    first = deploy(lam, role, MemorySize=176, LoggingConfig={"LogFormat": "JSON"})
    call(lam, first)  # a spawned cold start; its kind is now kept pre-initialised
    time.sleep(1.5)
    second = deploy(
        lam,
        role,
        MemorySize=176,
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG"},
    )
    _, body, lines = call(lam, second, {"n": 3})
    env_id = body["stream"].rsplit("]", 1)[1]
    if f"/mounts/slots/{env_id}" not in server.mountinfo():
        pytest.skip("no pre-initialised sandbox was claimed (needs root)")
    logs = application(lines)
    assert [r["level"] for r in logs[-4:]] == ["DEBUG", "INFO", "WARNING", "ERROR"]
    start = next(r for r in platform(lines) if r["type"] == "platform.start")
    assert {r["requestId"] for r in logs[-4:]} == {start["record"]["requestId"]}


def test_json_records_through_the_agent(lam: Any, role: str) -> None:
    """A layer with an external extension runs the function under the agent, with the
    official `python -m awslambdaric` on the HTTP Runtime API."""
    layer = lam.publish_layer_version(
        LayerName=unique_name("idle-ext"),
        Content={"ZipFile": make_zip({"extensions/idle": EXTENSION}, mode=0o755)},
    )["LayerVersionArn"]
    name = deploy(lam, role, LoggingConfig={"LogFormat": "JSON"}, Layers=[layer])
    _, _, lines = call(lam, name, {"n": 4})
    check_json_invocation(lines, name, cold=True)


def test_function_error_in_json(lam: Any, role: str) -> None:
    name = deploy(lam, role, LoggingConfig={"LogFormat": "JSON"})
    response, body, lines = call(lam, name, {"fail": True})
    assert response["FunctionError"] == "Unhandled" and body["errorType"] == "ValueError"
    report = platform(lines)[-1]
    assert report["type"] == "platform.report" and report["record"]["status"] == "error"
    error = application(lines)[-1]  # awslambdaric's own record of the uncaught error
    assert error["level"] == "ERROR" and error["errorType"] == "ValueError"


def test_application_and_system_levels(lam: Any, role: str) -> None:
    name = deploy(
        lam,
        role,
        LoggingConfig={
            "LogFormat": "JSON",
            "ApplicationLogLevel": "ERROR",
            "SystemLogLevel": "WARN",
        },
    )
    _, _, ok = call(lam, name, {"n": 5})
    # ERROR and up only; print() is INFO (no level), so it goes too. No platform record
    # of a successful invocation is WARN.
    assert [(r["level"], r["message"]) for r in application(ok)] == [("ERROR", "an error")]
    assert ok == [line for line in ok if line.startswith('{"timestamp"')]
    _, _, failed = call(lam, name, {"fail": True})
    assert [r["type"] for r in platform(failed)] == ["platform.runtimeDone", "platform.report"]
    assert all(r["record"]["status"] == "error" for r in platform(failed))


def test_system_level_debug_shows_every_record(lam: Any, role: str) -> None:
    name = deploy(lam, role, LoggingConfig={"LogFormat": "JSON", "SystemLogLevel": "DEBUG"})
    _, body, lines = call(lam, name)
    types = [r["type"] for r in platform(lines)]
    assert types == [
        "platform.initStart",
        "platform.initRuntimeDone",
        "platform.initReport",
        "platform.start",
        "platform.runtimeDone",
        "platform.report",
    ]
    done = platform(lines)[4]["record"]
    assert done["status"] == "success"
    assert done["metrics"]["producedBytes"] == len(json.dumps(body))  # the response body


def test_text_format_ignores_levels(lam: Any, role: str) -> None:
    name = deploy(lam, role)  # Text: no levels can be set, nothing is filtered
    _, _, lines = call(lam, name)
    assert lines[0].startswith("INIT_START Runtime Version: ")
    assert any(line.startswith("START RequestId: ") for line in lines)
    assert any(line.startswith("[WARNING]\t") and "a warning" in line for line in lines)
    assert lines[-1].startswith("REPORT RequestId: ")


def test_custom_log_group(lam: Any, role: str, server: ServerProcess) -> None:
    group = f"/custom/{unique_name('group')}"
    name = deploy(lam, role, LoggingConfig={"LogFormat": "Text", "LogGroup": group})
    assert lam.get_function_configuration(FunctionName=name)["LoggingConfig"]["LogGroup"] == group
    _, body, _ = call(lam, name, {"n": 6})
    assert body["group"] == group
    rows = stored(server, group)
    assert any(m == "printed 6" for _, m in rows)
    assert sum(m.startswith("REPORT RequestId:") for _, m in rows) == 1
    assert {stream for stream, _ in rows} == {body["stream"]}
    assert stored(server, f"/aws/lambda/{name}", wait=0) == []
    # Moving the group moves the next environment's lines.
    moved = f"{group}-moved"
    lam.update_function_configuration(FunctionName=name, LoggingConfig={"LogGroup": moved})
    wait_settled(lam, name)
    call(lam, name, {"n": 7})
    assert any(m == "printed 7" for _, m in stored(server, moved))


NODE = next((r.id for r in find_interpreters() if r.family == "nodejs"), None)
CONSOLE = """
exports.handler = async (event) => {
  console.trace('t');
  console.debug('d');
  console.log('l');
  console.warn('w');
  console.error('e');
  process.stdout.write('raw\\n');
  return 'ok';
};
"""


@pytest.mark.skipif(NODE is None, reason="no `node` on this host")
def test_node_console_records_and_levels(lam: Any, role: str) -> None:
    name = unique_name("logcfg-node")
    lam.create_function(
        FunctionName=name,
        Runtime=NODE,
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": make_zip({"index.js": CONSOLE})},
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG"},
    )
    wait_settled(lam, name)
    _, body, lines = call(lam, name)
    assert body == "ok"
    records = platform(lines)
    assert [r["type"] for r in records] == [
        "platform.initStart",
        "platform.start",
        "platform.report",
    ]
    request_id = records[1]["record"]["requestId"]
    logs = application(lines)
    assert [(r["level"], r["message"]) for r in logs] == [
        ("DEBUG", "d"),  # TRACE is below DEBUG
        ("INFO", "l"),
        ("WARN", "w"),
        ("ERROR", "e"),
    ]
    assert all(set(r) == {"timestamp", "level", "requestId", "message"} for r in logs)
    assert all(r["requestId"] == request_id and re.fullmatch(ISO_MS, r["timestamp"]) for r in logs)
    assert "raw" in lines  # what bypasses console stays as written
