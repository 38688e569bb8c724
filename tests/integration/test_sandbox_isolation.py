"""Real bubblewrap sandboxes with real cgroups: what function code can and cannot do.

Each test starts sandboxes running small Python scripts on this test run's own
interpreter (its prefix bound read-only at the same path) and checks from inside
and from the host. Needs root (cgroups, as the server runs); skipped only when
bubblewrap is not installed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lambdaplane.sandbox import BubblewrapSandbox, CgroupManager, CpuPolicy, SandboxSpec
from lambdaplane.sandbox.bubblewrap import RunningBubblewrap

BWRAP = shutil.which("bwrap")
pytestmark = pytest.mark.skipif(BWRAP is None, reason="bubblewrap (bwrap) is not installed")

PREFIX = Path(sys.base_prefix).resolve()
PYTHON = str(PREFIX / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}")
ENV = {"LANG": "C.UTF-8", "PATH": "/usr/bin:/bin", "LAMBDA_TASK_ROOT": "/var/task"}
TIMEOUT = 60.0


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.stdout.strip(), f"no output; stderr:\n{self.stderr}"
        return json.loads(self.stdout.strip().splitlines()[-1])


@dataclass
class Layout:
    """The host side: two functions' code, the server's data dir, the agent dir."""

    code_a: Path
    code_b: Path
    data_dir: Path
    agent_dir: Path


@pytest.fixture(scope="module")
def cgroups() -> CgroupManager:
    manager = CgroupManager.detect()
    assert manager is not None, "these tests run as root with cgroups, like the server"
    return manager


@pytest.fixture(scope="module")
def sandbox(cgroups: CgroupManager) -> BubblewrapSandbox:
    assert BWRAP is not None
    return BubblewrapSandbox(cgroups, bwrap=BWRAP)


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    code_a, code_b = tmp_path / "code-a", tmp_path / "code-b"
    data_dir, agent_dir = tmp_path / "data", tmp_path / "agent"
    for directory in (code_a, code_b, data_dir, agent_dir):
        directory.mkdir()
    (code_a / "handler_a.py").write_text("A = 1\n")
    (code_b / "handler_b.py").write_text("B = 2\n")
    (data_dir / "lambdaplane.db").write_text("secrets of every function\n")
    (agent_dir / "agent.py").write_text("")
    return Layout(code_a, code_b, data_dir, agent_dir)


SpecFactory = Callable[..., SandboxSpec]


@pytest.fixture
def make_spec(layout: Layout) -> SpecFactory:
    def make(script: str, **overrides: Any) -> SandboxSpec:
        env_id = f"t-{uuid.uuid4().hex[:16]}"
        values: dict[str, Any] = {
            "env_id": env_id,
            # the env id as sys.argv[1] marks every process of the sandbox on the host
            "argv": (PYTHON, "-I", "-S", "-c", textwrap.dedent(script), env_id),
            "env": ENV,
            "code_dir": layout.code_a,
            "runtime_dir": None,
            "agent_dir": layout.agent_dir,
            "host_ro_paths": (PREFIX,),
        }
        values.update(overrides)
        return SandboxSpec(**values)

    return make


async def _run(sandbox: BubblewrapSandbox, spec: SandboxSpec) -> tuple[Result, RunningBubblewrap]:
    running = await sandbox.start(spec)
    try:
        out, err = await asyncio.wait_for(running.process.communicate(), TIMEOUT)
    finally:
        await running.destroy()
    assert running.process.returncode is not None
    return Result(running.process.returncode, out.decode(), err.decode()), running


def run(sandbox: BubblewrapSandbox, spec: SandboxSpec) -> Result:
    return asyncio.run(_run(sandbox, spec))[0]


def host_pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


# -- identity and privileges ------------------------------------------------------------


def test_runs_as_the_sandbox_user_without_privileges(
    sandbox: BubblewrapSandbox, make_spec: SpecFactory
) -> None:
    result = run(
        sandbox,
        make_spec("""
            import json, os, pwd, socket
            status = dict(line.split(":", 1) for line in open("/proc/self/status"))
            print(json.dumps({
                "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
                "groups": os.getgroups(), "user": pwd.getpwuid(os.getuid()).pw_name,
                "status": {k: v.strip() for k, v in status.items()},
                "hostname": socket.gethostname(), "cwd": os.getcwd(),
            }))
        """),
    )
    info = result.json()
    assert (info["uid"], info["euid"], info["gid"]) == (993, 993, 990)
    assert info["user"] == "sbx_user1051"
    assert info["status"]["NoNewPrivs"] == "1"
    for caps in ("CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"):
        assert int(info["status"][caps], 16) == 0, caps
    assert info["status"]["Seccomp"] == "2"
    assert info["cwd"] == "/var/task"
    assert info["hostname"].startswith("t-")


def test_the_hostname_resolves_whatever_the_environment_id(
    sandbox: BubblewrapSandbox, make_spec: SpecFactory
) -> None:
    """An id whose first 12 characters are digits (one hex id in ~290) still gives a
    hostname that /etc/hosts resolves: glibc never looks a name of digits up."""
    script = """
        import json, socket
        name = socket.gethostname()
        print(json.dumps({"hostname": name, "resolves": socket.gethostbyname(name)}))
    """
    for env_id in ("123456789012abcd", "abc123456789abcd"):
        result, _ = asyncio.run(_run(sandbox, make_spec(script, env_id=env_id)))
        info = result.json()
        assert info["resolves"] == "127.0.0.1", info
        assert not info["hostname"].isdigit()


def test_environment_is_exactly_the_spec(
    sandbox: BubblewrapSandbox, make_spec: SpecFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDAPLANE_TEST_SECRET", "hunter2")
    result = run(
        sandbox,
        make_spec("""
            import json
            raw = open("/proc/self/environ", "rb").read().split(b"\\0")
            print(json.dumps(dict(e.decode().split("=", 1) for e in raw if e)))
        """),
    )
    # bwrap always exports PWD (= the spec's cwd), as a shell would; nothing else is added
    assert result.json() == {**ENV, "PWD": "/var/task"}
    assert "hunter2" not in result.stdout


# -- filesystem -------------------------------------------------------------------------


def test_sees_only_its_own_code_and_nothing_of_the_host(
    sandbox: BubblewrapSandbox, make_spec: SpecFactory, layout: Layout
) -> None:
    probes = {
        "shadow": "/etc/shadow",
        "root_bashrc": "/root/.bashrc",
        "home": "/home",
        "sys": "/sys",
        "code_b_file": str(layout.code_b / "handler_b.py"),
        "code_b": str(layout.code_b),
        "code_a_host_path": str(layout.code_a),
        "data_db": str(layout.data_dir / "lambdaplane.db"),
        "data_dir": str(layout.data_dir),
        "host_tmp": "/tmp/pytest-of-root",
    }
    result = run(
        sandbox,
        make_spec(f"""
            import json, os
            probes = {probes!r}
            readable = {{}}
            for name, path in probes.items():
                try:
                    if os.path.isdir(path):
                        os.listdir(path)
                    else:
                        open(path, "rb").read(1)
                    readable[name] = True
                except OSError:
                    readable[name] = False
            print(json.dumps({{
                "readable": readable,
                "task": sorted(os.listdir("/var/task")),
                "root": sorted(os.listdir("/")),
                "etc": sorted(os.listdir("/etc")),
                "slash_root": sorted(os.listdir("/root")) if os.path.exists("/root") else None,
                "versions": sorted(os.listdir({str(PREFIX.parent)!r})),
                "opt": os.listdir("/opt"), "runtime": os.listdir("/var/runtime"),
                "tz": os.readlink("/etc/localtime"),
            }}))
        """),
    )
    info = result.json()
    assert not any(info["readable"].values()), info["readable"]
    assert info["task"] == ["handler_a.py"]
    top = {"bin", "dev", "etc", "lib", "lib64", "opt", "proc", "sbin", "tmp", "usr", "var"}
    assert info["root"] == sorted(top | {PREFIX.parts[1]})
    assert set(info["etc"]) <= {"group", "hosts", "localtime", "nsswitch.conf", "passwd", "ssl"}
    assert info["opt"] == [] and info["runtime"] == []
    assert info["tz"].endswith("/UTC")
    # of /root, only the path down to the bound interpreter prefix exists
    if PREFIX.is_relative_to("/root"):
        assert info["slash_root"] == [PREFIX.parts[2]]
    else:
        assert info["slash_root"] is None
    assert info["versions"] == [PREFIX.name]


def test_everything_but_tmp_is_read_only(
    sandbox: BubblewrapSandbox, make_spec: SpecFactory
) -> None:
    targets = [
        "/x", "/var/task/x", "/var/task/handler_a.py", "/usr/x", "/opt/x", "/etc/passwd",
        "/etc/x", "/var/runtime/x", "/var/lambdaplane/x", "/dev/x", "/dev/shm/x",
        "/proc/sys/vm/drop_caches", "/proc/sys/kernel/core_pattern", PYTHON,
    ]  # fmt: skip
    result = run(
        sandbox,
        make_spec(f"""
            import json
            outcome = {{}}
            for path in {targets!r}:
                try:
                    with open(path, "a") as f:
                        f.write("x")
                    outcome[path] = "written"
                except OSError as exc:
                    outcome[path] = exc.errno
            with open("/tmp/ok", "w") as f:
                f.write("fine")
            outcome["/tmp/ok"] = open("/tmp/ok").read()
            print(json.dumps(outcome))
        """),
    )
    outcome = result.json()
    assert outcome.pop("/tmp/ok") == "fine"
    assert not [path for path, value in outcome.items() if value == "written"], outcome


def test_tmp_is_limited_to_tmp_mb(
    sandbox: BubblewrapSandbox, make_spec: SpecFactory, tmp_path: Path
) -> None:
    marker = f"fill-{uuid.uuid4().hex}"
    result = run(
        sandbox,
        make_spec(
            f"""
            import json
            written, error = 0, None
            try:
                with open("/tmp/{marker}", "wb") as f:
                    for _ in range(32):
                        f.write(b"x" * (1024 * 1024))
                        f.flush()
                        written += 1
            except OSError as exc:
                error = exc.errno
            print(json.dumps({{"written_mb": written, "errno": error}}))
            """,
            tmp_mb=8,
        ),
    )
    info = result.json()
    assert info["errno"] == 28  # ENOSPC
    assert info["written_mb"] <= 8
    assert not Path("/tmp", marker).exists()


# -- processes --------------------------------------------------------------------------


def test_host_processes_are_invisible(sandbox: BubblewrapSandbox, make_spec: SpecFactory) -> None:
    result = run(
        sandbox,
        make_spec("""
            import json, os
            pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
            cmds = [open(f"/proc/{p}/cmdline", "rb").read().decode(errors="replace") for p in pids]
            print(json.dumps({"pids": pids, "cmds": cmds, "me": os.getpid()}))
        """),
    )
    info = result.json()
    assert len(info["pids"]) <= 2, info  # bwrap's init and this script
    assert info["me"] <= 2
    assert not any("pytest" in cmd for cmd in info["cmds"])


def test_fork_bomb_stops_at_pids_max_and_host_is_fine(
    sandbox: BubblewrapSandbox, make_spec: SpecFactory
) -> None:
    spec = make_spec(
        """
        import json, os, time
        children, error = 0, None
        while children < 10000:
            try:
                pid = os.fork()
            except OSError as exc:
                error = exc.errno
                break
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            children += 1
        print(json.dumps({"children": children, "errno": error}), flush=True)
        """,
        pids_max=32,
    )
    result = run(sandbox, spec)
    info = result.json()
    assert info["errno"] == 11  # EAGAIN
    assert 20 <= info["children"] < 32  # bwrap, its init and the script count too
    host = subprocess.run(["/bin/true"], check=False, timeout=10)
    assert host.returncode == 0


def test_memory_over_the_limit_is_oom_killed(
    sandbox: BubblewrapSandbox, make_spec: SpecFactory
) -> None:
    spec = make_spec(
        """
        import sys
        hoard = []
        for i in range(64):
            hoard.append(b"x" * (8 * 1024 * 1024))
            print(i, flush=True)
        print("survived", flush=True)
        """,
        memory_mb=128,
    )
    result, running = asyncio.run(_run(sandbox, spec))
    assert "survived" not in result.stdout
    # bwrap's pid 1 reports a child killed by signal N as exit status 128 + N
    assert result.returncode in (128 + 9, -9), result
    assert running.oom_killed()


def test_memory_peak_is_measured_and_resettable(
    sandbox: BubblewrapSandbox, make_spec: SpecFactory
) -> None:
    spec = make_spec(
        """
        import time
        hoard = b"x" * (64 * 1024 * 1024)
        del hoard
        print("freed", flush=True)
        time.sleep(60)
        """,
        memory_mb=256,
    )

    async def scenario() -> tuple[int | None, int | None, bool]:
        running = await sandbox.start(spec)
        try:
            assert running.process.stdout is not None
            assert await asyncio.wait_for(running.process.stdout.readline(), TIMEOUT) == b"freed\n"
            peak = running.memory_peak_bytes()
            reset = running.memory_reset_peak()
            return peak, running.memory_peak_bytes(), reset
        finally:
            await running.destroy()

    peak, after_reset, reset = asyncio.run(scenario())
    assert peak is not None and peak >= 64 * 1024 * 1024
    assert reset
    assert after_reset is not None and after_reset < 48 * 1024 * 1024


def test_cpu_limit_follows_the_policy(
    sandbox: BubblewrapSandbox, make_spec: SpecFactory, cgroups: CgroupManager
) -> None:
    async def cpu_files(policy: CpuPolicy) -> dict[str, str]:
        running = await sandbox.start(
            make_spec("import time; time.sleep(60)", memory_mb=128, cpu=policy)
        )
        try:
            assert running.cgroup is not None
            files = {}
            for directory in running.cgroup.directories:
                for name in ("cpu.shares", "cpu.cfs_quota_us", "cpu.weight", "cpu.max"):
                    if (directory / name).exists():
                        files[name] = (directory / name).read_text().strip()
            return files
        finally:
            await running.destroy()

    shares = asyncio.run(cpu_files(CpuPolicy("shares")))
    quota = asyncio.run(cpu_files(CpuPolicy("quota")))
    if cgroups.version == 1:
        assert shares["cpu.shares"] == "74" and shares["cpu.cfs_quota_us"] == "-1"
        assert quota["cpu.cfs_quota_us"] == "7236"
    else:
        assert shares["cpu.weight"] == "7" and shares["cpu.max"].startswith("max")
        assert quota["cpu.max"] == "7236 100000"


def test_every_process_is_in_the_environments_cgroups_from_the_start(
    sandbox: BubblewrapSandbox, make_spec: SpecFactory
) -> None:
    """bwrap is started without forking the server (vfork, then a shell joins the cgroups
    and execs bwrap): bwrap itself and everything under it are in the environment's
    cgroups, and the shell is gone (bwrap has its pid)."""

    async def check() -> None:
        spec = make_spec("import time; print('up', flush=True); time.sleep(60)")
        running = await sandbox.start(spec)
        try:
            assert running.process.stdout is not None
            line = await asyncio.wait_for(running.process.stdout.readline(), TIMEOUT)
            assert line == b"up\n"
            assert running.cgroup is not None
            wanted = {d.parent.parent.name: d for d in running.cgroup.directories}
            pids = [running.pid]
            for pid in pids:  # bwrap and all its descendants
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                pids += [int(c) for c in children]
            assert len(pids) >= 3  # bwrap, the sandbox's pid 1, the script
            assert Path(f"/proc/{running.pid}/comm").read_text().strip() == "bwrap"
            for pid in pids:
                lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
                paths = [line.split(":", 2)[2] for line in lines]
                for directory in wanted.values():
                    assert any(str(directory).endswith(path) and path != "/" for path in paths), (
                        pid,
                        lines,
                        directory,
                    )
        finally:
            await running.destroy()

    asyncio.run(check())


# -- destroy ----------------------------------------------------------------------------

DAEMON = """
    import os, sys, time
    child = os.fork()
    if child == 0:
        os.setsid()
        if os.fork() == 0:
            os.close(1); os.close(2)
            time.sleep(600)
        os._exit(0)
    os.waitpid(child, 0)  # the daemon exists once its parent has exited
    print("ready", flush=True)
    time.sleep(600)
