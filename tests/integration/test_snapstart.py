"""SnapStart through boto3: AWS's recorded steps and errors, and restores from a template:
fresh randomness per environment, the runtime hooks, the init type, REPORT's Restore
Duration, and a private /tmp for each of two environments alive at once."""

from __future__ import annotations

import base64
import json
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdaplane.testing import make_zip, start_server
from tests.integration.helpers import reference, unique_name, wait_settled
from tests.integration.test_versions import wait_version_active

RECORDED = "TestLambdaSnapStart::test_snapstart_update_function_configuration[python3.12]"
EXCEPTIONS = "TestLambdaSnapStart::test_snapstart_exceptions"
RUNTIME = "python3.12"

# Draws randomness at init and per invocation, refreshes one value in an after-restore
# hook, counts the hooks in files only the template (before) or the environment (after)
# can see, and with {"hold": ...} waits until the test creates that file in /var/task.
FUNCTION = """
import os, random, socket, time
from snapshot_restore_py import register_after_restore, register_before_snapshot

AT_INIT = random.random()
refreshed = {"value": random.random()}
calls = {"before": 0, "after": 0}

@register_before_snapshot
def before():
    calls["before"] += 1

@register_after_restore
def after():
    calls["after"] += 1
    refreshed["value"] = random.random()

def handler(event, context):
    if event.get("write"):
        with open("/tmp/" + event["write"], "w") as f:
            f.write("x")
    if event.get("hold"):
        deadline = time.monotonic() + 20
        while not os.path.exists("/var/task/" + event["hold"]) and time.monotonic() < deadline:
            time.sleep(0.01)
    return {
        "at_init": AT_INIT,
        "refreshed": refreshed["value"],
        "now": random.random(),
        "calls": calls,
        "init_type": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"],
        "tmp": sorted(os.listdir("/tmp")),
        "pid": os.getpid(),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "hostname": socket.gethostname(),
        "resolves": socket.gethostbyname(socket.gethostname()),
        "log_stream_variable": os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME"),
    }
"""


def create(lam: Any, role: str, source: str = FUNCTION, **extra: Any) -> str:
    name = unique_name("snap")
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=role,
        Handler="handler.handler",
        Timeout=30,
        Code={"ZipFile": make_zip({"handler.py": textwrap.dedent(source)})},
        **extra,
    )
    wait_settled(lam, name)
    return name


def invoke(lam: Any, name: str, qualifier: str, **payload: Any) -> tuple[dict[str, Any], str]:
    response = lam.invoke(
        FunctionName=name, Qualifier=qualifier, Payload=json.dumps(payload), LogType="Tail"
    )
    tail = base64.b64decode(response["LogResult"]).decode()
    return json.loads(response["Payload"].read()), tail


def report(tail: str) -> str:
    return next(line for line in tail.splitlines() if line.startswith("REPORT "))


