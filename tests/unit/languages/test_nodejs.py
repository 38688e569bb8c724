"""The Node.js language: its variables and command, its install, its bootstrap script, and
its runtime driven through the real agent (no sandbox; the test plays the host)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lambdaplane.agent import wire
from lambdaplane.languages import nodejs, registry
from lambdaplane.service.runtimes import Runtime
from tests.unit.agent.harness import AGENT, Host, free_port

NODE = shutil.which("node")
BOOTSTRAP = nodejs.RUNTIME_SOURCE / "bootstrap"


def test_registered_as_the_nodejs_family() -> None:
    assert registry()["nodejs"] is nodejs.LANGUAGE
    assert nodejs.LANGUAGE.needs_runtime_dir


@pytest.mark.parametrize("major", [18, 20, 22])
def test_environment_is_aws_nodejs_runtimes(major: int) -> None:
    env = nodejs.LANGUAGE.environment(Runtime(f"nodejs{major}.x", "/usr/bin/node"))
    assert env == {
        "AWS_EXECUTION_ENV": f"AWS_Lambda_nodejs{major}.x",
        "NODE_PATH": f"/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:"
        "/var/runtime/node_modules:/var/runtime:/var/task",
    }


def test_argv_is_the_bootstrap_given_the_hosts_node(tmp_path: Path) -> None:
    runtime = Runtime("nodejs20.x", "/usr/local/bin/node")
    argv = nodejs.LANGUAGE.argv(runtime, "index.handler", tmp_path)
    assert argv == ["/var/runtime/bootstrap", "/usr/local/bin/node"]


@pytest.mark.parametrize("runtime_id", ["nodejs", "nodejs20", "python3.12", "nodejsx.x"])
def test_major_version_refuses_other_ids(runtime_id: str) -> None:
    with pytest.raises(ValueError):
        nodejs.major_version(runtime_id)


def test_install_copies_the_runtime(tmp_path: Path) -> None:
    said: list[str] = []
    assert nodejs.LANGUAGE.install(Runtime("nodejs20.x", "/usr/bin/node"), tmp_path, said.append)
    installed = sorted(p.name for p in tmp_path.iterdir())
    assert "index.mjs" in installed and "bootstrap" in installed
    assert installed == sorted(p.name for p in nodejs.runtime_files())
    for name in installed:
        assert (tmp_path / name).read_bytes() == (nodejs.RUNTIME_SOURCE / name).read_bytes()
    assert (tmp_path / "bootstrap").stat().st_mode & 0o777 == 0o755
    assert said == ["installing nodejs20.x runtime (lambdaplane's Node.js runtime client)"]


def test_install_refuses_node_before_18(tmp_path: Path) -> None:
    said: list[str] = []
    assert not nodejs.LANGUAGE.install(
        Runtime("nodejs16.x", "/usr/bin/node"), tmp_path, said.append
    )
    assert said == ["  not installing nodejs16.x: lambdaplane's runtime needs Node.js 18+"]
    assert not list(tmp_path.iterdir())


# -- the bootstrap script, with a stand-in node that prints its arguments ------------------


@pytest.fixture
def fake_node(tmp_path: Path) -> Path:
    path = tmp_path / "node"
    path.write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    path.chmod(0o755)
    return path


def run_bootstrap(fake_node: Path, **env: str) -> list[str]:
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    out = subprocess.run(
        [str(BOOTSTRAP), str(fake_node)], env=environ, capture_output=True, text=True, check=True
    )
    return out.stdout.splitlines()


@pytest.mark.parametrize(
    ("memory", "semi", "old"), [("128", 3, 122), ("1024", 25, 973), ("10240", 256, 9728)]
)
def test_bootstrap_sizes_the_heap_from_memory(
    fake_node: Path, memory: str, semi: int, old: int
) -> None:
    assert run_bootstrap(fake_node, AWS_LAMBDA_FUNCTION_MEMORY_SIZE=memory) == [
        "--expose-gc",
        "--max-http-header-size",
        "81920",
        f"--max-semi-space-size={semi}",
        f"--max-old-space-size={old}",
        "/var/runtime/index.mjs",
    ]


@pytest.mark.parametrize(
    "options", ["--max-old-space-size=300", "--max_semi_space_size=8 --enable-source-maps"]
)
def test_bootstrap_leaves_heap_sizes_set_in_node_options_alone(
    fake_node: Path, options: str
) -> None:
    args = run_bootstrap(fake_node, AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512", NODE_OPTIONS=options)
    assert args == ["--expose-gc", "--max-http-header-size", "81920", "/var/runtime/index.mjs"]


def test_bootstrap_runs_the_exec_wrapper(fake_node: Path, tmp_path: Path) -> None:
    wrapper = tmp_path / "wrapper"
    wrapper.write_text('#!/bin/sh\necho wrapped\nexec "$@"\n')
    wrapper.chmod(0o755)
    args = run_bootstrap(
        fake_node, AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128", AWS_LAMBDA_EXEC_WRAPPER=str(wrapper)
    )
    assert args[0] == "wrapped" and args[-1] == "/var/runtime/index.mjs"


def test_bootstrap_refuses_a_missing_or_plain_wrapper(fake_node: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    environ = {"AWS_LAMBDA_EXEC_WRAPPER": str(missing)}
    result = subprocess.run([str(BOOTSTRAP), str(fake_node)], env=environ, capture_output=True)
    assert (result.returncode, result.stdout) == (127, f"{missing}: does not exist\n".encode())
    plain = tmp_path / "plain"
    plain.write_text("")
    environ = {"AWS_LAMBDA_EXEC_WRAPPER": str(plain)}
    result = subprocess.run([str(BOOTSTRAP), str(fake_node)], env=environ, capture_output=True)
    assert (result.returncode, result.stdout) == (126, f"{plain}: is not an executable\n".encode())


def test_bootstrap_is_executable_in_the_source_tree() -> None:
    # install() sets the mode too, but a checkout should run as is.
    assert BOOTSTRAP.stat().st_mode & stat.S_IXUSR


# -- the runtime, under the real agent -----------------------------------------------------

StartRuntime = Callable[..., Host]

FUNCTION = """
console.log('init');
exports.echo = async (event, context) => ({
  event,
  requestId: context.awsRequestId,
  arn: context.invokedFunctionArn,
  clientContext: context.clientContext,
  identity: context.identity,
  tenantId: context.tenantId,
  remaining: context.getRemainingTimeInMillis(),
  trace: process.env._X_AMZN_TRACE_ID ?? null,
});
exports.twice = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = false;
  callback(null, 'first');
  callback(null, 'second');
  context.succeed('third');
};
exports.bigint = async () => ({ n: 10n });
exports.circular = async () => { const a = {}; a.a = a; return a; };
exports.thrownObject = async () => { throw { code: 42 }; };
exports.undefinedRejection = () => Promise.reject();
"""


@pytest.fixture
def task_root(tmp_path: Path) -> Path:
    root = tmp_path / "task"
    root.mkdir()
    (root / "index.js").write_text(FUNCTION)
    return root


@pytest.fixture
def start_runtime(task_root: Path) -> Iterator[StartRuntime]:
    """Start the agent running the Node.js runtime for ``handler``; all are closed after."""
    if NODE is None:
        pytest.skip("no `node` on this host")
    hosts: list[Host] = []

    def start(handler: str, **env: str) -> Host:
        port = free_port()
        ours, theirs = socket.socketpair()
        environ = dict(
            os.environ,
            AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}",
            _HANDLER=handler,
            LAMBDA_TASK_ROOT=str(task_root),
            AWS_LAMBDA_FUNCTION_NAME="orders",
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
            **env,
        )
        runtime = [NODE, "--expose-gc", str(nodejs.RUNTIME_SOURCE / "index.mjs")]
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(AGENT), "--fd", str(theirs.fileno()),
             "--port", str(port), "--", *runtime],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, cwd=task_root, env=environ,
        )  # fmt: skip
        theirs.close()
        host = Host(proc, ours, port)
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        host.close()


def test_context_from_runtime_api_headers(start_runtime: StartRuntime) -> None:
    host = start_runtime("index.echo")
    _, before = host.until(wire.NEXT)
    assert host.logs(before).endswith(b"\tundefined\tINFO\tinit\n")
    host.invoke(
        b'{"a": [1, 2]}',
        request_id="8476a536-e9f4-11e8-9739-2dfe598c3fcd",
        deadline_ms=int(time.time() * 1000) + 30_000,
        client_context=json.dumps({"client": {}, "custom": {"k": "v"}, "env": {}}),
        cognito_identity=json.dumps({"cognitoIdentityId": "i", "cognitoIdentityPoolId": "p"}),
        tenant_id="tenant-7",
    )
    frame, _ = host.until(wire.RESPONSE)
    assert frame.meta == {"request_id": "8476a536-e9f4-11e8-9739-2dfe598c3fcd"}
    result = json.loads(frame.body)
    assert 25_000 < result.pop("remaining") <= 30_000
    assert result == {
        "event": {"a": [1, 2]},
        "requestId": "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
        "arn": "arn:aws:lambda:us-east-1:111111111111:function:f",
        "clientContext": {"client": {}, "custom": {"k": "v"}, "env": {}},
        "identity": {"cognitoIdentityId": "i", "cognitoIdentityPoolId": "p"},
        "tenantId": "tenant-7",
        "trace": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
    }
    host.invoke(b"{}", request_id="req-2", trace_id="")
    frame, _ = host.until(wire.RESPONSE)
    assert json.loads(frame.body)["trace"] is None  # no trace header: the variable is unset


def test_only_the_first_report_counts(start_runtime: StartRuntime) -> None:
    host = start_runtime("index.twice")
    host.until(wire.NEXT)
    host.invoke()
    frame, _ = host.until(wire.RESPONSE)
    assert frame.body == b'"first"'
    _, between = host.until(wire.NEXT)  # ready for the next one, nothing else posted
    assert not [f for f in between if f.type in (wire.RESPONSE, wire.ERROR)]


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        (
            "index.bigint",
            {"errorType": "Error", "errorMessage": "Unable to stringify response body"},
        ),
        (
            "index.circular",
            {"errorType": "Error", "errorMessage": "Unable to stringify response body"},
        ),
        ("index.thrownObject", {"errorType": "object", "errorMessage": "[object Object]"}),
        ("index.undefinedRejection", {"errorType": "string", "errorMessage": "handled"}),
    ],
)
def test_odd_outcomes(start_runtime: StartRuntime, handler: str, error: dict[str, str]) -> None:
    host = start_runtime(handler)
    host.until(wire.NEXT)
    host.invoke()
    frame, _ = host.until(wire.ERROR)
    assert frame.meta["error_type"] == error["errorType"]
    document = json.loads(frame.body)
    assert {k: document[k] for k in error} == error


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (
            "../etc/passwd.handler",
            "'../etc/passwd.handler' is not a valid handler name. Use absolute paths when "
            "specifying root directories in handler names.",
        ),
        ("index", "Bad handler"),
    ],
)
def test_malformed_handler_names(start_runtime: StartRuntime, handler: str, message: str) -> None:
    host = start_runtime(handler)
    frame, _ = host.until(wire.INIT_ERROR)
    assert frame.meta["error_type"] == "Runtime.MalformedHandlerName"
    assert json.loads(frame.body)["errorMessage"] == message
    exit_frame, _ = host.until(wire.EXIT)
    assert exit_frame.meta["status"] == "exit status 129"


def test_json_logs_keep_errors_as_fields(start_runtime: StartRuntime, task_root: Path) -> None:
    (task_root / "logs.js").write_text(
        "exports.handler = async () => { console.warn(new TypeError('bad'), 'x'); "
        "console.info({ nested: new RangeError('deep') }); console.debug('hidden'); };"
    )
    host = start_runtime("logs.handler", AWS_LAMBDA_LOG_FORMAT="JSON")
    host.until(wire.NEXT)
    host.invoke(request_id="req-json")
    _, before = host.until(wire.RESPONSE)
    records = [json.loads(line) for line in host.logs(before).decode().splitlines()]
    assert [r["level"] for r in records] == ["WARN", "INFO"]
    assert records[0]["message"].startswith("TypeError: bad\n    at ")  # two args: formatted
    nested = records[1]["message"]["nested"]
    assert nested["errorType"] == "RangeError" and nested["errorMessage"] == "deep"
    assert nested["stackTrace"][0] == "RangeError: deep"
    assert all(r["requestId"] == "req-json" for r in records)
