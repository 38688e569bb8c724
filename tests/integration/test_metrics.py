"""``GET /metrics`` against a real server counts exactly what a scripted workload did:
invocations, handled and unhandled errors, timeouts, init failures, throttles, cold
starts, concurrency and the asynchronous queue's outcomes. Plus who may read it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from lambdaplane.deploy.health import Tally, read_invocations
from lambdaplane.testing import ServerProcess, make_zip, start_server
from tests.integration.helpers import RUNTIME, unique_name, wait_settled

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
NOWHERE_QUEUE = "arn:aws:sqs:us-east-1:000000000000:nowhere"  # no --sqs-endpoint: undeliverable


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One execution slot, so concurrent invokes throttle; one async worker, fast retries."""
    srv = start_server(
        tmp_path_factory.mktemp("metered"),
        "--account-concurrency", "1", "--async-workers", "1",
        "--async-retry-delays", "0.1,0.1", "--async-throttle-backoff", "0.1,0.2",
    )  # fmt: skip
    yield srv
    assert srv.stop() == 0, srv.log()


@pytest.fixture
def lam(metered: ServerProcess) -> Iterator[Any]:
    client = metered.client()
    yield client
    client.close()


def deploy(lam: Any, source: str, prefix: str, **extra: Any) -> str:
    name = unique_name(prefix)
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": textwrap.dedent(source)})},
        Timeout=extra.pop("Timeout", 10),
        **extra,
    )
    wait_settled(lam, name)
    return name


def invoke(lam: Any, name: str, qualifier: str | None = None, payload: bytes = b"{}") -> Any:
    extra = {"Qualifier": qualifier} if qualifier else {}
    response = lam.invoke(FunctionName=name, Payload=payload, **extra)
    response["body"] = response["Payload"].read()
    return response


