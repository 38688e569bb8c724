"""Provisioned concurrency through boto3: AWS's recorded steps, environments initialised
ahead of time, spill-over to on-demand ones, replacement of a killed one, and a restart."""

from __future__ import annotations

import base64
import json
import os
import signal
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from lambdaplane.testing import ServerProcess, make_zip, start_server
from tests.integration.helpers import RUNTIME, reference, unique_name, wait_settled
from tests.integration.test_async import messages
from tests.integration.test_versions import error, wait_version_active

ACCOUNT = "000000000000"
EXCEPTIONS = "TestLambdaProvisionedConcurrency::test_provisioned_concurrency_exceptions"
LIFECYCLE = "TestLambdaProvisionedConcurrency::test_lambda_provisioned_lifecycle"
LIMITS = "TestLambdaProvisionedConcurrency::test_provisioned_concurrency_limits"

# Reports who ran it; with {"hold": true} it waits until the test creates /var/task/go
# (the function's code directory, which the test reaches on the host).
REPORTER = """
import os, time

def handler(event, context):
    if event.get("hold"):
        deadline = time.monotonic() + 20
        while not os.path.exists("/var/task/go") and time.monotonic() < deadline:
            time.sleep(0.01)
    return {
        "init_type": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"],
        "env": context.log_stream_name.split("]", 1)[1],
        "version": context.function_version,
    }
"""


def arn(name: str, qualifier: str | None = None) -> str:
    base = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
    return f"{base}:{qualifier}" if qualifier else base


def filled(text: str, name: str, alias: str = "") -> str:
    return (
        text.replace(
            "arn:<partition>:lambda:<region>:111111111111", f"arn:aws:lambda:us-east-1:{ACCOUNT}"
        )
        .replace("<function-name:1>", name)
        .replace("<alias-name>", alias)
        .replace("<min_unreserved_concurrency>", "100")
    )


def same_error(got: dict[str, Any], test: str, step: str, name: str = "", alias: str = "") -> None:
    """The error AWS answered at ``step``: code, message, status and body keys."""
    recorded = reference(test, step)
    assert got["Error"]["Code"] == recorded["Error"]["Code"], got
    assert got["Error"]["Message"] == filled(recorded["Error"]["Message"], name, alias), got
    assert (
        got["ResponseMetadata"]["HTTPStatusCode"] == recorded["ResponseMetadata"]["HTTPStatusCode"]
    )
    assert set(got) == set(recorded), got


def same_config(got: dict[str, Any], test: str, step: str) -> None:
    """A config answer with AWS's members, status code and (but for LastModified) values."""
    recorded = reference(test, step)
    assert set(got) == set(recorded), got
    for key, value in recorded.items():
        if key not in ("LastModified", "ResponseMetadata"):
            assert got[key] == value, (key, got)
    assert (
        got["ResponseMetadata"]["HTTPStatusCode"] == recorded["ResponseMetadata"]["HTTPStatusCode"]
    )


def deploy(lam: Any, role: str, source: str = REPORTER, versions: int = 1) -> str:
    """A function with ``versions`` published versions (each with its own code)."""
    name = unique_name("pc")
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=role,
        Handler="handler.handler",
        Timeout=30,
        Code={"ZipFile": make_zip({"handler.py": textwrap.dedent(source) + f"# {name} 1\n"})},
    )
    wait_settled(lam, name)
    for number in range(1, versions + 1):
        if number > 1:
            code = textwrap.dedent(source) + f"# {name} {number}\n"
            lam.update_function_code(FunctionName=name, ZipFile=make_zip({"handler.py": code}))
            wait_settled(lam, name)
        lam.publish_version(FunctionName=name)
        wait_version_active(lam, name, str(number))
    return name


def wait_config(
    lam: Any, name: str, qualifier: str, status: str = "READY", timeout: float = 30, **expect: int
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got: dict[str, Any] = lam.get_provisioned_concurrency_config(
            FunctionName=name, Qualifier=qualifier
        )
        if got["Status"] == status and all(got[k] == v for k, v in expect.items()):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}:{qualifier} never {status} {expect}: {got}")
        time.sleep(0.05)


def invoke(lam: Any, name: str, qualifier: str, **payload: Any) -> tuple[dict[str, Any], str]:
    """The function's answer and the invocation's log tail."""
    response = lam.invoke(
        FunctionName=name,
        Qualifier=qualifier,
        Payload=json.dumps(payload).encode(),
        LogType="Tail",
    )
    tail = base64.b64decode(response["LogResult"]).decode()
    return json.loads(response["Payload"].read()), tail


