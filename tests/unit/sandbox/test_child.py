"""How a sandbox's first process is started: the command line, and a real child."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from lambdaplane.sandbox.child import SETPRIV, SH, ChildProcess, command_line


def test_without_cgroups_or_uid_the_command_runs_as_is() -> None:
    assert command_line(["/usr/bin/bwrap", "--args", "3"]) == ["/usr/bin/bwrap", "--args", "3"]


def test_cgroups_are_joined_by_a_shell_that_then_becomes_the_command() -> None:
    line = command_line(["bwrap", "x"], ["/cg/memory/e/cgroup.procs", "/cg/pids/e/cgroup.procs"])
    assert line[:2] == [SH, "-c"]
    assert line[3:] == [
        "lambdaplane-join", "/cg/memory/e/cgroup.procs", "/cg/pids/e/cgroup.procs", "--",
        "bwrap", "x",
    ]  # fmt: skip


def test_run_as_goes_through_setpriv_after_the_joins() -> None:
    line = command_line(["bwrap"], ["/cg/p"], run_as=65534)
    assert line[line.index("--") + 1 :] == [
        SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups", "bwrap",
    ]  # fmt: skip


def test_a_real_child_joins_its_files_then_execs(tmp_path: Path) -> None:
    """The shell writes its pid (the command's, after exec) into each file before the
    command runs; output, exit status and signals work as on asyncio's Process."""
    procs = [tmp_path / "a", tmp_path / "b"]

    async def run() -> None:
        child = await ChildProcess.start(
            ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"],
            cgroup_procs=[str(p) for p in procs],
        )
        out, err = await child.communicate()
        assert (out, err, child.returncode) == (b"out\n", b"err\n", 3)
        assert [p.read_text().strip() for p in procs] == [str(child.pid)] * 2
        child.close()

        sleeper = await ChildProcess.start(["/bin/sleep", "60"])
        assert os.getsid(sleeper.pid) == sleeper.pid  # a session of its own
        sleeper.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(sleeper.wait(), 10) == -signal.SIGTERM
        sleeper.close()

        refused = await ChildProcess.start(["/bin/true"], cgroup_procs=[str(tmp_path / "no/such")])
        assert await asyncio.wait_for(refused.wait(), 10) == 126  # never ran outside its cgroups
        refused.close()

    asyncio.run(run())
