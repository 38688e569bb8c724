"""Routing asynchronous outcomes: OnSuccess/OnFailure destinations and dead-letter queues.

The contract the delivery workers rely on:

- ``invocation_record(...)`` builds AWS's invocation record for a destination.
- ``DestinationRouter.deliver(record, destination_arn)`` sends it: a Lambda function
  (asynchronous invoke of that function), an SQS queue, an SNS topic or an EventBridge bus.
- ``DestinationRouter.dead_letter(target_arn, payload, request_id, error_code, error_message)``
  sends the original event to the function's DeadLetterConfig target (SQS or SNS) with
  AWS's message attributes.
Both raise nothing for a destination that cannot be reached: they log it and return
False, so an event is never lost because a destination is down (and a worker never
re-runs a function because its outcome could not be routed).

SQS, SNS and EventBridge are reached through botocore clients against configured endpoints
(real AWS or any compatible server), one client per service, made on first use. Every call
runs in a worker thread, so a slow peer holds a thread, never the event loop. Credentials are
always explicit, so botocore never searches the environment or probes instance metadata, and
AWS_PROFILE is ignored.
All destinations of one service go to that service's endpoint, whatever region their ARN
names. The messages themselves are pure functions in ``dest_messages``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, assert_never

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambdaplane.asyncinvoke.dest_arns import (
    EventBusTarget,
    FunctionTarget,
    QueueTarget,
    TopicTarget,
    parse_target,
)
from lambdaplane.asyncinvoke.dest_messages import (
    dead_letter_attributes,
    event_bridge_entry,
    invocation_record,
    payload_text,
    record_json,
    record_timestamp,
)

__all__ = ["DestinationRouter", "invocation_record", "record_timestamp"]

log = logging.getLogger("lambdaplane.destinations")

DUMMY_CREDENTIALS = ("lambdaplane", "lambdaplane")
SERVICES = ("sqs", "sns", "events")
_NO_PROFILE = {"profile": (None, None, None, None)}  # botocore session variable, read from nowhere

InvokeAsync = Callable[[str, bytes], Awaitable[None]]
Attributes = dict[str, dict[str, str]]


class _Refused(Exception):
    """The peer answered but did not take the message (e.g. a failed PutEvents entry)."""


class DestinationRouter:
    """Sends invocation records and dead-letter messages to where a function's config says.

    ``endpoints`` maps ``"sqs"``, ``"sns"`` and ``"events"`` to endpoint URLs (any other key
    is a ValueError); a service without one cannot be delivered to. ``invoke_async(
    function_arn, payload)`` queues an asynchronous invocation of a lambdaplane function.
    Call ``close()`` when done.
    """

    def __init__(
        self,
        *,
        endpoints: Mapping[str, str],
        region: str,
        invoke_async: InvokeAsync,
        credentials: tuple[str, str] | None = None,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
    ) -> None:
        unknown = set(endpoints) - set(SERVICES)
        if unknown:
            raise ValueError(f"endpoints for unknown services: {sorted(unknown)}")
        self._endpoints = dict(endpoints)
        self._region = region
        self._invoke_async = invoke_async
        self._credentials = credentials or DUMMY_CREDENTIALS
        self._config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": 2},
        )
        # Guards the session, the clients and the queue URLs, all used from worker threads.
        self._lock = threading.Lock()
        self._session: Any = None
        self._clients: dict[str, Any] = {}
        self._queue_urls: dict[str, str] = {}

    async def deliver(self, record: dict[str, Any], destination_arn: str) -> bool:
        """Send an invocation record to a destination; False (logged) if it did not arrive."""
        try:
            target = parse_target(destination_arn)
        except ValueError as err:
            log.warning("cannot deliver %s: %s", _describe(record), err)
            return False
        body = record_json(record)
        match target:
            case FunctionTarget():
                return await self._invoke_function(target, body, record)
            case QueueTarget() as queue:
                return await self._call(
                    "sqs", queue.arn, lambda c: self._send_message(c, queue, body, None)
                )
            case TopicTarget(arn=topic):
                return await self._call(
                    "sns", topic, lambda c: c.publish(TopicArn=topic, Message=body)
                )
            case EventBusTarget(arn=bus):
                entry = event_bridge_entry(record, bus)
                return await self._call("events", bus, lambda c: _put_event(c, entry))
            case _:
                assert_never(target)

    async def dead_letter(
        self, target_arn: str, payload: bytes, request_id: str, error_code: str, error_message: str
    ) -> bool:
        """Send the original event, as-is, to an SQS queue or SNS topic with AWS's DLQ
        attributes; False (logged) if it did not arrive."""
        try:
            target = parse_target(target_arn)
        except ValueError as err:
            log.warning("cannot dead-letter event %s: %s", request_id, err)
            return False
        body = payload_text(payload)
        attributes = dead_letter_attributes(request_id, error_code, error_message)
        match target:
            case QueueTarget() as queue:
                return await self._call(
                    "sqs", queue.arn, lambda c: self._send_message(c, queue, body, attributes)
                )
            case TopicTarget(arn=topic):
                return await self._call(
                    "sns",
                    topic,
                    lambda c: c.publish(TopicArn=topic, Message=body, MessageAttributes=attributes),
                )
        log.warning(
            "cannot dead-letter event %s: %s is neither an SQS queue nor an SNS topic",
            request_id,
            target_arn,
        )
        return False

    def close(self) -> None:
        """Close the clients' connection pools; the router makes new ones if used again."""
        with self._lock:
            clients, self._clients = self._clients, {}
            self._queue_urls.clear()
        for client in clients.values():
            client.close()

    async def _invoke_function(
        self, target: FunctionTarget, body: str, record: dict[str, Any]
    ) -> bool:
        try:
            await self._invoke_async(target.arn, body.encode())
        except Exception as err:
            log.warning(
                "could not invoke destination function %s with %s: %r",
                target.arn,
                _describe(record),
                err,
            )
            return False
        return True

    async def _call(self, service: str, target_arn: str, send: Callable[[Any], object]) -> bool:
        """Run ``send(client)`` for ``service`` in a worker thread; True if it went through."""
        if service not in self._endpoints:
            log.warning("no %s endpoint is configured: nothing sent to %s", service, target_arn)
            return False
        try:
            await asyncio.to_thread(lambda: send(self._client(service)))
        except (BotoCoreError, ClientError, _Refused) as err:
            log.warning("sending to %s failed: %s", target_arn, err)
            return False
        except Exception:
            log.exception("sending to %s failed unexpectedly", target_arn)
            return False
        return True

    def _client(self, service: str) -> Any:
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                if self._session is None:
                    # AWS_PROFILE names the operator's CLI profile, not ours: a profile missing
                    # from ~/.aws/config must not stop deliveries.
                    self._session = botocore.session.Session(session_vars=_NO_PROFILE)
                key, secret = self._credentials
                client = self._session.create_client(
                    service,
                    endpoint_url=self._endpoints[service],
                    region_name=self._region,
                    aws_access_key_id=key,
                    aws_secret_access_key=secret,
                    config=self._config,
                )
                self._clients[service] = client
            return client

    def _send_message(
        self, client: Any, queue: QueueTarget, body: str, attributes: Attributes | None
    ) -> None:
        url = self._queue_url(client, queue)
        extra = {"MessageAttributes": attributes} if attributes else {}
        try:
            client.send_message(QueueUrl=url, MessageBody=body, **extra)
        except ClientError:
            # The queue may be gone, or back under another URL: look it up afresh next time.
            with self._lock:
                self._queue_urls.pop(queue.arn, None)
            raise

    def _queue_url(self, client: Any, queue: QueueTarget) -> str:
        with self._lock:
            url = self._queue_urls.get(queue.arn)
        if url is None:
            answer = client.get_queue_url(
                QueueName=queue.name, QueueOwnerAWSAccountId=queue.account
            )
            url = str(answer["QueueUrl"])
            with self._lock:
                self._queue_urls[queue.arn] = url
        return url


def _put_event(client: Any, entry: dict[str, Any]) -> None:
    answer = client.put_events(Entries=[entry])
    if answer.get("FailedEntryCount"):
        failed = answer["Entries"][0]
        raise _Refused(f"{failed.get('ErrorCode')}: {failed.get('ErrorMessage')}")


def _describe(record: dict[str, Any]) -> str:
    context = record.get("requestContext", {})
    return f"the {context.get('condition')} record of {context.get('requestId')}"