def report_line(tail: str) -> str:
    return next(line for line in tail.splitlines() if line.startswith("REPORT "))


def wait_for(predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def environment_pids(env_id: str) -> list[int]:
    """Host pids of an environment's processes, from its cgroup (as root)."""
    for procs in Path("/sys/fs/cgroup").glob(f"**/lambdaplane/{env_id}/cgroup.procs"):
        return [int(p) for p in procs.read_text().split()]
    return []


def runtime_pid(env_id: str) -> int:
    for pid in environment_pids(env_id):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"pyruntime.py" in cmdline or b"awslambdaric" in cmdline:
            return pid
    raise AssertionError(f"no runtime process in environment {env_id}")


def code_dir(server: ServerProcess, lam: Any, name: str, version: str) -> Path:
    sha_b64 = lam.get_function_configuration(FunctionName=name, Qualifier=version)["CodeSha256"]
    return server.data_dir / "code" / "unpacked" / base64.b64decode(sha_b64).hex()


# -- AWS's recorded steps -------------------------------------------------------------


def test_provisioned_concurrency_exceptions(lam: Any, raw_lam: Any, role: str) -> None:
    name = deploy(lam, role)
    test = EXCEPTIONS
    steps: list[tuple[str, Any, dict[str, Any]]] = [
        (
            "get_provisioned_config_doesnotexist",
            lam.get_provisioned_concurrency_config,
            {"FunctionName": name, "Qualifier": "1"},
        ),
        (
            "get_provisioned_functionname_doesnotexist",
            lam.get_provisioned_concurrency_config,
            {"FunctionName": "doesnotexist", "Qualifier": "noalias"},
        ),
        (
            "get_provisioned_qualifier_doesnotexist",
            lam.get_provisioned_concurrency_config,
            {"FunctionName": name, "Qualifier": "noalias"},
        ),
        (
            "get_provisioned_version_doesnotexist",
            lam.get_provisioned_concurrency_config,
            {"FunctionName": name, "Qualifier": "10"},
        ),
        (
            "get_provisioned_latest",
            lam.get_provisioned_concurrency_config,
            {"FunctionName": name, "Qualifier": "$LATEST"},
        ),
        (
            "list_provisioned_functionname_doesnotexist",
            lam.list_provisioned_concurrency_configs,
            {"FunctionName": "doesnotexist"},
        ),
        (
            "delete_provisioned_functionname_doesnotexist",
            lam.delete_provisioned_concurrency_config,
            {"FunctionName": "doesnotexist", "Qualifier": "1"},
        ),
        (
            "delete_provisioned_qualifier_doesnotexist",
            lam.delete_provisioned_concurrency_config,
            {"FunctionName": name, "Qualifier": "noalias"},
        ),
        (
            "delete_provisioned_version_doesnotexist",
            lam.delete_provisioned_concurrency_config,
            {"FunctionName": name, "Qualifier": "10"},
        ),
        (
            "delete_provisioned_latest",
            lam.delete_provisioned_concurrency_config,
            {"FunctionName": name, "Qualifier": "$LATEST"},
        ),
        (
            "put_provisioned_invalid_param_0",
            raw_lam.put_provisioned_concurrency_config,
            {"FunctionName": name, "Qualifier": "1", "ProvisionedConcurrentExecutions": 0},
        ),
        (
            "put_provisioned_functionname_doesnotexist_alias",
            lam.put_provisioned_concurrency_config,
            {
                "FunctionName": "doesnotexist",
                "Qualifier": "noalias",
                "ProvisionedConcurrentExecutions": 1,
            },
        ),
        (
            "put_provisioned_functionname_doesnotexist_version",
            lam.put_provisioned_concurrency_config,
            {
                "FunctionName": "doesnotexist",
                "Qualifier": "1",
                "ProvisionedConcurrentExecutions": 1,
            },
        ),
        (
            "put_provisioned_qualifier_doesnotexist",
            lam.put_provisioned_concurrency_config,
            {
                "FunctionName": name,
                "Qualifier": "doesnotexist",
                "ProvisionedConcurrentExecutions": 1,
            },
        ),
        (
            "put_provisioned_version_doesnotexist",
            lam.put_provisioned_concurrency_config,
            {"FunctionName": name, "Qualifier": "10", "ProvisionedConcurrentExecutions": 1},
        ),
        (
            "put_provisioned_latest",
            lam.put_provisioned_concurrency_config,
            {"FunctionName": name, "Qualifier": "$LATEST", "ProvisionedConcurrentExecutions": 1},
        ),
    ]
    for step, call, kwargs in steps:
        same_error(error(call, **kwargs), test, step, name)

    listed = lam.list_provisioned_concurrency_configs(FunctionName=name)
    assert listed["ProvisionedConcurrencyConfigs"] == []
    assert set(listed) == set(reference(test, "list_provisioned_noconfigs"))
    deleted = lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204  # no config: no error


def test_provisioned_lifecycle(lam: Any, role: str) -> None:
    name = deploy(lam, role)
    alias = "live"
    lam.create_alias(FunctionName=name, Name=alias, FunctionVersion="1")

    put = lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1
    )
    same_config(put, LIFECYCLE, "put_provisioned_on_version")
    got = error(
        lam.put_provisioned_concurrency_config,
        FunctionName=name,
        Qualifier=alias,
        ProvisionedConcurrentExecutions=1,
    )
    same_error(got, LIFECYCLE, "put_provisioned_on_alias_versionconflict", name, alias)
    deleted = lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    got = error(lam.get_provisioned_concurrency_config, FunctionName=name, Qualifier="1")
    same_error(got, LIFECYCLE, "get_provisioned_version_postdelete", name, alias)

    put = lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=alias, ProvisionedConcurrentExecutions=1
    )
    same_config(put, LIFECYCLE, "put_provisioned_on_alias")
    got = error(
        lam.put_provisioned_concurrency_config,
        FunctionName=name,
        Qualifier="1",
        ProvisionedConcurrentExecutions=1,
    )
    same_error(got, LIFECYCLE, "put_provisioned_on_version_conflict", name, alias)
    listed = lam.list_provisioned_concurrency_configs(FunctionName=name)[
        "ProvisionedConcurrencyConfigs"
    ]
    assert [c["FunctionArn"] for c in listed] == [arn(name, alias)]
    assert listed[0]["RequestedProvisionedConcurrentExecutions"] == 1

    env = wait_config(lam, name, alias, AllocatedProvisionedConcurrentExecutions=1)
    assert env["AvailableProvisionedConcurrentExecutions"] == 1
    body, _ = invoke(lam, name, alias)
    assert body["init_type"] == "provisioned-concurrency"

    deleted = lam.delete_alias(FunctionName=name, Name=alias)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    got = error(lam.get_provisioned_concurrency_config, FunctionName=name, Qualifier=alias)
    same_error(got, LIFECYCLE, "get_provisioned_alias_postaliasdelete", name, alias)
    listed = lam.list_provisioned_concurrency_configs(FunctionName=name)
    assert listed["ProvisionedConcurrencyConfigs"] == []
    # The alias's environment goes with its config.
    wait_for(lambda: not environment_pids(body["env"]))


