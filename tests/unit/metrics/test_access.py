"""Who may read /metrics: open, SigV4, or a bearer token (or SigV4)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from lambdaplane.metrics.access import MetricsAccess, open_token
from lambdaplane.settings import Settings, SettingsError

KEYS = {"AKIDMETRICS": "secret"}


def access(mode: str, token: str | None = None) -> MetricsAccess:
    return MetricsAccess(
        mode, keys=KEYS.get, region="us-east-1", token=token, clock=lambda: datetime.now(UTC)
    )


def signed(secret: str = "secret") -> dict[str, str]:
    request = AWSRequest(method="GET", url="http://127.0.0.1:9000/metrics")
    SigV4Auth(Credentials("AKIDMETRICS", secret), "lambda", "us-east-1").add_auth(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers.setdefault("host", "127.0.0.1:9000")
    return headers


def check(gate: MetricsAccess, headers: dict[str, str]) -> int | None:
    refusal = gate.check("GET", "/metrics", "", headers)
    return None if refusal is None else refusal.status


def test_none_lets_anyone_in() -> None:
    assert check(access("none"), {}) is None


def test_sigv4_needs_a_valid_signature() -> None:
    gate = access("sigv4")
    assert check(gate, signed()) is None
    assert check(gate, {}) == 401
    assert check(gate, signed(secret="wrong")) == 403
    assert check(gate, {"authorization": "Bearer anything"}) == 401


def test_token_takes_the_bearer_token_or_a_signature() -> None:
    gate = access("token", token="s3cret-token")
    assert check(gate, {"authorization": "Bearer s3cret-token"}) is None
    assert check(gate, {"authorization": "bearer s3cret-token "}) is None
    assert check(gate, {"authorization": "Bearer nope"}) == 403
    assert check(gate, signed()) is None
    refusal = gate.check("GET", "/metrics", "", {})
    assert refusal is not None and refusal.status == 401
    assert refusal.challenge == 'Bearer realm="lambdaplane metrics"'


def test_modes_are_checked() -> None:
    with pytest.raises(ValueError, match="one of"):
        access("open")
    with pytest.raises(ValueError, match="needs a token"):
        access("token")


def test_the_token_file_is_created_private_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "metrics-token"
    token = open_token(path)
    assert len(token) >= 40
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert open_token(path) == token
    path.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        open_token(path)


def test_the_default_depends_on_the_address(tmp_path: Path) -> None:
    assert Settings(host="127.0.0.1").metrics_access == "none"
    assert Settings(host="::1").metrics_access == "none"
    assert Settings(host="0.0.0.0").metrics_access == "sigv4"
    assert Settings(host="10.1.2.3", metrics_auth="none").metrics_access == "none"
    assert Settings(host="127.0.0.1", metrics_auth="token").metrics_access == "token"
    assert Settings(data_dir=tmp_path).metrics_token_path == tmp_path / "metrics-token"
    with pytest.raises(SettingsError, match="--metrics-auth"):
        Settings(metrics_auth="basic")


def test_the_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from lambdaplane import cli
    from lambdaplane.server import runner

    seen: list[Settings] = []
    monkeypatch.setattr(runner, "run", seen.append)
    flags = ["serve", "--data-dir", str(tmp_path), "--host", "0.0.0.0"]
    assert cli.main([*flags, "--metrics-auth", "token", "--metrics-token-file", "/t"]) == 0
    assert seen[-1].metrics_access == "token" and seen[-1].metrics_token_path == Path("/t")
    assert cli.main(flags) == 0
    assert seen[-1].metrics_access == "sigv4"
