"""What the RabbitMQ and ActiveMQ event source tests share: the recording function, and
reading back what it saw (its ``ESM {...}`` log lines, from the server's log store)."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from lambdaplane.testing import ServerProcess, make_zip
from tests.integration.helpers import RUNTIME, unique_name, wait_settled
from tests.integration.test_esm_sqs import invocations, wait_for

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
BROKER_ARN = "arn:aws:mq:us-east-1:000000000000:broker:{name}:b-{uuid}"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:{name}"

# Prints what it received; raises for a message asking to ("boom": always, "fail": only
# on its first delivery).
HANDLER = textwrap.dedent(
    """
    import base64, json

    def handler(event, context):
        if event.get("eventSource") == "aws:rmq":
            [messages] = event["rmqMessagesByQueue"].values()
        else:
            messages = event["messages"]
        seen = []
        for m in messages:
            data = base64.b64decode(m["data"]).decode(errors="replace")
            seen.append({"data": data, "redelivered": m["redelivered"]})
        raised = False
        for s in seen:
            try:
                body = json.loads(s["data"])
            except ValueError:
                continue
            if isinstance(body, dict) and (body.get("boom") or body.get("fail") and not s["redelivered"]):
                raised = True
        print("ESM " + json.dumps({"seen": seen, "raised": raised, "event": event}))
        if raised:
            raise RuntimeError("boom")
        return "ok"
    """
)


def broker_arn(name: str) -> str:
    return BROKER_ARN.format(name=name, uuid="9bcfa592-423a-4942-879d-eb284b418fc8")


def secret_arn(name: str) -> str:
    return SECRET_ARN.format(name=name)


def deploy(lam: Any) -> str:
    name = unique_name("esm-mq")
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": HANDLER})},
        Timeout=3,
    )
    wait_settled(lam, name)
    return name


def map_queue(lam: Any, function: str, broker: str, queue: str, secret: str, **extra: Any) -> str:
    access = [{"Type": "BASIC_AUTH", "URI": secret}, *extra.pop("access", [])]
    uuid: str = lam.create_event_source_mapping(
        FunctionName=function,
        EventSourceArn=broker,
        Queues=[queue],
        SourceAccessConfigurations=access,
        **extra,
    )["UUID"]
    wait_for(lambda: lam.get_event_source_mapping(UUID=uuid)["State"] == "Enabled", 10)
    return uuid


def processed(server: ServerProcess, function: str) -> list[Any]:
    """The data of every message an invocation took successfully, in processing order."""
    done = []
    for call in invocations(server, function):
        if not call["raised"]:
            done += [json.loads(s["data"]) for s in call["seen"]]
    return done


def wait_processed(server: ServerProcess, function: str, count: int, timeout: float = 20) -> Any:
    return wait_for(
        lambda: (d := processed(server, function)) and len(d) >= count and d,
        timeout,
        f"{count} messages processed",
    )


__all__ = ["invocations", "wait_for"]
