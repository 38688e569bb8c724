"""The SnapStart template's sandbox: what differs from an ordinary one, and nothing else."""

from __future__ import annotations

from pathlib import Path

from lambdaplane.sandbox import SandboxSpec, build_argv, build_filter

SPEC = SandboxSpec(
    env_id="abc",
    argv=("/usr/bin/python3", "-c", "pass"),
    env={},
    code_dir=Path("/data/code"),
    runtime_dir=Path("/rt"),
    agent_dir=Path("/agent"),
    host_ro_paths=(Path("/root/.pyenv/versions/3.12.1"),),
)
ETC = {"passwd": 10, "hosts": 11}


def test_template_keeps_nested_namespaces_and_a_whole_proc() -> None:
    ordinary = build_argv(SPEC, 3, etc_fds=ETC, masked_proc=("kcore",))
    template = build_argv(
        SPEC,
        3,
        etc_fds=ETC,
        masked_proc=("kcore",),
        template=True,
        sources={Path("/root/.pyenv/versions/3.12.1"): Path("/run/x/0")},
    )
    assert "--disable-userns" in ordinary and "--disable-userns" not in template
    assert "/proc/kcore" in ordinary and "/proc/kcore" not in template
    assert "/proc/sys" in ordinary and "/proc/sys" not in template
    # Restored environments bind their own /etc/hosts over a plain file.
    assert template[template.index("/etc/hosts") - 2] == "--file"
    assert ordinary[ordinary.index("/etc/hosts") - 2] == "--ro-bind-data"
    # A path the unprivileged uid cannot traverse comes from its staged bind.
    at = template.index("/root/.pyenv/versions/3.12.1")
    assert template[at - 2 : at] == ["--ro-bind", "/run/x/0"]
    # Everything else is the same.
    assert "--cap-drop" in template and "--remount-ro" in template


def test_template_filter_allows_only_unshare_and_mount_more() -> None:
    strict = build_filter("x86_64")
    loose = build_filter("x86_64", allow=("unshare", "mount"))
    assert len(strict) - len(loose) == 2 * 8  # two fewer deny instructions
