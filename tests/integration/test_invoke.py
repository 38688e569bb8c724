"""Synchronous Invoke through boto3, against real sandboxes running the official awslambdaric."""

from __future__ import annotations

import base64
import json
import textwrap
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdaplane.testing import ServerProcess, make_zip
from tests.integration.helpers import RUNTIME, unique_name, wait_settled

HELLO = """
import os, uuid
BOOT_ID = uuid.uuid4().hex  # differs per environment: tells warm from cold

def handler(event, context):
    print("hello from", context.function_name)
    return {"event": event, "boot": BOOT_ID}
"""


def deploy(lam: Any, role: str, source: str, *, name: str | None = None, **extra: Any) -> str:
    name = name or unique_name("inv")
    files = extra.pop("files", None) or {"handler.py": textwrap.dedent(source)}
    params: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": extra.pop("Runtime", RUNTIME),
        "Role": role,
        "Handler": extra.pop("Handler", "handler.handler"),
        "Code": {"ZipFile": make_zip(files)},
        "Timeout": extra.pop("Timeout", 10),
    }
    params.update(extra)
    lam.create_function(**params)
    wait_settled(lam, name)
    return name


def call(lam: Any, name: str, event: Any = None, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    payload = json.dumps(event if event is not None else {}).encode()
    response = lam.invoke(FunctionName=name, Payload=payload, **kwargs)
    body = response["Payload"].read()
    return response, json.loads(body) if body else None


def test_hello_warm_and_cold(lam: Any, role: str) -> None:
    name = deploy(lam, role, HELLO)
    first, body = call(lam, name, {"x": 1})
    assert first["StatusCode"] == 200
    assert first["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in first
    assert body["event"] == {"x": 1}
    _, again = call(lam, name, {"x": 2})
    assert again["boot"] == body["boot"]  # the same warm environment
    assert again["event"] == {"x": 2}


def test_context_and_environment(lam: Any, role: str) -> None:
    source = """
    import os, json
    KEYS = ["AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_INITIALIZATION_TYPE",
            "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV", "_HANDLER", "LAMBDA_TASK_ROOT",
            "LAMBDA_RUNTIME_DIR", "TZ", "LANG", "PATH", "LD_LIBRARY_PATH", "PYTHONPATH",
            "AWS_LAMBDA_RUNTIME_API", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
            "AWS_EC2_METADATA_DISABLED", "MY_VAR"]

    def handler(event, context):
        cc = context.client_context
        return {
            "env": {k: os.environ.get(k) for k in KEYS},
            "uid": os.getuid(),
            "cwd": os.getcwd(),
            "remaining": context.get_remaining_time_in_millis(),
            "request_id": context.aws_request_id,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "memory": context.memory_limit_in_mb,
            "arn": context.invoked_function_arn,
            "log_group": context.log_group_name,
            "log_stream": context.log_stream_name,
            "client_custom": cc.custom if cc else None,
        }
    """
    name = deploy(
        lam, role, source, MemorySize=256, Timeout=7, Environment={"Variables": {"MY_VAR": "mine"}}
    )
    context = base64.b64encode(
        json.dumps({"custom": {"k": "v"}, "env": {}, "client": {}}).encode()
    ).decode()
    _, body = call(lam, name, ClientContext=context)
    assert "env" in body, body
    env = body["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}"
    assert "[$LATEST]" in env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{RUNTIME}"
    assert env["_HANDLER"] == "handler.handler"
    assert env["LAMBDA_TASK_ROOT"] == "/var/task" and env["LAMBDA_RUNTIME_DIR"] == "/var/runtime"
    assert env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9001"
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    assert env["TZ"] == ":UTC" and env["LANG"] == "en_US.UTF-8"
    assert all(
        env[k]
        for k in (
            "PATH",
            "LD_LIBRARY_PATH",
            "PYTHONPATH",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        )
    )
    assert env["MY_VAR"] == "mine"
    assert body["uid"] == 993 and body["cwd"] == "/var/task"
    assert 0 < body["remaining"] <= 7000
    assert body["function_name"] == name and body["function_version"] == "$LATEST"
    assert body["memory"] == "256"
    assert body["arn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    assert body["log_group"] == f"/aws/lambda/{name}"
    assert body["log_stream"] == env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert body["client_custom"] == {"k": "v"}


def test_tail_has_platform_lines(lam: Any, role: str) -> None:
    name = deploy(lam, role, HELLO)
    response, _ = call(lam, name, LogType="Tail")
    tail = base64.b64decode(response["LogResult"]).decode()
    assert f"hello from {name}" in tail
    assert "START RequestId: " in tail and "Version: $LATEST" in tail
    assert "END RequestId: " in tail
    report = next(line for line in tail.splitlines() if line.startswith("REPORT"))
    for field in (
        "Duration: ",
        "Billed Duration: ",
        "Memory Size: 128 MB",
        "Max Memory Used: ",
        "Init Duration: ",
    ):
        assert field in report, report
    response, _ = call(lam, name, LogType="Tail")
    warm = base64.b64decode(response["LogResult"]).decode()
    assert "Init Duration" not in warm and "INIT_START" not in warm


def test_handler_exception(lam: Any, role: str) -> None:
    source = """
    def handler(event, context):
        raise ValueError("Handler fails")
    """
    name = deploy(lam, role, source)
    response, body = call(lam, name)
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "Handler fails"
    assert len(body["requestId"]) == 36
    assert any("raise ValueError" in frame for frame in body["stackTrace"])
    # The environment survives a handled error: still warm, still answering.
    response, body = call(lam, name)
    assert response["FunctionError"] == "Unhandled"


def test_timeout_resets_environment(lam: Any, role: str) -> None:
    source = """
    import time, uuid
    BOOT = uuid.uuid4().hex
    def handler(event, context):
        if event.get("sleep"):
            time.sleep(event["sleep"])
        return BOOT
    """
    name = deploy(lam, role, source, Timeout=1)
    _, boot = call(lam, name)
    response, body = call(lam, name, {"sleep": 5})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")
    assert body["errorMessage"].startswith("RequestId: ")
    _, after = call(lam, name)
    assert after != boot  # destroyed: the next invocation started cold


@pytest.mark.slow
def test_out_of_memory(lam: Any, role: str) -> None:
    source = """
    def handler(event, context):
        blocks = []
        while True:
            blocks.append(bytearray(16 * 1024 * 1024))
    """
    name = deploy(lam, role, source, MemorySize=128)
    response, body = call(lam, name)
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert body["errorMessage"].endswith("Error: Runtime exited with error: signal: killed")


def test_exit_mid_invoke(lam: Any, role: str) -> None:
    source = """
    import os
    def handler(event, context):
        if event.get("exit"):
            os._exit(3)
        return "alive"
    """
    name = deploy(lam, role, source)
    response, body = call(lam, name, {"exit": True})
    assert response["FunctionError"] == "Unhandled"
    assert body == {
        "errorType": "Runtime.ExitError",
        "errorMessage": body["errorMessage"],
    }
    assert body["errorMessage"].endswith("Error: Runtime exited with error: exit status 3")
    _, body = call(lam, name)
    assert body == "alive"


@pytest.mark.parametrize(
    ("files", "handler", "error_type"),
    [
        (
            {"handler.py": "import not_a_module_anywhere\ndef handler(e, c):\n    return 1\n"},
            "handler.handler",
            "Runtime.ImportModuleError",
        ),
        (
            {"handler.py": "def handler(e, c):\n    return (\n"},
            "handler.handler",
            "Runtime.UserCodeSyntaxError",
        ),
        (
            {"handler.py": "def other(e, c):\n    return 1\n"},
            "handler.handler",
            "Runtime.HandlerNotFound",
        ),
        (
            {"handler.py": "def handler(e, c):\n    return 1\n"},
            "missing.handler",
            "Runtime.ImportModuleError",
        ),
    ],
)
def test_init_errors_repeat_until_fixed(
    lam: Any, role: str, files: dict[str, str], handler: str, error_type: str
) -> None:
    name = deploy(lam, role, "", files=files, Handler=handler)
    for _ in range(2):
        response, body = call(lam, name)
        assert response["FunctionError"] == "Unhandled"
        assert body["errorType"] == error_type, body
        assert "errorMessage" in body
    lam.update_function_code(
        FunctionName=name,
        ZipFile=make_zip(
            {handler.split(".")[0] + ".py": "def handler(e, c):\n    return 'fixed'\n"}
        ),
    )
    wait_settled(lam, name)
    _, body = call(lam, name)
    assert body == "fixed"


def test_update_sends_new_invocations_to_new_code(lam: Any, role: str) -> None:
    name = deploy(lam, role, "def handler(e, c):\n    return 'v1'\n")
    assert call(lam, name)[1] == "v1"
    lam.update_function_code(
        FunctionName=name, ZipFile=make_zip({"handler.py": "def handler(e, c):\n    return 'v2'\n"})
    )
    wait_settled(lam, name)
    assert call(lam, name)[1] == "v2"
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"VV": "3"}})
    wait_settled(lam, name)
    source = "import os\ndef handler(e, c):\n    return os.environ.get('VV')\n"
    lam.update_function_code(FunctionName=name, ZipFile=make_zip({"handler.py": source}))
    wait_settled(lam, name)
    assert call(lam, name)[1] == "3"


def test_invoke_errors(lam: Any, raw_lam: Any, role: str, server: ServerProcess) -> None:
    name = deploy(lam, role, HELLO)
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=name, Payload=b"x" * (6 * 1024 * 1024 + 1))
    assert exc.value.response["Error"]["Code"] == "RequestTooLargeException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=name, Payload=b"{not json")
    assert exc.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert exc.value.response["Error"]["Message"].startswith(
        "Could not parse request body into json: Could not parse payload into json: "
    )
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=unique_name("missing"))
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert exc.value.response["Error"]["Message"].endswith(":$LATEST")
    dry = lam.invoke(FunctionName=name, InvocationType="DryRun")
    assert dry["StatusCode"] == 204
    assert dry["Payload"].read() == b""
    event = lam.invoke(FunctionName=name, InvocationType="Event")
    assert event["StatusCode"] == 202  # durably queued (tests/integration/test_async.py)
    assert event["Payload"].read() == b""


