"""The per-function scaling rate (``--burst-limit``): beyond it, a new environment is
refused with AWS's throttle, while warm environments keep serving.

Invocations are held on a gate file (see test_reserved_concurrency.py), so the
environments each test counts are certainly busy at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lambdaplane.testing import ServerProcess, start_server
from tests.integration.test_async import wait_for
from tests.integration.test_reserved_concurrency import (
    gate,
    held_function,
    invoke_outcome,
    running,
)


@pytest.fixture(scope="module")
def slow_scaling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("burst"), "--burst-limit", "2")
    yield srv
    assert srv.stop() == 0, srv.log()


@pytest.mark.parametrize(
    ("reserved", "reason"),
    [
        (None, "FunctionInvocationRateLimitExceeded"),
        (5, "ReservedFunctionInvocationRateLimitExceeded"),
    ],
)
def test_new_environments_beyond_the_burst_limit_are_throttled(
    slow_scaling: ServerProcess, role: str, reserved: int | None, reason: str
) -> None:
    lam = slow_scaling.client()
    name = held_function(lam, role, "burst")
    if reserved is not None:
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)
    release: Path = gate(slow_scaling, lam, name)
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(invoke_outcome, slow_scaling, name, n) for n in range(3)]
        # Two new environments are allowed per 10 s; both are held, so the third
        # invocation needs a third environment, and is refused.
        wait_for(lambda: sum(f.done() for f in futures) == 1, timeout=60)
        assert [f.result() for f in futures if f.done()] == [reason]
        wait_for(lambda: len(running(slow_scaling, name)) == 2, timeout=30)
        release.touch()
        assert sorted(f.result(timeout=60) for f in futures if f.result() != reason) == sorted(
            int(m.split()[1]) for m in running(slow_scaling, name)
        )
    # Warm environments take no allowance: sequential invocations keep succeeding.
    for n in range(5):
        assert invoke_outcome(slow_scaling, name, 100 + n) == 100 + n
    lam.close()


def test_the_reason_is_one_aws_defines() -> None:
    # botocore's ThrottleReason enum is the list of reasons AWS sends with a 429.
    import botocore.session

    model = botocore.session.get_session().get_service_model("lambda")
    reasons = model.shape_for("ThrottleReason").enum
    assert "FunctionInvocationRateLimitExceeded" in reasons
    assert "ReservedFunctionInvocationRateLimitExceeded" in reasons
