"""``lambdaplane serve``: flags, banner, health, clean shutdown on SIGTERM and SIGINT."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lambdaplane.testing import start_server


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    server = start_server(tmp_path / "data", region="eu-west-1")
    text = server.log()
    assert f"http://127.0.0.1:{server.port}" in text
    assert "eu-west-1" in text
    assert server.client().list_functions()["Functions"] == []
    assert server.stop(sig) == 0, server.log()


def test_data_dir_from_environment(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "LAMBDAPLANE_DATA_DIR": str(tmp_path / "from-env")}
    from lambdaplane.settings import from_environ

    settings = from_environ(env)
    assert settings.data_dir == (tmp_path / "from-env").absolute()
    assert settings.port == 9000 and settings.host == "127.0.0.1"
    assert settings.region == "us-east-1" and settings.account_id == "000000000000"
    del env


@pytest.mark.parametrize("flags", [["--account-id", "123"], ["--region", "mars"]])
def test_bad_flags_are_refused(tmp_path: Path, flags: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lambdaplane", "serve", "--data-dir", str(tmp_path), *flags],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "lambdaplane:" in result.stderr


def test_insecure_warning_on_non_loopback() -> None:
    from lambdaplane.server.runner import insecure_warning
    from lambdaplane.settings import Settings

    assert insecure_warning(Settings(host="0.0.0.0", insecure_any_credentials=True))
    assert insecure_warning(Settings(host="127.0.0.1", insecure_any_credentials=True)) is None
    assert insecure_warning(Settings(host="0.0.0.0")) is None