def test_large_response_is_refused(lam: Any, role: str) -> None:
    source = """
    def handler(event, context):
        return "x" * (7 * 1024 * 1024)
    """
    name = deploy(lam, role, source, MemorySize=512)
    response, body = call(lam, name)
    assert response["FunctionError"] == "Unhandled"
    assert body == {
        "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }


def test_custom_runtime_shell_bootstrap(lam: Any, role: str) -> None:
    bootstrap = """#!/bin/sh
set -eu
while true; do
  HEADERS=$(mktemp)
  EVENT=$(curl -sS -LD "$HEADERS" "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/next")
  REQUEST_ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  curl -sS -X POST "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/$REQUEST_ID/response" -d "{\\"shell\\": $EVENT}" >/dev/null
done
"""
    name = unique_name("shell")
    zip_bytes = make_zip({"bootstrap": bootstrap}, mode=0o755)
    lam.create_function(
        FunctionName=name,
        Runtime="provided.al2023",
        Role=role,
        Handler="unused",
        Code={"ZipFile": zip_bytes},
    )
    wait_settled(lam, name)
    _, body = call(lam, name, {"a": 1})
    assert body == {"shell": {"a": 1}}


def test_isolation_from_host_and_other_functions(
    lam: Any, role: str, server: ServerProcess
) -> None:
    secret_name = deploy(
        lam, role, "SECRET = 'top-secret-of-another-function'\ndef handler(e, c):\n    return 1\n"
    )
    source = """
    import os, socket, glob

    def attempt(fn):
        try:
            return "ok:" + str(fn())[:200]
        except Exception as exc:
            return "denied:" + type(exc).__name__

    def connect(port):
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.close()
        return "connected"

    def handler(event, context):
        data_dir = event["data_dir"]
        return {
            "shadow": attempt(lambda: open("/etc/shadow").read()),
            "root": attempt(lambda: os.listdir("/root")),
            "data_dir": attempt(lambda: os.listdir(data_dir)),
            "credentials": attempt(lambda: open(data_dir + "/credentials.json").read()),
            "other_code": attempt(lambda: glob.glob(data_dir + "/code/unpacked/*/handler.py")),
            "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
            "server_port": attempt(lambda: connect(event["server_port"])),
            "postgres": attempt(lambda: connect(5432)),
            "environ_secret": os.environ.get("LAMBDAPLANE_TEST_SECRET"),
            "write_task": attempt(lambda: open("/var/task/x", "w")),
            "write_root": attempt(lambda: open("/x", "w")),
            "host_packages": [
                p for p in __import__("sys").path
                if ("site-packages" in p or "dist-packages" in p) and os.path.isdir(p) and os.listdir(p)
            ],
        }
    """
    name = deploy(lam, role, source)
    _, body = call(lam, name, {"data_dir": str(server.data_dir), "server_port": server.port})
    assert body["shadow"].startswith("denied:")
    assert body["root"].startswith("denied:")
    assert body["data_dir"].startswith("denied:")
    assert body["credentials"].startswith("denied:")
    assert body["other_code"] in ("ok:[]", "denied:FileNotFoundError")
    assert max(body["pids"]) < 20, body["pids"]  # only the sandbox's own processes
    assert body["server_port"].startswith("denied:")
    assert body["postgres"].startswith("denied:")
    assert body["environ_secret"] is None
    assert body["write_task"].startswith("denied:")
    assert body["write_root"].startswith("denied:")
    assert body["host_packages"] == []  # only what AWS's runtime carries: /var/runtime
    assert secret_name


def test_fork_bomb_and_full_tmp_harm_only_the_function(lam: Any, role: str) -> None:
    source = """
    import os, errno

    def handler(event, context):
        if event["what"] == "fork":
            children = 0
            try:
                while children < 100000:
                    if os.fork() == 0:
                        import time
                        time.sleep(3)
                        os._exit(0)
                    children += 1
            except OSError as exc:
                return {"stopped_at": children, "errno": exc.errno}
            return {"stopped_at": children}
        if event["what"] == "tmp":
            written = 0
            try:
                with open("/tmp/fill", "wb") as f:
                    while True:
                        f.write(b"\\0" * (1 << 20))
                        written += 1
            except OSError as exc:
                os.remove("/tmp/fill")
                return {"written_mb": written, "errno": exc.errno}
        return "fine"
    """
    name = deploy(lam, role, source, EphemeralStorage={"Size": 512}, Timeout=30, MemorySize=2048)
    _, body = call(lam, name, {"what": "fork"})
    assert body["errno"] == 11  # EAGAIN at the pids limit
    assert body["stopped_at"] < 5000
    # /tmp is a tmpfs: its pages count against the memory cgroup (docs/sandbox.md), so the
    # function gets the memory to fill it.
    name = deploy(lam, role, source, EphemeralStorage={"Size": 512}, Timeout=30, MemorySize=1024)
    _, body = call(lam, name, {"what": "tmp"})
    assert "errno" in body, body
    assert body["errno"] == 28  # ENOSPC inside the sandbox
    assert 400 <= body["written_mb"] <= 512
    # The platform (and other functions) are fine.
    other = deploy(lam, role, HELLO)
    assert call(lam, other, {"after": True})[1]["event"] == {"after": True}


@pytest.fixture(scope="module")
def powertools_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """aws-lambda-powertools from PyPI, vendored into the deployment package as users do."""
    import subprocess
    import sys
    from pathlib import Path

    target = tmp_path_factory.mktemp("powertools")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--target", str(target), "--no-deps", "aws-lambda-powertools>=3,<4", "jmespath", "typing_extensions"],
        check=True, timeout=300,
    )  # fmt: skip
    files: dict[str, str | bytes] = {
        str(p.relative_to(target)): p.read_bytes()
        for p in Path(target).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    files["handler.py"] = textwrap.dedent(
        """
        from aws_lambda_powertools import Logger, Metrics
        from aws_lambda_powertools.metrics import MetricUnit
        from aws_lambda_powertools.utilities.typing import LambdaContext

        logger = Logger(service="checkout")
        metrics = Metrics(namespace="Shop", service="checkout")

        @metrics.log_metrics
        @logger.inject_lambda_context
        def handler(event: dict, context: LambdaContext) -> dict:
            logger.info("processing order", extra={"order": event.get("order")})
            metrics.add_metric(name="Orders", unit=MetricUnit.Count, value=1)
            return {"order": event.get("order"), "request": context.aws_request_id}
        """
    )
    return make_zip(files)


@pytest.mark.slow
def test_powertools_handler_runs_unmodified(lam: Any, role: str, powertools_zip: bytes) -> None:
    name = unique_name("powertools")
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": powertools_zip},
        Timeout=15,
    )
    wait_settled(lam, name)
    response, body = call(lam, name, {"order": 42}, LogType="Tail")
    assert "FunctionError" not in response, body
    assert body["order"] == 42 and len(body["request"]) == 36
    tail = base64.b64decode(response["LogResult"]).decode()
    records = [json.loads(line) for line in tail.splitlines() if line.startswith("{")]
    log_record = next(r for r in records if r.get("message") == "processing order")
    assert log_record["service"] == "checkout" and log_record["order"] == 42
    assert log_record["function_name"] == name and log_record["cold_start"] is True
    emf = next(r for r in records if "_aws" in r)
    assert emf["Orders"] == [1.0] or emf["Orders"] == 1.0