def test_provisioned_concurrency_limits(lam: Any, role: str) -> None:
    name = deploy(lam, role)
    unreserved = lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    got = error(
        lam.put_provisioned_concurrency_config,
        FunctionName=name,
        Qualifier="1",
        ProvisionedConcurrentExecutions=unreserved + 1,
    )
    recorded = reference(LIMITS, "put_provisioned_concurrency_account_limit_exceeded")
    message = recorded["Error"]["Message"].replace("<unreserved_concurrency>", str(unreserved))
    assert got["Error"] == {"Code": recorded["Error"]["Code"], "Message": message}
    assert set(got) == set(recorded)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 400
    got = error(
        lam.put_provisioned_concurrency_config,
        FunctionName=name,
        Qualifier="1",
        ProvisionedConcurrentExecutions=unreserved - 100 + 1,
    )
    same_error(got, LIMITS, "put_provisioned_concurrency_below_unreserved_min_value", name)


def lambda_reference(test: str, step: str) -> Any:
    """A response recorded in test_lambda.snapshot.json (TestLambdaConcurrency)."""
    data = json.loads(_reference_file("test_lambda.snapshot.json").read_text())
    return data[f"tests/aws/services/lambda_/test_lambda.py::{test}"]["recorded-content"][step]


def _reference_file(file: str) -> Path:
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "aws-reference" / "lambda" / file
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(file)