def error(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response


def test_recorded_update_function_configuration(lam: Any, role: str) -> None:
    name = create(lam, role)
    created = lam.get_function_configuration(FunctionName=name)
    recorded = reference(RECORDED, "create_function_response")
    assert created["SnapStart"] == recorded["SnapStart"]
    updated = lam.update_function_configuration(
        FunctionName=name, SnapStart={"ApplyOn": "PublishedVersions"}
    )
    recorded = reference(RECORDED, "update_function_response")
    assert updated["SnapStart"] == recorded["SnapStart"]  # $LATEST: Off
    assert updated["LastUpdateStatus"] == recorded["LastUpdateStatus"]
    assert set(updated) == set(recorded)


def test_published_version_is_optimized(lam: Any, role: str) -> None:
    name = create(lam, role, SnapStart={"ApplyOn": "PublishedVersions"})
    assert lam.get_function_configuration(FunctionName=name)["SnapStart"] == {
        "ApplyOn": "PublishedVersions",
        "OptimizationStatus": "Off",
    }
    published = lam.publish_version(FunctionName=name)
    version = published["Version"]
    # As on AWS, the version is Pending while its init phase runs and the snapshot is made.
    assert published["State"] == "Pending"
    assert published["StateReasonCode"] == "Creating"
    assert published["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
    wait_version_active(lam, name, version)
    got = lam.get_function(FunctionName=name, Qualifier=version)["Configuration"]
    assert got["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
    # Publishing again without a change returns the same version.
    assert lam.publish_version(FunctionName=name)["Version"] == version


def test_bad_input(lam: Any, role: str) -> None:
    got = error(
        lam.create_function,
        FunctionName=unique_name("snap"),
        Runtime=RUNTIME,
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": "def handler(e, c): return 1\n"})},
        SnapStart={"ApplyOn": "invalidOption"},
    )
    recorded = reference(EXCEPTIONS, "create_function_invalid_snapstart_apply")
    assert got["Error"]["Code"] == recorded["Error"]["Code"]
    assert got["Error"]["Message"] == recorded["Error"]["Message"]
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 400
    # A runtime without SnapStart (AWS's wording, not in the recordings).
    got = error(
        lam.create_function,
        FunctionName=unique_name("snap"),
        Runtime="python3.11",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": "def handler(e, c): return 1\n"})},
        SnapStart={"ApplyOn": "PublishedVersions"},
    )
    assert got["Error"]["Code"] == "InvalidParameterValueException"
    assert got["Error"]["Message"] == (
        "python3.11 is not supported for SnapStart enabled functions."
    )
    name = create(lam, role)
    got = error(lam.update_function_configuration, FunctionName=name, Runtime="nodejs20.x",
                Handler="index.handler", SnapStart={"ApplyOn": "PublishedVersions"})  # fmt: skip
    assert got["Error"]["Message"] == "nodejs20.x is not supported for SnapStart enabled functions."


def test_restores(lam: Any, role: str, server: Any) -> None:
    name = create(lam, role, SnapStart={"ApplyOn": "PublishedVersions"})
    version = lam.publish_version(FunctionName=name)["Version"]
    wait_version_active(lam, name, version)

    first, tail = invoke(lam, name, version, write="one")
    assert first["init_type"] == "snap-start"
    assert first["calls"] == {"before": 1, "after": 1}
    assert first["log_stream_variable"] is None  # AWS: not available with SnapStart
    line = report(tail)
    assert "\tRestore Duration: " in line and "\tBilled Restore Duration: " in line
    assert "Init Duration" not in line
    assert first["pid"] == 2 and first["pids"] == [1, 2]  # its own pid namespace
    assert first["tmp"] == ["one"]
    second_warm, tail = invoke(lam, name, version)
    assert "Restore Duration" not in report(tail)  # only an environment's first REPORT
    assert second_warm["tmp"] == ["one"]


def test_concurrent_restores_are_separate(lam: Any, role: str, server: Any) -> None:
    source = textwrap.dedent(FUNCTION)
    name = create(lam, role, source, SnapStart={"ApplyOn": "PublishedVersions"})
    version = lam.publish_version(FunctionName=name)["Version"]
    wait_version_active(lam, name, version)
    code_dir = server.data_dir / "code" / "unpacked"
    flag = f"go-{name}"

    def held(tag: str) -> dict[str, Any]:
        return invoke(lam, name, version, write=tag, hold=flag)[0]

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(held, tag) for tag in ("a", "b")]

        # Both handlers wait for the flag: release them once two environments run them
        # (a spare restored ahead of demand has run no handler, so it wrote no file).
        def holding() -> list[int]:
            return [
                pid
                for pid in restored_runtimes(name)
                if any(Path(f"/proc/{pid}/root/tmp", tag).exists() for tag in ("a", "b"))
            ]

        wait_for(lambda: len(holding()) == 2)
        # Each in a memory cgroup of its own, limited to the function's MemorySize.
        groups = {memory_cgroup(pid) for pid in holding()}
        assert len(groups) == 2
        for group in groups:
            limit = Path("/sys/fs/cgroup/memory", group.lstrip("/"), "memory.limit_in_bytes")
            if limit.parent.is_dir():  # cgroup v1 (this machine); v2 has no such file
                assert int(limit.read_text()) == 128 * 1024 * 1024
        for directory in code_dir.iterdir():
            (directory / flag).write_text("")
        a, b = (f.result(timeout=60) for f in futures)
    assert a["hostname"] != b["hostname"]  # its own uts namespace, named after it
    assert a["resolves"] == b["resolves"] == "127.0.0.1"  # and /etc/hosts names it
    assert a["tmp"] == ["a"] and b["tmp"] == ["b"]  # a private /tmp each
    assert a["pids"] == b["pids"] == [1, 2]  # a pid namespace each
    assert a["at_init"] == b["at_init"]  # drawn at init: in the snapshot, as on AWS
    assert a["refreshed"] != b["refreshed"]  # refreshed by the after-restore hook
    assert a["now"] != b["now"]  # random is reseeded in each environment
    assert a["calls"] == b["calls"] == {"before": 1, "after": 1}


def restored_runtimes(name: str) -> list[int]:
    """Host pids of the function's restored runtimes: pid 2 two namespaces down."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        nspid = next(
            (line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), []
        )
        if (
            len(nspid) == 3
            and nspid[-1] == "2"
            and f"AWS_LAMBDA_FUNCTION_NAME={name}".encode() in environ
        ):
            found.append(int(entry.name))
    return found


def template_status(name: str) -> dict[str, str]:
    """/proc/<pid>/status of the function's template (its runtime, one namespace down)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes()
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(
            (key, value.strip())
            for key, value in (line.split(":", 1) for line in status.splitlines())
        )
        depth = len(fields.get("NSpid", "").split())  # restored ones are a level further
        if (
            b"--template" in cmdline
            and f"AWS_LAMBDA_FUNCTION_NAME={name}".encode() in environ
            and depth == 2
        ):
            return fields
    raise AssertionError(f"no template for {name}")


def memory_cgroup(pid: int) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        number, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(",") or (number == "0" and controllers == ""):
            return path
    raise AssertionError(f"no memory cgroup for {pid}")


def wait_for(predicate: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_failed_init_fails_the_version(lam: Any, role: str) -> None:
    source = "import no_such_module\n\ndef handler(event, context):\n    return 1\n"
    name = create(lam, role, source, SnapStart={"ApplyOn": "PublishedVersions"})
    version = lam.publish_version(FunctionName=name)["Version"]
    deadline = time.monotonic() + 60
    while True:
        got = lam.get_function_configuration(FunctionName=name, Qualifier=version)
        if got["State"] != "Pending" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert got["State"] == "Failed"
    assert got["StateReasonCode"] == "FunctionError"
    assert got["StateReason"].startswith("Runtime.ImportModuleError: Unable to import module")
    answer = error(lam.invoke, FunctionName=name, Qualifier=version, Payload=b"{}")
    assert answer["Error"]["Code"] == "ResourceConflictException"
    assert answer["Error"]["Message"].endswith("in the following state: Failed")


# What a restored environment may do: nothing more than an ordinary one.
PROBE = """
import ctypes, os, socket

def handler(event, context):
    libc = ctypes.CDLL(None, use_errno=True)
    status = dict(
        line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line
    )
    unshare = libc.unshare(0x10000000)  # CLONE_NEWUSER
    unshare_errno = ctypes.get_errno()
    mount = libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)
    mount_errno = ctypes.get_errno()
    try:
        open("/usr/lambdaplane-probe", "w")
        usr = "writable"
    except OSError as exc:
        usr = exc.strerror
    return {
        "caps": [status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")],
        "seccomp": status["Seccomp"].strip(),
        "no_new_privs": status["NoNewPrivs"].strip(),
        "uid": os.getuid(),
        "unshare": [unshare, os.strerror(unshare_errno)],
        "mount": [mount, os.strerror(mount_errno)],
        "usr": usr,
        "uid_map": open("/proc/self/uid_map").read().split(),
        "interfaces": [name for _, name in socket.if_nameindex()],
        "cgroup": open("/proc/self/cgroup").read().splitlines()[0].split(":")[-1],
    }
"""


def test_a_restored_environment_has_no_more_power(lam: Any, role: str) -> None:
    name = create(lam, role, PROBE, SnapStart={"ApplyOn": "PublishedVersions"})
    version = lam.publish_version(FunctionName=name)["Version"]
    wait_version_active(lam, name, version)
    got, _ = invoke(lam, name, version)
    assert got["caps"] == ["0000000000000000"] * 5
    assert got["seccomp"] == "2" and got["no_new_privs"] == "1"
    assert got["uid"] == 993 and got["uid_map"] == ["993", "993", "1"]
    assert got["unshare"] == [-1, "Operation not permitted"]
    assert got["mount"] == [-1, "Operation not permitted"]
    assert got["usr"] == "Read-only file system"
    assert got["interfaces"] == ["lo"]  # a network namespace of its own
    assert got["cgroup"] == "/"  # a cgroup namespace rooted at its own cgroup
    # On the host, the runtime runs as an unprivileged uid, not as root.
    pids = restored_runtimes(name)
    assert pids
    for pid in pids:
        uids = next(
            line.split()[1:]
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("Uid:")
        )
        assert "0" not in uids, uids
    # The template too: an unprivileged uid, no capabilities, a seccomp filter.
    template = template_status(name)
    assert "0" not in template["Uid"].split(), template["Uid"]
    assert template["CapEff"] == "0000000000000000" and template["Seccomp"] == "2"


def test_a_failing_after_restore_hook_fails_the_invocation(lam: Any, role: str) -> None:
    source = """
from snapshot_restore_py import register_after_restore

@register_after_restore
def broken():
    raise RuntimeError("cannot reconnect")

def handler(event, context):
    return "never"
"""
    name = create(lam, role, source, SnapStart={"ApplyOn": "PublishedVersions"})
    version = lam.publish_version(FunctionName=name)["Version"]
    wait_version_active(lam, name, version)  # the init phase itself succeeded
    response = lam.invoke(FunctionName=name, Qualifier=version, Payload=b"{}", LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    body = json.loads(response["Payload"].read())
    assert body["errorType"] == "RuntimeError" and body["errorMessage"] == "cannot reconnect"
    assert "Error Type: Runtime.AfterRestoreError" in report(
        base64.b64decode(response["LogResult"]).decode()
    )


def test_json_logs_have_the_restore_records(lam: Any, role: str) -> None:
    name = create(
        lam,
        role,
        SnapStart={"ApplyOn": "PublishedVersions"},
        LoggingConfig={"LogFormat": "JSON", "SystemLogLevel": "INFO"},
    )
    version = lam.publish_version(FunctionName=name)["Version"]
    wait_version_active(lam, name, version)
    _, tail = invoke(lam, name, version)
    records = [json.loads(line) for line in tail.splitlines() if line.startswith("{")]
    kinds = [r["type"] for r in records]
    assert kinds[:2] == ["platform.restoreStart", "platform.restoreReport"], kinds
    report_record = next(r for r in records if r["type"] == "platform.report")
    metrics = report_record["record"]["metrics"]
    assert metrics["restoreDurationMs"] > 0 and metrics["billedRestoreDurationMs"] >= 1
    assert "initDurationMs" not in metrics


def test_after_a_restart_the_snapshot_is_made_again(tmp_path: Path, role: str) -> None:
    data = tmp_path / "data"
    srv = start_server(data)
    try:
        lam = srv.client()
        name = create(lam, role, SnapStart={"ApplyOn": "PublishedVersions"})
        version = lam.publish_version(FunctionName=name)["Version"]
        wait_version_active(lam, name, version)
        before, _ = invoke(lam, name, version)
    finally:
        assert srv.stop() == 0, srv.log()
    srv = start_server(data)
    try:
        lam = srv.client()
        after, tail = invoke(lam, name, version)  # the template is made on this cold start
        assert after["init_type"] == "snap-start"
        assert after["calls"] == {"before": 1, "after": 1}
        assert after["at_init"] != before["at_init"]  # a new init phase ran
        assert "\tRestore Duration: " in report(tail)
    finally:
        assert srv.stop() == 0, srv.log()


def test_deleting_the_function_ends_its_template(lam: Any, role: str) -> None:
    """A template outlives no version: once the function is gone, so is its process."""
    name = create(lam, role, PROBE, SnapStart={"ApplyOn": "PublishedVersions"})
    version = lam.publish_version(FunctionName=name)["Version"]
    wait_version_active(lam, name, version)
    invoke(lam, name, version)
    assert template_status(name)
    lam.delete_function(FunctionName=name)
    deadline = time.monotonic() + 30  # templates are checked against the store every 10 s
    while True:
        try:
            template_status(name)
        except AssertionError:
            break
        assert time.monotonic() < deadline, "the deleted function's template still runs"
        time.sleep(0.5)