def _offered_python_runtimes() -> list[str]:
    from lambdaplane.service.runtimes import discover
    from lambdaplane.settings import default_runtimes_dir

    return [r for r in discover(runtimes_dir=default_runtimes_dir()).ids if r.startswith("python")]


@pytest.mark.parametrize("runtime", _offered_python_runtimes())
def test_every_python_runtime(lam: Any, role: str, runtime: str) -> None:
    source = """
    import sys
    def handler(event, context):
        print("running on", sys.version_info[:2])
        return {"version": "%d.%d" % sys.version_info[:2], "name": context.function_name}
    """
    name = deploy(lam, role, source, Runtime=runtime)
    response, body = call(lam, name, LogType="Tail")
    assert "FunctionError" not in response, body
    assert body["version"] == runtime.removeprefix("python")
    assert "running on" in base64.b64decode(response["LogResult"]).decode()
    response, body = call(lam, name)  # warm
    assert body["name"] == name


def test_claimed_preinitialised_environment_is_the_functions_own(
    lam: Any, role: str, server: ServerProcess
) -> None:
    """The second cold start of a kind claims a pre-initialised sandbox; it must behave
    exactly like a fresh one: the function's code read-only at /var/task, its own
    environment and nothing left from before it was claimed."""
    import time

    source = """
    import os
    def handler(event, context):
        def attempt(fn):
            try:
                fn()
                return "ok"
            except OSError as exc:
                return type(exc).__name__
        return {
            "stream": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"],
            "mine": os.environ.get("ONLY_MINE"),
            "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
            "cwd": os.getcwd(),
            "files": sorted(os.listdir("/var/task")),
            "write": attempt(lambda: open("/var/task/new.txt", "w")),
            "memory": os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"],
        }
    """
    first = deploy(lam, role, source, MemorySize=192)
    call(lam, first)  # a spawned cold start; its kind is now kept pre-initialised
    time.sleep(1.5)
    second = deploy(
        lam, role, source, MemorySize=192, Environment={"Variables": {"ONLY_MINE": "yes"}}
    )
    _, body = call(lam, second)
    env_id = body["stream"].rsplit("]", 1)[1]
    assert f"/mounts/slots/{env_id}" in server.mountinfo(), (
        "expected a claimed pre-initialised sandbox"
    )
    assert body["function"] == second and body["mine"] == "yes" and body["memory"] == "192"
    assert body["cwd"] == "/var/task" and body["files"] == ["handler.py"]
    assert body["write"] in ("OSError", "PermissionError")
