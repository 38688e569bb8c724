"""cgroup values from memory, and v1/v2 handling against fake hierarchies in tmp_path."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from lambdaplane.sandbox.cgroups import (
    CgroupManager,
    ResourceLimits,
    cpu_quota_us,
    cpu_shares,
    cpu_weight,
    v1_settings,
    v2_settings,
)
from lambdaplane.sandbox.spec import CpuPolicy

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("memory_mb", "shares", "weight", "quota"),
    [
        (128, 74, 7, 7236),
        (1769, 1024, 100, 100_000),
        (3538, 2048, 200, 200_000),
        (10240, 5928, 579, 578_858),
    ],
)
def test_cpu_follows_memory(memory_mb: int, shares: int, weight: int, quota: int) -> None:
    assert cpu_shares(memory_mb) == shares
    assert cpu_weight(memory_mb) == weight
    assert cpu_quota_us(memory_mb) == quota


def test_cpu_values_have_floors() -> None:
    assert cpu_shares(1) == 2
    assert cpu_weight(1) == 1
    assert cpu_quota_us(1) == 1000
    assert cpu_weight(10**7) == 10_000


def test_v1_settings() -> None:
    shares = v1_settings(ResourceLimits(128, 64, CpuPolicy("shares")), has_memsw=True)
    assert shares == {
        "memory": [
            ("memory.swappiness", "0"),
            ("memory.limit_in_bytes", str(128 * MIB)),
            ("memory.memsw.limit_in_bytes", str(128 * MIB)),
        ],
        "pids": [("pids.max", "64")],
        "cpu": [("cpu.shares", "74")],
    }
    quota = v1_settings(ResourceLimits(1769, 1024, CpuPolicy("quota")), has_memsw=False)
    assert quota["memory"] == [("memory.swappiness", "0"), ("memory.limit_in_bytes", str(1769 * MIB))]  # fmt: skip
    assert quota["cpu"] == [("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", "100000")]


def test_v2_settings() -> None:
    assert v2_settings(ResourceLimits(128, 64, CpuPolicy("shares")), has_swap=True) == [
        ("memory.max", str(128 * MIB)),
        ("memory.swap.max", "0"),
        ("pids.max", "64"),
        ("cpu.weight", "7"),
    ]
    assert v2_settings(ResourceLimits(3538, 10, CpuPolicy("quota")), has_swap=False) == [
        ("memory.max", str(3538 * MIB)),
        ("pids.max", "10"),
        ("cpu.max", "200000 100000"),
    ]


def fake_v1(root: Path, *, freezer: bool = True) -> None:
    controllers = ["memory", "pids", "cpu", *(["freezer"] if freezer else [])]
    for name in controllers:
        (root / name).mkdir(parents=True)
        (root / name / "cgroup.procs").write_text("")
    (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (root / "memory" / "memory.memsw.limit_in_bytes").write_text("9223372036854771712\n")
    (root / "unified").mkdir()  # the hybrid layout's empty cgroup2 mount
    (root / "unified" / "cgroup.controllers").write_text("")


def fake_v2(root: Path, controllers: str = "cpuset cpu io memory hugetlb pids rdma misc") -> None:
    root.mkdir(exist_ok=True)
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cgroup.subtree_control").write_text("")
    (root / "lambdaplane").mkdir()
    (root / "lambdaplane" / "memory.swap.max").write_text("max\n")


def test_detects_v1(tmp_path: Path) -> None:
    fake_v1(tmp_path)
    manager = CgroupManager.detect(root=tmp_path, parent="lambdaplane")
    assert manager is not None
    assert manager.version == 1
    for name in ("memory", "pids", "cpu", "freezer"):
        assert (tmp_path / name / "lambdaplane").is_dir()


def test_v1_environment_gets_limits_in_every_hierarchy(tmp_path: Path) -> None:
    fake_v1(tmp_path)
    manager = CgroupManager.detect(root=tmp_path, parent="lambdaplane")
    assert manager is not None
    cgroup = manager.create("env-1", ResourceLimits(256, 100, CpuPolicy("quota")))
    env = {name: tmp_path / name / "lambdaplane" / "env-1" for name in ("memory", "pids", "cpu")}
    assert (env["memory"] / "memory.limit_in_bytes").read_text() == str(256 * MIB)
    assert (env["memory"] / "memory.memsw.limit_in_bytes").read_text() == str(256 * MIB)
    assert (env["memory"] / "memory.swappiness").read_text() == "0"
    assert (env["pids"] / "pids.max").read_text() == "100"
    assert (env["cpu"] / "cpu.cfs_quota_us").read_text() == str(cpu_quota_us(256))
    assert (env["cpu"] / "cpu.cfs_period_us").read_text() == "100000"
    assert set(cgroup.attach_files()) == {
        tmp_path / name / "lambdaplane" / "env-1" / "cgroup.procs"
        for name in ("memory", "pids", "cpu", "freezer")
    }


def test_v1_reads_peak_and_oom(tmp_path: Path) -> None:
    fake_v1(tmp_path)
    manager = CgroupManager.detect(root=tmp_path, parent="lambdaplane")
    assert manager is not None
    cgroup = manager.create("env-2", ResourceLimits(128, 10, CpuPolicy("shares")))
    memory = tmp_path / "memory" / "lambdaplane" / "env-2"
    (memory / "memory.max_usage_in_bytes").write_text("12345678\n")
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    assert cgroup.memory_peak_bytes() == 12345678
    assert not cgroup.oom_killed()
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    assert cgroup.oom_killed()
    assert cgroup.reset_memory_peak()
    assert (memory / "memory.max_usage_in_bytes").read_text() == "0"


def test_v1_without_freezer_still_works(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fake_v1(tmp_path, freezer=False)
    with caplog.at_level(logging.WARNING):
        manager = CgroupManager.detect(root=tmp_path, parent="lambdaplane")
    assert manager is not None
    assert "freezer" in caplog.text
    cgroup = manager.create("env-3", ResourceLimits(128, 10, CpuPolicy("shares")))
    asyncio.run(cgroup.kill_all(timeout=0.1))  # nothing to kill in a fake tree
    assert len(cgroup.attach_files()) == 3


def test_detects_v2(tmp_path: Path) -> None:
    fake_v2(tmp_path)
    manager = CgroupManager.detect(root=tmp_path, parent="lambdaplane")
    assert manager is not None
    assert manager.version == 2
    enabled = "+memory +pids +cpu"
    assert (tmp_path / "cgroup.subtree_control").read_text() == enabled
    assert (tmp_path / "lambdaplane" / "cgroup.subtree_control").read_text() == enabled


def test_v2_environment_gets_limits(tmp_path: Path) -> None:
    fake_v2(tmp_path)
    manager = CgroupManager.detect(root=tmp_path, parent="lambdaplane")
    assert manager is not None
    cgroup = manager.create("env-4", ResourceLimits(1769, 50, CpuPolicy("shares")))
    env = tmp_path / "lambdaplane" / "env-4"
    assert (env / "memory.max").read_text() == str(1769 * MIB)
    assert (env / "memory.swap.max").read_text() == "0"
    assert (env / "pids.max").read_text() == "50"
    assert (env / "cpu.weight").read_text() == "100"
    assert cgroup.attach_files() == (env / "cgroup.procs",)

    (env / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (env / "memory.peak").write_text("4096\n")
    assert cgroup.oom_killed()
    assert cgroup.memory_peak_bytes() == 4096


def test_v2_nested_parent_enables_controllers_on_the_way(tmp_path: Path) -> None:
    fake_v2(tmp_path)
    manager = CgroupManager.detect(root=tmp_path, parent="lambdaplane/envs")
    assert manager is not None
    assert (tmp_path / "lambdaplane" / "envs" / "cgroup.subtree_control").exists()


def test_v2_without_needed_controllers_falls_back_to_v1(tmp_path: Path) -> None:
    fake_v2(tmp_path, controllers="cpuset io")
    fake_v1(tmp_path / "v1")
    assert CgroupManager.detect(root=tmp_path, parent="lambdaplane") is None
    manager = CgroupManager.detect(root=tmp_path / "v1", parent="lambdaplane")
    assert manager is not None
    assert manager.version == 1


def test_nothing_usable_logs_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert CgroupManager.detect(root=tmp_path, parent="lambdaplane") is None
    assert "WITHOUT memory, CPU and pids limits" in caplog.text


def test_unwritable_hierarchy_logs_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    fake_v1(tmp_path)
    (tmp_path / "pids" / "lambdaplane").write_text("a file where a directory must go")
    with caplog.at_level(logging.WARNING):
        assert CgroupManager.detect(root=tmp_path, parent="lambdaplane") is None
    assert "cannot set up" in caplog.text


def test_stale_empty_environment_is_replaced(tmp_path: Path) -> None:
    fake_v2(tmp_path)
    manager = CgroupManager.detect(root=tmp_path, parent="lambdaplane")
    assert manager is not None
    (tmp_path / "lambdaplane" / "env-5").mkdir()
    manager.create("env-5", ResourceLimits(128, 10, CpuPolicy("shares")))
    assert (tmp_path / "lambdaplane" / "env-5" / "pids.max").read_text() == "10"


def test_exit_is_seen_on_descriptors_above_fd_setsize() -> None:
    """A busy server holds thousands of descriptors; select() refuses any above 1,024."""
    import os
    import resource
    import subprocess
    import sys

    from lambdaplane.sandbox.cgroups import _exited

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2100:
        pytest.skip("the descriptor limit is too low to number one above 2,048")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2100), hard))
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)  # fmt: skip
    pidfd = os.pidfd_open(child.pid)
    high = os.dup2(pidfd, 2050)
    try:
        assert not _exited(high)
        assert child.stdin is not None
        child.stdin.close()
        child.wait()
        assert _exited(high)
    finally:
        os.close(high)
        os.close(pidfd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
