"""Reserved concurrency through boto3: Put/Get/DeleteFunctionConcurrency step by step
against the scenarios recorded from AWS (TestLambdaReservedConcurrency::*,
TestLambdaFunction::*[get_function_concurrency], TestLambdaAccountSettings, and
test_lambda.py's TestLambdaConcurrency), and its enforcement on real invocations.

Held invocations wait for a file the test creates in the function's unpacked code on
the host (``/var/task`` is a read-only bind of it), so the overlap each test counts is
forced, never hoped for; who runs is counted from the function's own log lines.
"""

from __future__ import annotations

import base64
import json
import textwrap
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdaplane.testing import ServerProcess, make_zip
from tests.integration.helpers import RUNTIME, _reference_dir, reference, shape, unique_name
from tests.integration.helpers import wait_settled as settled
from tests.integration.test_async import messages, send_event, wait_for
from tests.integration.test_versions import create, error

ACCOUNT = "000000000000"
RESERVED = "TestLambdaReservedConcurrency"
RESERVED_REASON = "ReservedFunctionConcurrentInvocationLimitExceeded"
HELD = """
import os, time
def handler(event, context):
    print("RUNNING", event.get("n"), flush=True)
    while not os.path.exists("/var/task/gate/open"):
        time.sleep(0.01)
    return event.get("n")
"""


@cache
def recorded(test: str, step: str) -> Any:
    """A step of test_lambda.py's recordings (the API ones are ``reference``'s)."""
    data = json.loads((_reference_dir() / "test_lambda.snapshot.json").read_text())
    return data[f"tests/aws/services/lambda_/test_lambda.py::{test}"]["recorded-content"][step]


def filled(text: str, name: str = "") -> str:
    text = text.replace(
        "arn:<partition>:lambda:<region>:111111111111", f"arn:aws:lambda:us-east-1:{ACCOUNT}"
    )
    for placeholder in ("<function-name:1>", "<nonexisting-fn-name>"):
        text = text.replace(placeholder, name)
    return text.replace("<min_unreserved_concurrency>", "100")


def arn(name: str, qualifier: str | None = None) -> str:
    base = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
    return f"{base}:{qualifier}" if qualifier else base


def assert_recorded_error(err: dict[str, Any], step: dict[str, Any], name: str = "") -> None:
    """Code, message, status and the body's keys exactly as AWS sent them."""
    assert err["Error"]["Code"] == step["Error"]["Code"]
    assert err["Error"]["Message"] == filled(step["Error"]["Message"], name)
    assert err["ResponseMetadata"]["HTTPStatusCode"] == step["ResponseMetadata"]["HTTPStatusCode"]
    assert set(err) - {"ResponseMetadata"} == set(step) - {"ResponseMetadata"}