"""


def processes_with(needle: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if needle.encode() in cmdline and host_pid_alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def test_destroy_kills_everything_including_a_double_forked_daemon(
    sandbox: BubblewrapSandbox, make_spec: SpecFactory
) -> None:
    spec = make_spec(DAEMON)

    async def scenario() -> tuple[list[int], list[int], RunningBubblewrap]:
        running = await sandbox.start(spec)
        try:
            assert running.process.stdout is not None
            line = await asyncio.wait_for(running.process.stdout.readline(), TIMEOUT)
            assert line == b"ready\n"
            assert running.cgroup is not None
            in_cgroup, on_host = running.cgroup.pids(), processes_with(spec.env_id)
        finally:
            await running.destroy()
        await running.destroy()  # idempotent
        return in_cgroup, on_host, running

    in_cgroup, on_host, running = asyncio.run(scenario())
    # bwrap, its init, the script, the daemon
    assert len(in_cgroup) == 4, in_cgroup
    assert sorted(on_host) == in_cgroup
    assert not processes_with(spec.env_id), "destroy() returned with processes alive"
    assert running.cgroup is not None
    assert not [d for d in running.cgroup.directories if d.exists()]


def test_destroy_without_cgroups_still_kills_the_daemon(make_spec: SpecFactory) -> None:
    assert BWRAP is not None
    bare = BubblewrapSandbox(None, bwrap=BWRAP)
    spec = make_spec(DAEMON)

    async def scenario() -> tuple[list[int], int | None, bool]:
        running = await bare.start(spec)
        try:
            assert running.process.stdout is not None
            line = await asyncio.wait_for(running.process.stdout.readline(), TIMEOUT)
            assert line == b"ready\n"
            return processes_with(spec.env_id), running.memory_peak_bytes(), running.oom_killed()
        finally:
            await running.destroy()

    on_host, peak, oom = asyncio.run(scenario())
    assert len(on_host) == 4, on_host  # bwrap, its init, the script, the daemon
    assert peak is None and not oom
    for _ in range(100):  # the kernel tears the pid namespace down asynchronously
        if not processes_with(spec.env_id):
            break
        time.sleep(0.01)
    assert not processes_with(spec.env_id)


# -- network ----------------------------------------------------------------------------


@pytest.fixture
def host_server() -> Iterator[int]:
    """A TCP listener on the host's loopback (connections queue in its backlog)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