def test_provisioned_within_reserved_concurrency(lam: Any, role: str) -> None:
    """AWS's recorded overlap of the two: provisioned concurrency stays within the
    function's reservation, and the reservation cannot drop below it."""
    name = deploy(lam, role, versions=2)
    overlap = "TestLambdaConcurrency::test_reserved_provisioned_overlap"
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
    put = lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=2
    )
    recorded = lambda_reference(overlap, "put_provisioned_5")
    assert set(put) == set(recorded)
    ready = wait_config(lam, name, "1", AllocatedProvisionedConcurrentExecutions=2)
    recorded = lambda_reference(overlap, "get_provisioned_postwait")
    assert {k: v for k, v in ready.items() if k not in ("LastModified", "ResponseMetadata")} == {
        k: v for k, v in recorded.items() if k not in ("LastModified", "ResponseMetadata")
    }
    got = error(lam.put_function_concurrency, FunctionName=name, ReservedConcurrentExecutions=1)
    recorded = lambda_reference(overlap, "reserved_lower_than_provisioned_exc")
    assert got["Error"] == recorded["Error"]
    assert set(got) == set(recorded)
    # All of the reservation is provisioned for version 1: $LATEST has nothing left.
    got = error(lam.invoke, FunctionName=name, Payload=b"{}")
    recorded = lambda_reference(overlap, "reserved_equals_provisioned_latest_invoke_exc")
    assert got["Error"] == recorded["Error"]
    assert got["Reason"] == recorded["Reason"]
    body, _ = invoke(lam, name, "1")
    assert body["init_type"] == "provisioned-concurrency"
    for qualifier, count, step in (
        ("2", 1, "reserved_equals_provisioned_another_provisioned_exc"),
        ("1", 3, "reserved_equals_provisioned_increase_provisioned_exc"),
    ):
        got = error(
            lam.put_provisioned_concurrency_config,
            FunctionName=name,
            Qualifier=qualifier,
            ProvisionedConcurrentExecutions=count,
        )
        recorded = lambda_reference(overlap, step)
        assert got["Error"] == recorded["Error"]
        assert set(got) == set(recorded)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 400


# -- environments ----------------------------------------------------------------------


def test_ready_before_the_first_invoke_with_no_init_duration(
    server: ServerProcess, lam: Any, role: str
) -> None:
    name = deploy(lam, role)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=2
    )
    ready = wait_config(lam, name, "1", AllocatedProvisionedConcurrentExecutions=2)
    assert ready["AvailableProvisionedConcurrentExecutions"] == 2
    assert "StatusReason" not in ready
    body, tail = invoke(lam, name, "1")
    assert body["init_type"] == "provisioned-concurrency"
    assert body["version"] == "1"
    report = report_line(tail)
    assert "Init Duration" not in report, report
    assert "INIT_START" not in tail  # logged ahead of time, not with this invocation
    # The environment's init was logged on its own, in its stream, before any START.
    wait_for(lambda: any(m.startswith("REPORT ") for m in messages(server, name)))
    lines = messages(server, name)
    assert lines[0].startswith("INIT_START"), lines
    # $LATEST is never provisioned: it starts on demand, with an Init Duration.
    latest = lam.invoke(FunctionName=name, Payload=b"{}", LogType="Tail")
    assert json.loads(latest["Payload"].read())["init_type"] == "on-demand"


def test_invokes_use_provisioned_first_then_spill_over(
    server: ServerProcess, lam: Any, role: str
) -> None:
    name = deploy(lam, role)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1
    )
    wait_config(lam, name, "1", AllocatedProvisionedConcurrentExecutions=1)
    gate = code_dir(server, lam, name, "1") / "go"
    clients = [server.client() for _ in range(2)]
    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(invoke, clients[0], name, "1", hold=True)
            wait_for(lambda: starts(server, name) == 1)  # the first holds the provisioned one
            second = pool.submit(invoke, clients[1], name, "1", hold=True)
            wait_for(lambda: starts(server, name) == 2)
            gate.touch()
            (held, held_tail), (spilled, spilled_tail) = first.result(), second.result()
    finally:
        gate.unlink(missing_ok=True)
        for client in clients:
            client.close()
    assert held["init_type"] == "provisioned-concurrency"
    assert "Init Duration" not in report_line(held_tail)
    assert spilled["init_type"] == "on-demand"
    assert "Init Duration" in report_line(spilled_tail)
    assert spilled["env"] != held["env"]
    # Free again, the provisioned environment is preferred over the warm on-demand one.
    for _ in range(3):
        body, _ = invoke(lam, name, "1")
        assert body["env"] == held["env"]
    # CloudWatch's ProvisionedConcurrencyInvocations / SpilloverInvocations, on /metrics.
    with urllib.request.urlopen(server.endpoint + "/metrics", timeout=10) as response:
        text = response.read().decode()
    labels = f'{{function="{name}",version="1"}}'
    assert f"lambda_provisioned_concurrency_invocations_total{labels} 4" in text
    assert f"lambda_provisioned_concurrency_spillover_invocations_total{labels} 1" in text
    assert f"lambda_provisioned_concurrency_utilization{labels} 0" in text