def unreserved(lam: Any) -> int:
    return int(lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"])


# -- the API, step by step ---------------------------------------------------------------


def test_function_concurrency(lam: Any, role: str) -> None:
    name = create(lam, role)
    for reserved in (0, 1):
        response = lam.put_function_concurrency(
            FunctionName=name, ReservedConcurrentExecutions=reserved
        )
        step = reference(
            f"{RESERVED}::test_function_concurrency",
            f"put_function_concurrency_with_reserved_{reserved}",
        )
        assert shape(response) == shape(step)
        assert response["ReservedConcurrentExecutions"] == reserved
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    got = lam.get_function_concurrency(FunctionName=name)
    assert got["ReservedConcurrentExecutions"] == 1
    deleted = lam.delete_function_concurrency(FunctionName=name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    after = lam.get_function_concurrency(FunctionName=name)
    step = reference(
        f"{RESERVED}::test_function_concurrency", "get_function_concurrency_after_delete"
    )
    assert shape(after) == shape(step) == {}


def test_function_concurrency_exceptions(lam: Any, role: str) -> None:
    test = f"{RESERVED}::test_function_concurrency_exceptions"
    for reserved, step in (
        (1, "put_function_concurrency_with_function_name_doesnotexist"),
        (0, "put_function_concurrency_with_function_name_doesnotexist_and_invalid_concurrency"),
    ):
        err = error(
            lam.put_function_concurrency,
            FunctionName="doesnotexist",
            ReservedConcurrentExecutions=reserved,
        )
        assert_recorded_error(err, reference(test, step))
    name = create(lam, role)
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    step = reference(test, "put_function_concurrency_with_qualified_arn")
    for qualified in (arn(name, "$LATEST"), arn(name, "1"), arn(name, "live"), f"{name}:1"):
        err = error(
            lam.put_function_concurrency, FunctionName=qualified, ReservedConcurrentExecutions=0
        )
        assert_recorded_error(err, step)
        for call in (lam.get_function_concurrency, lam.delete_function_concurrency):
            assert_recorded_error(error(call, FunctionName=qualified), step)
    assert (
        lam.get_function_concurrency(FunctionName=arn(name))["ResponseMetadata"]["HTTPStatusCode"]
        == 200
    )


def test_function_concurrency_limits(lam: Any, role: str) -> None:
    test = f"{RESERVED}::test_function_concurrency_limits"
    name = create(lam, role)
    limit = lam.get_account_settings()["AccountLimit"]["ConcurrentExecutions"]
    assert limit == 1000
    err = error(
        lam.put_function_concurrency, FunctionName=name, ReservedConcurrentExecutions=limit + 1
    )
    assert_recorded_error(err, reference(test, "put_function_concurrency_account_limit_exceeded"))
    # Leaving 99 unreserved is one too few; leaving exactly 100 is allowed.
    room = unreserved(lam)
    err = error(
        lam.put_function_concurrency, FunctionName=name, ReservedConcurrentExecutions=room - 99
    )
    assert_recorded_error(
        err, reference(test, "put_function_concurrency_below_unreserved_min_value")
    )
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=room - 100)
    assert unreserved(lam) == 100
    lam.delete_function_concurrency(FunctionName=name)
    assert unreserved(lam) == room


def test_below_zero_is_a_validation_error(raw_lam: Any, role: str) -> None:
    name = unique_name("rc")
    err = error(
        raw_lam.put_function_concurrency, FunctionName=name, ReservedConcurrentExecutions=-1
    )
    assert err["Error"]["Code"] == "ValidationException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "reservedConcurrentExecutions" in err["Error"]["Message"]
    assert "greater than or equal to 0" in err["Error"]["Message"]


def test_unknown_function_and_wrong_region(lam: Any) -> None:
    name = unique_name("missing")
    err = error(lam.get_function_concurrency, FunctionName=name)
    step = reference(
        "TestLambdaFunction::test_ops_on_nonexisting_fn[get_function_concurrency]",
        "not_found_exception",
    )
    assert_recorded_error(err, step, name)
    err = error(lam.delete_function_concurrency, FunctionName=name)
    assert err["Error"]["Message"] == f"Function not found: {arn(name)}"
    err = error(
        lam.get_function_concurrency,
        FunctionName=f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:{name}",
    )
    step = reference(
        "TestLambdaFunction::test_get_function_wrong_region[get_function_concurrency]",
        "wrong_region_exception",
    )
    assert err["Error"]["Code"] == step["Error"]["Code"]
    assert err["Error"]["Message"] == (
        "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')"
    )
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_crud_update_and_get_function(lam: Any, role: str) -> None:
    """test_lambda.py's test_lambda_concurrency_crud and test_lambda_concurrency_update."""
    name = create(lam, role)
    default = lam.get_function_concurrency(FunctionName=name)
    assert shape(default) == shape(
        recorded(
            "TestLambdaConcurrency::test_lambda_concurrency_crud",
            "get_function_concurrency_default",
        )
    )
    assert "Concurrency" not in lam.get_function(FunctionName=name)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=3)
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 3
    info = lam.get_function(FunctionName=name)
    step = recorded(
        "TestLambdaConcurrency::test_lambda_concurrency_update", "get_function_concurrency_info"
    )
    assert info["Concurrency"] == step["Concurrency"] == {"ReservedConcurrentExecutions": 3}
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    assert lam.get_function(FunctionName=name)["Concurrency"] == {"ReservedConcurrentExecutions": 0}
    lam.delete_function_concurrency(FunctionName=name)
    assert "Concurrency" not in lam.get_function(FunctionName=name)
    assert lam.get_function_concurrency(FunctionName=name).keys() == {"ResponseMetadata"}


def test_account_settings_reflect_reservations(lam: Any, role: str) -> None:
    settings = lam.get_account_settings()
    step = reference("TestLambdaAccountSettings::test_account_settings", "acc_settings_modded")
    assert sorted(settings["AccountLimit"]) == step["AccountLimit"]
    assert sorted(settings["AccountUsage"]) == step["AccountUsage"]
    before = settings["AccountLimit"]["UnreservedConcurrentExecutions"]
    name = create(lam, role)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=7)
    assert unreserved(lam) == before - 7
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=5)
    assert unreserved(lam) == before - 5
    # Deleting the function drops its reservation; a new function of the same name has none.
    lam.delete_function(FunctionName=name)
    assert unreserved(lam) == before
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": "def handler(e, c):\n    return 1\n"})},
    )
    assert lam.get_function_concurrency(FunctionName=name).keys() == {"ResponseMetadata"}


