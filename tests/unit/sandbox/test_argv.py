"""The bwrap command line built from a spec (a pure function)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdaplane.sandbox.bubblewrap import PROC_READ_ONLY, build_argv, etc_files
from lambdaplane.sandbox.spec import CpuPolicy, SandboxSpec

PY = Path("/opt/pythons/3.11.7")
ETC_FDS = {"passwd": 11, "group": 12, "hosts": 13, "nsswitch.conf": 14}

# bwrap options and how many arguments each takes
ARITY = {
    "--unshare-user": 0, "--unshare-pid": 0, "--unshare-ipc": 0, "--unshare-uts": 0,
    "--unshare-net": 0, "--unshare-cgroup-try": 0, "--disable-userns": 0, "--uid": 1,
    "--gid": 1, "--hostname": 1, "--die-with-parent": 0, "--new-session": 0,
    "--cap-drop": 1, "--seccomp": 1, "--clearenv": 0, "--setenv": 2, "--ro-bind": 2,
    "--ro-bind-try": 2, "--symlink": 2, "--proc": 1, "--dev": 1, "--remount-ro": 1,
    "--dir": 1, "--size": 1, "--tmpfs": 1, "--ro-bind-data": 2, "--chdir": 1,
}  # fmt: skip


def make_spec(**overrides: object) -> SandboxSpec:
    values: dict[str, object] = {
        "env_id": "fn-abc123-0001",
        "argv": (str(PY / "bin/python3.11"), "-S", "/var/lambdaplane/agent.py"),
        "env": {"AWS_REGION": "us-east-1", "LANG": "C.UTF-8"},
        "code_dir": Path("/data/code/aa11"),
        "runtime_dir": Path("/data/runtimes/python3.11"),
        "agent_dir": Path("/srv/lambdaplane/agent"),
        "host_ro_paths": (PY,),
    }
    values.update(overrides)
    return SandboxSpec(**values)  # type: ignore[arg-type]


def parse(argv: list[str]) -> tuple[list[tuple[str, ...]], list[str]]:
    """Split into (option, *args) tuples and the command after ``--``."""
    assert argv[0] == "/usr/bin/bwrap"
    ops: list[tuple[str, ...]] = []
    i = 1
    while argv[i] != "--":
        option = argv[i]
        assert option in ARITY, f"unexpected option {option}"
        ops.append((option, *argv[i + 1 : i + 1 + ARITY[option]]))
        i += 1 + ARITY[option]
    return ops, argv[i + 1 :]


def build(spec: SandboxSpec, **kwargs: object) -> tuple[list[tuple[str, ...]], list[str]]:
    return parse(build_argv(spec, 9, etc_fds=ETC_FDS, **kwargs))  # type: ignore[arg-type]


def test_namespaces_identity_and_privileges() -> None:
    ops, _ = build(make_spec())
    for flag in ("--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net"):  # fmt: skip
        assert (flag,) in ops
    assert ("--uid", "993") in ops
    assert ("--gid", "990") in ops
    assert ("--cap-drop", "ALL") in ops
    assert ("--die-with-parent",) in ops
    assert ("--new-session",) in ops
    assert ("--disable-userns",) in ops
    assert ("--seccomp", "9") in ops
    assert ("--hostname", "fn-abc123-00") in ops


def test_environment_is_cleared_then_set_exactly() -> None:
    ops, _ = build(make_spec())
    env_ops = [op for op in ops if op[0] in ("--clearenv", "--setenv")]
    assert env_ops == [
        ("--clearenv",),
        ("--setenv", "AWS_REGION", "us-east-1"),
        ("--setenv", "LANG", "C.UTF-8"),
    ]


def test_filesystem_layout() -> None:
    ops, command = build(make_spec())
    assert ("--ro-bind", "/usr", "/usr") in ops
    for target, link in (("usr/lib", "/lib"), ("usr/lib64", "/lib64"), ("usr/bin", "/bin"), ("usr/sbin", "/sbin")):  # fmt: skip
        assert ("--symlink", target, link) in ops
    assert ("--proc", "/proc") in ops
    assert ("--ro-bind-try", "/proc/sys", "/proc/sys") in ops
    assert ("--dev", "/dev") in ops
    assert ("--remount-ro", "/dev") in ops
    assert ("--ro-bind", "/data/code/aa11", "/var/task") in ops
    assert ("--ro-bind", "/data/runtimes/python3.11", "/var/runtime") in ops
    assert ("--ro-bind", "/srv/lambdaplane/agent", "/var/lambdaplane") in ops
    assert ("--dir", "/opt") in ops
    assert ("--ro-bind", str(PY), str(PY)) in ops
    assert ops[-2:] == [("--remount-ro", "/"), ("--chdir", "/var/task")]
    assert command == [str(PY / "bin/python3.11"), "-S", "/var/lambdaplane/agent.py"]


def test_nothing_is_bound_writable_and_only_known_host_paths_are_visible() -> None:
    argv = build_argv(make_spec(), 9, etc_fds=ETC_FDS)
    assert not {"--bind", "--bind-try", "--dev-bind", "--dev-bind-try", "--bind-data"} & set(argv)
    ops, _ = parse(argv)
    sources = {op[1] for op in ops if op[0] in ("--ro-bind", "--ro-bind-try")}
    assert sources == {
        "/usr", "/data/code/aa11", "/data/runtimes/python3.11",
        "/srv/lambdaplane/agent", "/etc/ssl/certs", str(PY),
        *(f"/proc/{name}" for name in PROC_READ_ONLY),
    }  # fmt: skip


def test_tmp_is_a_sized_tmpfs() -> None:
    ops, _ = build(make_spec(tmp_mb=10))
    index = ops.index(("--tmpfs", "/tmp"))
    assert ops[index - 1] == ("--size", str(10 * 1024 * 1024))


def test_host_paths_come_after_tmp_so_they_may_live_under_it() -> None:
    ops, _ = build(make_spec(host_ro_paths=(Path("/tmp/x/python"),)))
    assert ops.index(("--ro-bind", "/tmp/x/python", "/tmp/x/python")) > ops.index(("--tmpfs", "/tmp"))  # fmt: skip


def test_optional_directories() -> None:
    ops, _ = build(make_spec(runtime_dir=None, opt_dir=Path("/data/layers/merged")))
    assert ("--dir", "/var/runtime") in ops
    assert ("--ro-bind", "/data/layers/merged", "/opt") in ops
    assert ("--dir", "/opt") not in ops


def test_synthetic_etc() -> None:
    ops, _ = build(make_spec())
    data = {op[2]: op[1] for op in ops if op[0] == "--ro-bind-data"}
    assert data == {f"/etc/{name}": str(fd) for name, fd in ETC_FDS.items()}
    assert ("--symlink", "/usr/share/zoneinfo/UTC", "/etc/localtime") in ops
    assert ("--ro-bind-try", "/etc/ssl/certs", "/etc/ssl/certs") in ops
    assert not [op for op in ops if "resolv.conf" in " ".join(op)]

    files = etc_files(make_spec())
    assert set(files) == set(ETC_FDS)
    assert b"sbx_user1051:x:993:990::/tmp:/sbin/nologin\n" in files["passwd"]
    assert files["hosts"].startswith(b"127.0.0.1\tlocalhost")


def test_network_on_shares_the_host_network_and_its_resolver() -> None:
    ops, _ = build(make_spec(network=True))
    assert ("--unshare-net",) not in ops
    assert ("--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf") in ops


def test_masked_proc_files_are_covered_by_dev_null() -> None:
    ops, _ = build(make_spec(), masked_proc=("kcore", "kpagecount"))
    assert ("--ro-bind", "/dev/null", "/proc/kcore") in ops
    assert ("--ro-bind", "/dev/null", "/proc/kpagecount") in ops
    assert ops.index(("--ro-bind", "/dev/null", "/proc/kcore")) > ops.index(("--proc", "/proc"))


def test_cwd_and_custom_bwrap() -> None:
    argv = build_argv(make_spec(cwd="/tmp"), 9, etc_fds={}, bwrap="/opt/bin/bwrap")
    assert argv[0] == "/opt/bin/bwrap"
    assert argv[argv.index("--chdir") + 1] == "/tmp"


@pytest.mark.parametrize(
    "overrides",
    [
        {"env_id": "Upper"},
        {"env_id": "has_underscore"},
        {"env_id": ""},
        {"argv": ("python3", "-c", "pass")},
        {"argv": ()},
        {"env": {"A=B": "x"}},
        {"code_dir": Path("relative")},
        {"host_ro_paths": (Path("rel"),)},
        {"memory_mb": 0},
        {"cwd": "var/task"},
        {"pass_fds": (-1,)},
    ],
)
def test_invalid_specs_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        make_spec(**overrides)


def test_cpu_policy_modes() -> None:
    assert make_spec().cpu == CpuPolicy("shares")
    with pytest.raises(ValueError):
        CpuPolicy("burst")  # type: ignore[arg-type]


def test_a_hostname_is_never_digits_alone() -> None:
    """glibc does not look a name of digits up in /etc/hosts (it takes it for an address),
    so gethostbyname(gethostname()) would fail in such an environment."""
    from lambdaplane.sandbox.spec import hostname_for

    assert hostname_for("1dd3fcde2b73aa") == "1dd3fcde2b73"
    assert hostname_for("123456789012ab") == "e12345678901"
    assert hostname_for("t-0123456789") == "t-0123456789"
    assert hostname_for("-") == "localhost"