def starts(server: ServerProcess, name: str) -> int:
    return sum(m.startswith("START ") for m in messages(server, name))


def test_a_killed_provisioned_environment_is_replaced(lam: Any, role: str) -> None:
    name = deploy(lam, role)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1
    )
    wait_config(lam, name, "1", AllocatedProvisionedConcurrentExecutions=1)
    body, _ = invoke(lam, name, "1")
    killed = body["env"]
    os.kill(runtime_pid(killed), signal.SIGKILL)
    wait_for(lambda: not environment_pids(killed))

    def replaced() -> bool:
        config = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
        return bool(config["AllocatedProvisionedConcurrentExecutions"] == 1)

    wait_for(replaced)
    body, tail = invoke(lam, name, "1")
    assert body["env"] != killed
    assert body["init_type"] == "provisioned-concurrency"
    assert "Init Duration" not in report_line(tail)
    assert wait_config(lam, name, "1")["Status"] == "READY"


def test_an_init_failure_fails_the_config(lam: Any, role: str) -> None:
    name = deploy(lam, role, source="raise RuntimeError('no init')\ndef handler(e, c):\n    pass\n")
    put = lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1
    )
    assert put["Status"] == "IN_PROGRESS"
    failed = wait_config(lam, name, "1", status="FAILED")
    assert failed["StatusReason"] == "FUNCTION_ERROR_INIT_FAILURE"
    assert failed["AllocatedProvisionedConcurrentExecutions"] == 0
    assert failed["AvailableProvisionedConcurrentExecutions"] == 0


def test_the_config_follows_its_alias_to_another_version(lam: Any, role: str) -> None:
    name = deploy(lam, role, versions=2)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1
    )
    wait_config(lam, name, "live", AllocatedProvisionedConcurrentExecutions=1)
    before, _ = invoke(lam, name, "live")
    assert (before["version"], before["init_type"]) == ("1", "provisioned-concurrency")
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion="2")
    wait_for(
        lambda: bool(
            lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="live")
            and not environment_pids(before["env"])
        )
    )
    wait_config(lam, name, "live", AllocatedProvisionedConcurrentExecutions=1)
    after, _ = invoke(lam, name, "live")
    assert (after["version"], after["init_type"]) == ("2", "provisioned-concurrency")


def test_deleting_the_function_drops_its_environments(lam: Any, role: str) -> None:
    name = deploy(lam, role, versions=2)
    for version in ("1", "2"):
        lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1
        )
    for version in ("1", "2"):
        wait_config(lam, name, version, AllocatedProvisionedConcurrentExecutions=1)
    first, _ = invoke(lam, name, "1")
    second, _ = invoke(lam, name, "2")
    lam.delete_function(FunctionName=name, Qualifier="1")
    wait_for(lambda: not environment_pids(first["env"]))
    assert environment_pids(second["env"])
    lam.delete_function(FunctionName=name)
    wait_for(lambda: not environment_pids(second["env"]))


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"


def test_a_restart_provisions_again(restartable: Path, role: str) -> None:
    srv = start_server(restartable)
    try:
        lam = srv.client()
        name = deploy(lam, role)
        lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1
        )
        wait_config(lam, name, "1", AllocatedProvisionedConcurrentExecutions=1)
        before, _ = invoke(lam, name, "1")
        lam.close()
    finally:
        assert srv.stop() == 0, srv.log()
    assert not environment_pids(before["env"])
    srv = start_server(restartable)
    try:
        lam = srv.client()
        wait_config(lam, name, "1", AllocatedProvisionedConcurrentExecutions=1)
        after, tail = invoke(lam, name, "1")
        assert after["init_type"] == "provisioned-concurrency"
        assert after["env"] != before["env"]
        assert "Init Duration" not in report_line(tail)
        lam.close()
    finally:
        assert srv.stop() == 0, srv.log()