# -- enforcement -------------------------------------------------------------------------


def held_function(lam: Any, role: str, prefix: str = "held") -> str:
    """A function whose invocations wait for ``gate``; its own code, so its own gate."""
    name = unique_name(prefix)
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=role,
        Handler="handler.handler",
        Code={
            "ZipFile": make_zip(
                {"handler.py": textwrap.dedent(HELD), "gate/.keep": "", "name.txt": name}
            )
        },
        Timeout=60,
    )
    settled(lam, name)
    return name


def gate(server: ServerProcess, lam: Any, name: str) -> Path:
    """The file whose creation releases the function's held invocations."""
    sha = base64.b64decode(lam.get_function_configuration(FunctionName=name)["CodeSha256"]).hex()
    directory = server.data_dir / "code" / "unpacked" / sha / "gate"
    assert directory.is_dir(), directory
    return directory / "open"


def invoke_outcome(server: ServerProcess, name: str, n: int) -> Any:
    """The function's result, or the throttle's Reason."""
    client = server.client()  # no retries; reads wait 60 s
    try:
        response = client.invoke(FunctionName=name, Payload=json.dumps({"n": n}))
        return json.loads(response["Payload"].read())
    except ClientError as exc:
        err = exc.response
        assert err["Error"]["Code"] == "TooManyRequestsException"
        assert err["Error"]["Message"] == "Rate Exceeded."
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert err["Type"] == "User"
        return err["Reason"]
    finally:
        client.close()


def running(server: ServerProcess, name: str) -> list[str]:
    return [m for m in messages(server, name) if m.startswith("RUNNING")]


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(16) as executor:
        yield executor


def burst_of(pool: ThreadPoolExecutor, call: Callable[[int], Any], count: int) -> list[Future[Any]]:
    return [pool.submit(call, n) for n in range(count)]


def test_reserved_two_under_ten_parallel_invokes(
    server: ServerProcess, lam: Any, role: str, pool: ThreadPoolExecutor
) -> None:
    name = held_function(lam, role)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
    release = gate(server, lam, name)
    futures = burst_of(pool, lambda n: invoke_outcome(server, name, n), 10)
    # The two that run cannot end before the gate opens: the other eight are throttled.
    wait_for(lambda: sum(f.done() for f in futures) == 8, timeout=60)
    throttled = [f.result() for f in futures if f.done()]
    assert throttled == [RESERVED_REASON] * 8
    wait_for(lambda: len(running(server, name)) == 2, timeout=30)
    release.touch()
    results = [f.result(timeout=60) for f in futures]
    ran = sorted(r for r in results if isinstance(r, int))
    assert len(ran) == 2
    assert sorted(int(m.split()[1]) for m in running(server, name)) == ran
    # Released, the function is warm and within its reservation again.
    assert invoke_outcome(server, name, 42) == 42


def test_reservation_counts_all_versions_and_aliases_together(
    server: ServerProcess, lam: Any, role: str
) -> None:
    """test_lambda_concurrency_block: a held version takes the reservation of 1 from $LATEST."""
    name = held_function(lam, role)
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    release = gate(server, lam, name)
    with ThreadPoolExecutor(1) as one:
        held = one.submit(lambda: invoke_outcome(server, f"{name}:live", 1))
        wait_for(lambda: len(running(server, name)) == 1, timeout=30)
        step = recorded(
            "TestLambdaConcurrency::test_lambda_concurrency_block", "invoke_latest_first_exc"
        )
        for qualifier in (None, "1", "live"):
            err = error(
                lam.invoke,
                FunctionName=name,
                Payload=b'{"n": 2}',
                **({"Qualifier": qualifier} if qualifier else {}),
            )
            assert_recorded_error(err, step)
            assert err["Reason"] == step["Reason"]
        release.touch()
        assert held.result(timeout=60) == 1