CONNECT = """
    import json, socket
    outcome = {{}}
    for port in {ports!r}:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=3).close()
            outcome[port] = "connected"
        except OSError as exc:
            outcome[port] = exc.errno or str(exc)
    print(json.dumps({{"outcome": outcome, "ifaces": [n for _, n in socket.if_nameindex()]}}))
"""


def test_no_network_by_default(
    sandbox: BubblewrapSandbox, make_spec: SpecFactory, host_server: int
) -> None:
    result = run(sandbox, make_spec(CONNECT.format(ports=[host_server, 5432])))
    info = result.json()
    assert info["ifaces"] == ["lo"]
    assert info["outcome"] == {str(host_server): 111, "5432": 111}  # ECONNREFUSED


def test_network_when_asked_reaches_the_host(
    sandbox: BubblewrapSandbox, make_spec: SpecFactory, host_server: int
) -> None:
    # the control for the test above: the same probe connects when the netns is shared
    result = run(sandbox, make_spec(CONNECT.format(ports=[host_server]), network=True))
    assert result.json()["outcome"] == {str(host_server): "connected"}


# -- seccomp ----------------------------------------------------------------------------


def test_dangerous_syscalls_fail_with_eperm_and_ordinary_ones_work(
    sandbox: BubblewrapSandbox, make_spec: SpecFactory
) -> None:
    result = run(
        sandbox,
        make_spec("""
            import ctypes, json, platform, subprocess, threading
            libc = ctypes.CDLL(None, use_errno=True)
            nr = {
                "x86_64": {"mount": 165, "unshare": 272, "keyctl": 250, "setns": 308,
                           "bpf": 321, "ptrace": 101, "getpid": 39},
                "aarch64": {"mount": 40, "unshare": 97, "keyctl": 219, "setns": 268,
                            "bpf": 280, "ptrace": 117, "getpid": 172},
            }[platform.machine()]
            def call(number, *args):
                ctypes.set_errno(0)
                ret = libc.syscall(number, *args)
                return ret, ctypes.get_errno()
            src = ctypes.c_char_p(b"none")
            outcome = {
                "mount": call(nr["mount"], src, ctypes.c_char_p(b"/tmp"), ctypes.c_char_p(b"tmpfs"), 0, None),
                "unshare_user": call(nr["unshare"], 0x10000000),
                "unshare_net": call(nr["unshare"], 0x40000000),
                "keyctl": call(nr["keyctl"], 0, -3, 0),
                "setns": call(nr["setns"], 0, 0),
                "bpf": call(nr["bpf"], 0, None, 0),
                "ptrace": call(nr["ptrace"], 0, 0, 0, 0),
            }
            if platform.machine() == "x86_64":
                outcome["x32_getpid"] = call(0x40000000 | nr["getpid"])
            box = []
            thread = threading.Thread(target=lambda: box.append("thread ran"))
            thread.start(); thread.join()
            child = subprocess.run(["/bin/echo", "child ran"], capture_output=True, text=True)
            print(json.dumps({"denied": outcome, "thread": box, "child": child.stdout.strip()}))
        """),
    )
    info = result.json()
    for name, (ret, err) in info["denied"].items():
        assert (ret, err) == (-1, 1), f"{name} returned {ret} errno {err}"  # EPERM
    assert info["thread"] == ["thread ran"]  # clone3 -> ENOSYS, glibc falls back to clone
    assert info["child"] == "child ran"


# -- start time (printed, not asserted: budgets live in bench/) ---------------------------


def test_report_start_time(
    sandbox: BubblewrapSandbox, make_spec: SpecFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    async def first_line(argv: tuple[str, ...]) -> float:
        spec = make_spec("", argv=argv)
        started = time.perf_counter()
        running = await sandbox.start(spec)
        try:
            assert running.process.stdout is not None
            line = await asyncio.wait_for(running.process.stdout.readline(), TIMEOUT)
            elapsed = time.perf_counter() - started
            assert line == b"1\n"
            await running.process.wait()
        finally:
            await running.destroy()
        return elapsed * 1000

    async def measure() -> dict[str, float]:
        figures = {}
        for label, argv in (
            ("python -c 'print(1)'", (PYTHON, "-c", "print(1)")),
            ("python -I -S -c 'print(1)'", (PYTHON, "-I", "-S", "-c", "print(1)")),
        ):
            figures[label] = statistics.median([await first_line(argv) for _ in range(7)])
        return figures

    figures = asyncio.run(measure())
    with capsys.disabled():
        for label, ms in figures.items():
            print(f"\nsandbox start, spawn -> first line of {label}: {ms:.1f} ms (median of 7)")
