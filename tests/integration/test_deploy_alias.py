"""``lambdaplane deploy-alias`` against a real server, while a client keeps invoking the alias.

The command runs as a subprocess (the venv's ``lambdaplane``), moves the alias with
UpdateAlias + RoutingConfig, and judges the new version on the server's
``lambda_invocations_total`` and ``lambda_errors_total`` counters.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from lambdaplane.deploy.health import Tally, read_invocations
from lambdaplane.testing import ServerProcess, make_zip
from tests.integration.helpers import RUNTIME, unique_name, wait_settled

LAMBDAPLANE = str(Path(sys.executable).parent / "lambdaplane")


def source(generation: int, broken: bool = False) -> str:
    body = f"raise RuntimeError('generation {generation} is broken')" if broken else "pass"
    return (
        f"GENERATION = {generation}\n\n"
        "def handler(event, context):\n"
        f"    {body}\n"
        "    if event.get('fail'):\n"
        "        raise ValueError('asked to fail')\n"
        "    return {'generation': GENERATION, 'version': context.function_version}\n"
    )


def create(lam: Any, role: str) -> str:
    name = unique_name("dep")
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": source(1)})},
        Timeout=10,
    )
    wait_settled(lam, name)
    return name


def publish(lam: Any, name: str, generation: int, broken: bool = False) -> str:
    """Put ``generation``'s code on $LATEST and publish it; the new version number."""
    if generation > 1:
        lam.update_function_code(
            FunctionName=name, ZipFile=make_zip({"handler.py": source(generation, broken)})
        )
        wait_settled(lam, name)
    return str(lam.publish_version(FunctionName=name)["Version"])


def deploy_alias(
    server: ServerProcess, *args: str, env: dict[str, str] | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LAMBDAPLANE, "deploy-alias", *args, "--endpoint", server.endpoint],
        env=env or server.cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Traffic:
    """Invokes of ``function:alias`` from a background thread, as clients would send them."""

    def __init__(self) -> None:
        self.executed: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.failures: list[BaseException] = []


@contextmanager
def traffic(server: ServerProcess, name: str, alias: str) -> Iterator[Traffic]:
    seen = Traffic()
    stop = threading.Event()

    def drive() -> None:
        client = server.client()
        try:
            while not stop.is_set():
                response = client.invoke(FunctionName=name, Qualifier=alias, Payload=b"{}")
                response["Payload"].read()
                version = response["ExecutedVersion"]
                seen.executed[version] += 1
                if "FunctionError" in response:
                    seen.errors[version] += 1
                stop.wait(0.01)
        except BaseException as exc:
            seen.failures.append(exc)
        finally:
            client.close()

    thread = threading.Thread(target=drive, name="traffic")
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(30)
    assert not seen.failures, seen.failures


def alias_state(lam: Any, name: str, alias: str = "live") -> tuple[str, dict[str, float]]:
    response = lam.get_alias(FunctionName=name, Name=alias)
    weights = (response.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return response["FunctionVersion"], weights


def test_invocations_are_counted_on_the_metrics_endpoint(
    lam: Any, role: str, server: ServerProcess
) -> None:
    name = create(lam, role)
    for event in (b"{}", b"{}", b'{"fail": true}'):
        lam.invoke(FunctionName=name, Payload=event)["Payload"].read()
    version = publish(lam, name, 1)
    lam.invoke(FunctionName=name, Qualifier=version, Payload=b'{"fail": true}')["Payload"].read()
    assert read_invocations(server.endpoint, name) == {"$LATEST": Tally(2, 1), "1": Tally(0, 1)}
    assert read_invocations(server.endpoint, "no-such-function") == {}


@pytest.mark.slow
def test_canary_completes_while_traffic_flows(lam: Any, role: str, server: ServerProcess) -> None:
    name = create(lam, role)
    old, new = publish(lam, name, 1), publish(lam, name, 2)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=old)
    with traffic(server, name, "live") as seen:
        time.sleep(0.5)
        done = deploy_alias(
            server, name, "live", new, "--canary", "30", "--interval", "3s", "--poll", "0.5s"
        )
        time.sleep(0.5)
    assert done.returncode == 0, done.stdout + done.stderr
    assert alias_state(lam, name) == (new, {})
    assert seen.executed[old] > 0 and seen.executed[new] > 0, seen.executed
    assert not seen.errors
    out = done.stdout
    assert f"step 1/2  version {old}: 70%, version {new}: 30%, watching 3s" in out
    assert f"step 2/2  version {new}: 100%" in out
    assert f"done: {name}:live: the alias points at version {new} (version {new}: " in out