def test_reserved_zero_disables_sync_and_async(server: ServerProcess, lam: Any, role: str) -> None:
    """test_lambda.py's test_reserved_concurrency: 429 for a synchronous invoke, and an
    event goes to the failure destination at once with condition ZeroReservedConcurrency."""
    name = create(lam, role)
    recorder = unique_name("record")
    lam.create_function(
        FunctionName=recorder,
        Runtime=RUNTIME,
        Role=role,
        Handler="handler.handler",
        Code={
            "ZipFile": make_zip(
                {
                    "handler.py": "import json\ndef handler(event, context):\n"
                    "    print('RECORD ' + json.dumps(event))\n"
                }
            )
        },
    )
    settled(lam, recorder)
    test = "TestLambdaConcurrency::test_reserved_concurrency"
    put = lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    assert shape(put) == shape(recorded(test, "put_reserved"))
    err = error(lam.invoke, FunctionName=name, Payload=b"{}")
    step = recorded(test, "exc_no_cap_requestresponse")
    assert_recorded_error(err, step)
    assert err["Reason"] == step["Reason"] == RESERVED_REASON
    lam.put_function_event_invoke_config(
        FunctionName=name,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": arn(recorder)}},
    )
    accepted = send_event(lam, name)
    assert accepted["StatusCode"] == recorded(test, "invoke_result")["StatusCode"] == 202

    def records() -> list[dict[str, Any]]:
        return [
            json.loads(m[len("RECORD ") :])
            for m in messages(server, recorder)
            if m.startswith("RECORD ")
        ]

    wait_for(lambda: len(records()) == 1, timeout=30)
    record = records()[0]
    expected = recorded(test, "msg")["Body"]
    assert shape(record) == shape(expected)
    assert record["requestContext"]["condition"] == "ZeroReservedConcurrency"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["requestContext"]["functionArn"] == arn(name, "$LATEST")
    assert record["requestPayload"] == {}
    assert not [m for m in messages(server, name) if m.startswith("START")]
    # Deleting the reservation turns the function back on.
    lam.delete_function_concurrency(FunctionName=name)
    deadline = time.monotonic() + 5
    while True:  # the invoke path's copy of the reservations is at most 1 s old
        try:
            assert lam.invoke(FunctionName=name, Payload=b"{}")["StatusCode"] == 200
            break
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_unreserved_functions_share_what_is_left(
    tmp_path: Path, role: str, pool: ThreadPoolExecutor
) -> None:
    """Of an account limit of 101, 100 stay unreserved: 1 may be reserved, no more. A
    function at its reservation is throttled; the unreserved ones are not."""
    from lambdaplane.testing import start_server

    srv = start_server(tmp_path / "data", "--account-concurrency", "101")
    try:
        lam = srv.client()
        reserved_fn = held_function(lam, role, "res")
        lam.put_function_concurrency(FunctionName=reserved_fn, ReservedConcurrentExecutions=1)
        assert unreserved(lam) == 100
        err = error(
            lam.put_function_concurrency, FunctionName=reserved_fn, ReservedConcurrentExecutions=2
        )
        assert err["Error"]["Code"] == "InvalidParameterValueException"
        release = gate(srv, lam, reserved_fn)
        held = pool.submit(invoke_outcome, srv, reserved_fn, 1)
        wait_for(lambda: len(running(srv, reserved_fn)) == 1, timeout=30)
        # The reserved function is at its cap; the others still have their 100.
        assert invoke_outcome(srv, reserved_fn, 2) == RESERVED_REASON
        other = create(lam, role)
        assert lam.invoke(FunctionName=other, Payload=b"{}")["StatusCode"] == 200
        release.touch()
        assert held.result(timeout=60) == 1
        lam.close()
    finally:
        assert srv.stop() == 0, srv.log()


def test_provisioned_environments_count_against_the_reservation(lam: Any, role: str) -> None:
    """test_lambda_concurrency_block / test_reserved_provisioned_overlap: with a reservation
    of 1 held by version 1's provisioned environment, $LATEST is throttled while version 1
    runs; a reservation below the provisioned total is refused."""
    block = "TestLambdaConcurrency::test_lambda_concurrency_block"
    name = create(lam, role)
    lam.publish_version(FunctionName=name)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    assert lam.invoke(FunctionName=name, Payload=b"{}")["StatusCode"] == 200
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1
    )
    deadline = time.monotonic() + 30
    while (
        lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="1")["Status"]
        != "READY"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    for step in ("invoke_latest_first_exc", "invoke_latest_second_exc"):
        err = error(lam.invoke, FunctionName=name, Payload=b"{}")
        assert_recorded_error(err, recorded(block, step))
        assert err["Reason"] == RESERVED_REASON
        assert lam.invoke(FunctionName=name, Qualifier="1", Payload=b"{}")["ExecutedVersion"] == "1"
    err = error(lam.put_function_concurrency, FunctionName=name, ReservedConcurrentExecutions=0)
    overlap = recorded(
        "TestLambdaConcurrency::test_reserved_provisioned_overlap",
        "reserved_lower_than_provisioned_exc",
    )
    assert err["Error"]["Code"] == overlap["Error"]["Code"]
    assert err["Error"]["Message"] == overlap["Error"]["Message"].replace("  1 ", "  0 ").replace(
        "[2]", "[1]"
    )
    assert set(err) - {"ResponseMetadata"} == set(overlap) - {"ResponseMetadata"}
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