def scrape(server: ServerProcess, path: str = "/metrics", **headers: str) -> str:
    request = urllib.request.Request(server.endpoint + path, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        return str(response.read().decode())


def samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def of(function: str, version: str = "$LATEST") -> str:
    return f'function="{function}",version="{version}"'


def test_a_scripted_workload_is_counted_exactly(metered: ServerProcess, lam: Any) -> None:
    ok = deploy(lam, "def handler(event, context):\n    return event\n", "ok")
    raises = deploy(lam, "def handler(event, context):\n    raise ValueError('no')\n", "raises")
    crash = deploy(lam, "import os\ndef handler(event, context):\n    os._exit(3)\n", "crash")
    slow = deploy(
        lam, "import time\ndef handler(event, context):\n    time.sleep(5)\n", "slow", Timeout=1
    )
    broken = deploy(lam, "import no_such_module\ndef handler(e, c):\n    pass\n", "broken")
    sleepy = deploy(
        lam, "import time\ndef handler(event, context):\n    time.sleep(1.5)\n", "sleepy"
    )

    for _ in range(3):
        assert "FunctionError" not in invoke(lam, ok)
    version = lam.publish_version(FunctionName=ok)["Version"]
    for _ in range(2):
        assert invoke(lam, ok, version)["ExecutedVersion"] == version
    for _ in range(2):  # handled by the runtime: the environment stays
        assert invoke(lam, raises)["FunctionError"] == "Unhandled"
    assert b"Runtime.ExitError" in invoke(lam, crash)["body"]  # the runtime dies
    assert b"Sandbox.Timedout" in invoke(lam, slow)["body"]
    for _ in range(2):
        assert b"Runtime.ImportModuleError" in invoke(lam, broken)["body"]

    # Three at once on one execution slot: one runs, two are throttled.
    during: list[str] = []

    def watch() -> None:
        """A scrape while the one that got the slot sleeps (it sleeps 1.5 s)."""
        deadline = time.monotonic() + 1.2
        while True:
            text = scrape(metered)
            if samples(text).get(f"lambda_concurrent_executions{{{of(sleepy)}}}") == 1:
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        during.append(text)

    # Clients are made first: making one under load can take longer than the sleep.
    clients = [metered.client() for _ in range(3)]

    def attempt(client: Any) -> str:
        try:
            invoke(client, sleepy)
            return "ran"
        except ClientError as err:
            return str(err.response["Error"]["Code"])
        finally:
            client.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    with ThreadPoolExecutor(3) as pool:
        results = sorted(pool.map(attempt, clients))
    watcher.join()
    assert results == ["TooManyRequestsException", "TooManyRequestsException", "ran"]
    busy = samples(during[0])
    assert busy[f"lambda_concurrent_executions{{{of(sleepy)}}}"] == 1
    assert busy["lambda_account_concurrent_executions"] == 1
    assert busy['lambdaplane_environments{state="busy"}'] == 1

    got = samples(scrape(metered))
    expected = {  # (function, version): (invocations, errors, throttles, cold starts)
        (ok, "$LATEST"): (3, 0, 0, 1),
        (ok, version): (2, 0, 0, 1),
        (raises, "$LATEST"): (2, 2, 0, 1),
        (crash, "$LATEST"): (1, 1, 0, 1),
        (slow, "$LATEST"): (1, 1, 0, 1),
        (broken, "$LATEST"): (2, 2, 0, 0),  # init never succeeded: no Init Duration
        (sleepy, "$LATEST"): (1, 0, 2, 1),
    }
    for (function, ver), (invocations, errors, throttles, colds) in expected.items():
        labels = of(function, ver)
        assert got[f"lambda_invocations_total{{{labels}}}"] == invocations, labels
        assert got[f"lambda_errors_total{{{labels}}}"] == errors, labels
        assert got[f"lambda_throttles_total{{{labels}}}"] == throttles, labels
        assert got[f"lambda_duration_seconds_count{{{labels}}}"] == invocations, labels
        assert got[f'lambda_duration_seconds_bucket{{{labels},le="+Inf"}}'] == invocations
        assert got[f"lambda_init_duration_seconds_count{{{labels}}}"] == colds, labels
        if os.geteuid() == 0 and function in (ok, raises, sleepy):  # cgroups: a peak to read
            assert got[f"lambda_max_memory_used_bytes_count{{{labels}}}"] == invocations
    # Durations land in the right buckets: the sleeper ~1.5 s, the timeout at 1 s.
    assert got[f'lambda_duration_seconds_bucket{{{of(sleepy)},le="1"}}'] == 0
    assert got[f'lambda_duration_seconds_bucket{{{of(sleepy)},le="2.5"}}'] == 1
    assert got[f'lambda_duration_seconds_bucket{{{of(slow)},le="0.5"}}'] == 0
    assert got[f'lambda_duration_seconds_bucket{{{of(slow)},le="2.5"}}'] == 1
    assert got[f"lambda_duration_seconds_sum{{{of(sleepy)}}}"] >= 1.5
    assert got[f'lambda_duration_seconds_bucket{{{of(broken)},le="0.0005"}}'] == 2
    # Nothing runs now; the limit is the flag's.
    assert got[f"lambda_concurrent_executions{{{of(sleepy)}}}"] == 0
    assert got["lambda_account_concurrent_executions"] == 0
    assert got["lambda_account_concurrency_limit"] == 1
    assert got['lambdaplane_environments{state="busy"}'] == 0
    assert got['lambdaplane_environments{state="idle"}'] >= 3  # ok x2, raises, sleepy
    # The first name of the endpoint serves the same counters; deploy-alias reads them.
    legacy = samples(scrape(metered, "/_lambdaplane/metrics"))
    assert {k: v for k, v in legacy.items() if k.startswith("lambda_invocations_total")} == {
        k: v for k, v in got.items() if k.startswith("lambda_invocations_total")
    }
    assert read_invocations(metered.endpoint, raises) == {"$LATEST": Tally(0, 2)}
    assert read_invocations(metered.endpoint, ok) == {"$LATEST": Tally(3, 0), version: Tally(2, 0)}


def test_asynchronous_events_are_counted_exactly(metered: ServerProcess, lam: Any) -> None:
    ok = deploy(lam, "def handler(event, context):\n    return event\n", "aok")
    version = lam.publish_version(FunctionName=ok)["Version"]
    lam.create_alias(FunctionName=ok, Name="live", FunctionVersion=version)
    fail = deploy(
        lam,
        "def handler(event, context):\n    raise RuntimeError('dead')\n",
        "afail",
        DeadLetterConfig={"TargetArn": NOWHERE_QUEUE},
    )
    lam.put_function_event_invoke_config(
        FunctionName=fail,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": NOWHERE_QUEUE}},
    )
    for target in (ok, ok, f"{ok}:live", fail):
        response = lam.invoke(FunctionName=target, InvocationType="Event", Payload=b"{}")
        assert response["Payload"].read() == b""

    def settled() -> dict[str, float]:
        got = samples(scrape(metered))
        return got if got["lambdaplane_async_queue_depth"] == 0 else {}

    deadline = time.monotonic() + 30
    while not (got := settled()):
        assert time.monotonic() < deadline, "the queue did not drain"
        time.sleep(0.1)

    def fq(function: str, qualifier: str = "$LATEST") -> str:
        return f'function="{function}",qualifier="{qualifier}"'

    assert got[f"lambda_async_events_received_total{{{fq(ok)}}}"] == 2
    assert got[f"lambda_async_events_received_total{{{fq(ok, 'live')}}}"] == 1
    assert got[f"lambda_async_events_received_total{{{fq(fail)}}}"] == 1
    assert got[f"lambda_async_event_age_seconds_count{{{fq(ok)}}}"] == 2
    assert got[f"lambda_async_event_age_seconds_count{{{fq(ok, 'live')}}}"] == 1
    assert got[f"lambda_async_event_age_seconds_count{{{fq(fail)}}}"] == 2  # 1 + 1 retry
    assert got[f'lambda_async_event_age_seconds_bucket{{{fq(fail)},le="0.01"}}'] <= 1
    # Invocations are counted by the version that ran: the alias's event ran version 1.
    assert got[f"lambda_invocations_total{{{of(ok)}}}"] == 2
    assert got[f"lambda_invocations_total{{{of(ok, version)}}}"] == 1
    assert got[f"lambda_invocations_total{{{of(fail)}}}"] == 2
    assert got[f"lambda_errors_total{{{of(fail)}}}"] == 2
    dropped = f'lambda_async_events_dropped_total{{{fq(fail)},reason="retries_exhausted"}}'
    assert got[dropped] == 1
    assert not any(k.startswith(f'lambda_async_events_dropped_total{{function="{ok}"') for k in got)
    assert got[f"lambda_destination_delivery_failures_total{{{fq(fail)}}}"] == 1
    assert got[f"lambda_dead_letter_errors_total{{{fq(fail)}}}"] == 1


def signed_headers(server: ServerProcess, secret: str | None = None) -> dict[str, str]:
    request = AWSRequest(method="GET", url=server.endpoint + "/metrics")
    credentials = Credentials(server.access_key_id, secret or server.secret_access_key)
    SigV4Auth(credentials, "lambda", server.region).add_auth(request)
    return dict(request.headers.items())


def status_of(server: ServerProcess, headers: dict[str, str]) -> int:
    try:
        scrape(server, **headers)
    except urllib.error.HTTPError as err:
        with err:
            assert b'"message"' in err.read()
            return err.code
    return 200


def test_metrics_behind_a_token_or_a_signature(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", "--metrics-auth", "token")
    try:
        token = (tmp_path / "data" / "metrics-token").read_text().strip()
        assert (tmp_path / "data" / "metrics-token").stat().st_mode & 0o777 == 0o600
        assert status_of(srv, {"Authorization": f"Bearer {token}"}) == 200
        assert status_of(srv, {"Authorization": "Bearer not-the-token"}) == 403
        assert status_of(srv, signed_headers(srv)) == 200
        assert status_of(srv, signed_headers(srv, secret="wrong")) == 403
        try:
            scrape(srv)
        except urllib.error.HTTPError as err:
            assert err.code == 401
            assert err.headers["www-authenticate"] == 'Bearer realm="lambdaplane metrics"'
            err.close()
        else:
            raise AssertionError("the metrics were served without credentials")
        credentials = (srv.access_key_id, srv.secret_access_key, None)
        assert read_invocations(srv.endpoint, "absent", credentials=credentials) == {}
    finally:
        assert srv.stop() == 0, srv.log()


def test_metrics_behind_a_signature(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", "--metrics-auth", "sigv4")
    try:
        assert status_of(srv, {}) == 401
        assert status_of(srv, {"Authorization": "Bearer anything"}) == 401
        assert status_of(srv, signed_headers(srv)) == 200
        assert not (tmp_path / "data" / "metrics-token").exists()
    finally:
        assert srv.stop() == 0, srv.log()


def test_deploy_alias_reads_signed_metrics(tmp_path: Path) -> None:
    """With --metrics-auth sigv4 (the default off loopback) deploy-alias still sees the
    new version's invocations: it signs its reads of /metrics."""
    srv = start_server(tmp_path / "data", "--metrics-auth", "sigv4")
    lam = srv.client()
    try:
        name = deploy(lam, "def handler(event, context):\n    return 1\n", "dep")
        old = lam.publish_version(FunctionName=name)["Version"]
        lam.update_function_configuration(FunctionName=name, Description="v2")
        wait_settled(lam, name)
        new = lam.publish_version(FunctionName=name)["Version"]
        lam.create_alias(FunctionName=name, Name="live", FunctionVersion=old)
        for _ in range(3):
            invoke(lam, name, new)
        command = [
            *("deploy-alias", name, "live", new, "--canary", "50", "--interval", "1s"),
            *("--poll", "0.2s", "--min-invocations", "1", "--endpoint", srv.endpoint),
        ]
        done = subprocess.run(
            [sys.executable, "-m", "lambdaplane", *command],
            env=srv.cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert lam.get_alias(FunctionName=name, Name="live")["FunctionVersion"] == new
    finally:
        lam.close()
        assert srv.stop() == 0, srv.log()
