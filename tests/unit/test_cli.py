"""Parsing of ``lambdaplane deploy-alias``: flags become DeployOptions; bad ones exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdaplane import cli
from lambdaplane.deploy import command
from lambdaplane.deploy.command import DeployOptions
from lambdaplane.deploy.strategy import Kind

DEPLOY = ["deploy-alias", "hello", "live", "2"]


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[DeployOptions]:
    seen: list[DeployOptions] = []

    def fake_run(options: DeployOptions) -> int:
        seen.append(options)
        return 1

    monkeypatch.setattr(command, "run", fake_run)
    return seen


def test_canary_flags(captured: list[DeployOptions], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMBDAPLANE_DATA_DIR", "/srv/lp")
    code = cli.main(
        [
            *DEPLOY,
            *("--canary", "30", "--interval", "3s"),
            *("--max-error-rate", "0.2", "--min-invocations", "5", "--poll", "0.5s"),
        ]
    )
    assert code == 1  # run's exit status is the command's
    (options,) = captured
    assert (options.function, options.alias, options.version) == ("hello", "live", "2")
    assert (options.strategy.kind, options.strategy.percent, options.strategy.interval) == (
        Kind.CANARY,
        30,
        3.0,
    )
    assert (options.thresholds.max_error_rate, options.thresholds.min_invocations) == (0.2, 5)
    assert options.poll == 0.5
    assert options.endpoint == "http://127.0.0.1:9000"
    assert options.region is None
    assert options.data_dir == Path("/srv/lp")


def test_defaults_and_predefined(captured: list[DeployOptions]) -> None:
    cli.main(
        [
            *DEPLOY,
            *("--strategy", "Linear10PercentEvery2Minutes"),
            *("--endpoint", "http://10.0.0.1:9000/", "--region", "eu-west-1", "--data-dir", "d"),
        ]
    )
    (options,) = captured
    assert options.strategy.name == "LambdaLinear10PercentEvery2Minutes"
    assert (options.thresholds.max_error_rate, options.thresholds.min_invocations) == (0.1, 10)
    assert options.poll == 10.0
    assert options.endpoint == "http://10.0.0.1:9000"
    assert options.region == "eu-west-1"
    assert options.data_dir == Path("d")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "one of the arguments --strategy --canary --linear is required"),
        (["--canary", "10"], "--canary and --linear need --interval"),
        (["--linear", "10", "--canary", "10", "--interval", "1m"], "not allowed with"),
        (["--strategy", "AllAtOnce", "--interval", "1m"], "--interval goes with"),
        (["--strategy", "Canary50Percent1Minute"], "unknown strategy"),
        (["--canary", "100", "--interval", "1m"], "a whole percentage 1-99"),
        (["--canary", "10", "--interval", "10"], "not a duration"),
        (["--canary", "10", "--interval", "0s"], "the interval must be longer than 0s"),
        (["--strategy", "AllAtOnce", "--max-error-rate", "5"], "the error rate must be"),
        (["--strategy", "AllAtOnce", "--endpoint", "file:///etc"], "--endpoint must be"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str],
    message: str,
    captured: list[DeployOptions],
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([*DEPLOY, *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: lambdaplane deploy-alias" in err
    assert message in err
    assert captured == []