@pytest.mark.slow
def test_a_failing_version_is_rolled_back(lam: Any, role: str, server: ServerProcess) -> None:
    name = create(lam, role)
    good, bad = publish(lam, name, 1), publish(lam, name, 2, broken=True)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=good)
    with traffic(server, name, "live") as seen:
        started = time.monotonic()
        done = deploy_alias(
            server,
            *(name, "live", bad, "--canary", "30", "--interval", "30s", "--poll", "0.5s"),
            *("--max-error-rate", "0.1", "--min-invocations", "5"),
        )
        took = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    assert took < 25  # rolled back mid-step, without waiting out the 30 s
    assert alias_state(lam, name) == (good, {})
    assert seen.errors[bad] > 0 and not seen.errors[good]
    assert f"rolled back {name}:live: version {bad}: " in done.stderr
    assert "invocations failed" in done.stderr
    assert f"the alias points at version {good} again" in done.stderr


@pytest.mark.slow
def test_linear_with_the_data_dirs_credentials(
    lam: Any, role: str, server: ServerProcess, tmp_path: Path
) -> None:
    name = create(lam, role)
    old, new = publish(lam, name, 1), publish(lam, name, 2)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=old)
    env = {k: v for k, v in server.cli_env().items() if not k.startswith("AWS_ACCESS")}
    env.pop("AWS_SECRET_ACCESS_KEY")
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none")
    )
    with traffic(server, name, "live"):
        done = deploy_alias(
            server,
            *(name, "live", new, "--linear", "40", "--interval", "1s", "--poll", "0.5s"),
            *("--data-dir", str(server.data_dir)),
            env=env,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert alias_state(lam, name) == (new, {})
    for line in (
        f"step 1/3  version {old}: 60%, version {new}: 40%, watching 1s",
        f"step 2/3  version {old}: 20%, version {new}: 80%, watching 1s",
        f"step 3/3  version {new}: 100%",
    ):
        assert line in done.stdout


@pytest.mark.slow
def test_a_concurrent_alias_change_stops_the_deployment(
    lam: Any, role: str, server: ServerProcess
) -> None:
    name = create(lam, role)
    one, two, three = (publish(lam, name, g) for g in (1, 2, 3))
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=one)
    command = [LAMBDAPLANE, "deploy-alias", name, "live", two, "--canary", "10"]
    command += ["--interval", "3s", "--poll", "0.5s", "--endpoint", server.endpoint]
    with subprocess.Popen(
        command, env=server.cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        deadline = time.monotonic() + 20
        while alias_state(lam, name) != (one, {two: 0.1}):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        lam.update_alias(FunctionName=name, Name="live", FunctionVersion=three, RoutingConfig={})
        out, err = process.communicate(timeout=30)
    assert process.returncode == 2, out + err
    assert "changed by someone else" in err
    assert alias_state(lam, name) == (three, {})  # left as the other party set it


def test_usage_and_api_errors_exit_2(lam: Any, role: str, server: ServerProcess) -> None:
    done = deploy_alias(server, "fn", "live", "2", "--canary", "10")
    assert done.returncode == 2 and "--canary and --linear need --interval" in done.stderr
    name = create(lam, role)
    done = deploy_alias(server, name, "nope", "1", "--strategy", "AllAtOnce")
    assert done.returncode == 2
    assert "cannot read the alias: GetAlias: ResourceNotFoundException" in done.stderr


@pytest.mark.slow
def test_sigterm_while_split_rolls_back(lam: Any, role: str, server: ServerProcess) -> None:
    name = create(lam, role)
    old, new = publish(lam, name, 1), publish(lam, name, 2)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=old)
    command = [LAMBDAPLANE, "deploy-alias", name, "live", new, "--canary", "10"]
    command += ["--interval", "1h", "--endpoint", server.endpoint]
    with subprocess.Popen(
        command, env=server.cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        deadline = time.monotonic() + 20
        while alias_state(lam, name) != (old, {new: 0.1}):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 1, out + err
    assert f"interrupted; the alias points at version {old} again" in err
    assert alias_state(lam, name) == (old, {})
