"""The ActiveMQ poller (``aws:mq`` events), over STOMP with stomp.py.

The broker is reached at its STOMP URL (``--mq-broker ARN=stomp://host:61613``, or
``stomp+ssl://`` as Amazon MQ serves it on 61614); the consumer subscribes with
``client-individual`` acknowledgement and a prefetch of ``BatchSize``.

The event is AWS's: ``messages`` in queue order, each with the JMS headers STOMP carries
(``messageID``, ``messageType`` — ``jms/bytes-message`` when the message has a
``content-length``, as ActiveMQ marks bytes messages, ``jms/text-message`` otherwise —
``deliveryMode``, ``replyTo``, ``priority``, ``correlationId``, ...), the base64 ``data``
and the message's own ``properties`` as strings. STOMP does not carry ActiveMQ's broker
in/out times: ``brokerInTime`` is the message's timestamp (which ActiveMQ sets on arrival
for STOMP producers) and ``brokerOutTime`` the time the poller received it.

Redelivery follows the policy AWS applies to ActiveMQ (its default ``RedeliveryPolicy``
with ``maximumRedeliveries`` 6): a failed batch goes back to the queue by closing its
subscription (ActiveMQ redelivers, in order, with ``redelivered: true``), and a message
that failed on its 7th delivery is NACKed, which ActiveMQ sends to its dead-letter queue
(``ActiveMQ.DLQ`` unless the broker's policy says otherwise). The delivery count is kept
in memory, so a restart starts it again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import stomp
from stomp.exception import StompException

from lambdaplane.esm.batching import record_bytes
from lambdaplane.esm.model import MappingConfig
from lambdaplane.esm.mq import (
    CONNECT_TIMEOUT_SECONDS,
    BrokerProblem,
    Delivery,
    MqPoller,
    SessionLost,
    broker_url,
    credentials,
)
from lambdaplane.esm.poller import Blocking, PollerContext

log = logging.getLogger("lambdaplane.esm.activemq")

MAXIMUM_REDELIVERIES = 6  # ActiveMQ's default, which Lambda uses
HEARTBEAT_MS = 10_000
ERROR_FRAME_GRACE_SECONDS = 2.0  # for the listener to record an ERROR frame that ended a connect
_REMEMBERED_FAILURES = 100_000  # message ids whose failures are counted, at most
# STOMP headers that are not message properties: the frame's own, and the JMS headers
# the event has fields for.
_NOT_PROPERTIES = frozenset(
    {
        "ack",
        "content-length",
        "correlation-id",
        "destination",
        "expires",
        "message-id",
        "persistent",
        "priority",
        "redelivered",
        "reply-to",
        "subscription",
        "timestamp",
        "type",
    }
)
_JMS_DESTINATIONS = {"/queue/": "queue://", "/topic/": "topic://"}
_JMS_DESTINATIONS |= {"/temp-queue/": "temp-queue://", "/temp-topic/": "temp-topic://"}


# -- the event ---------------------------------------------------------------------------


def mq_message(
    headers: Mapping[str, str], body: bytes, queue: str, received_ms: int
) -> dict[str, Any]:
    """One STOMP MESSAGE frame from ActiveMQ as an ``aws:mq`` event message."""
    timestamp = _int(headers.get("timestamp"))
    properties = {k: v for k, v in headers.items() if k not in _NOT_PROPERTIES}
    return {
        "messageID": headers.get("message-id"),
        "messageType": "jms/bytes-message" if "content-length" in headers else "jms/text-message",
        "deliveryMode": 2 if headers.get("persistent") == "true" else 1,
        "replyTo": jms_destination(headers.get("reply-to")),
        "type": headers.get("type"),
        "expiration": _int(headers.get("expires")),
        "priority": _int(headers.get("priority")) or 0,
        "correlationId": headers.get("correlation-id"),
        "redelivered": headers.get("redelivered") == "true",
        "destination": {"physicalName": queue},
        "data": base64.b64encode(body).decode(),
        "timestamp": timestamp,
        "brokerInTime": timestamp,
        "brokerOutTime": received_ms,
        "properties": properties or None,
    }


def jms_destination(stomp_name: str | None) -> str | None:
    """A STOMP destination (``/queue/replies``) as JMS names it (``queue://replies``)."""
    if stomp_name is None:
        return None
    for prefix, scheme in _JMS_DESTINATIONS.items():
        if stomp_name.startswith(prefix):
            return scheme + stomp_name[len(prefix) :]
    return stomp_name


def _int(value: str | None) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


# -- the session -------------------------------------------------------------------------


class _Listener(stomp.ConnectionListener):  # type: ignore[misc]
    """stomp.py's callbacks (on its receiver thread), handed to the session."""

    def __init__(self, session: StompSession) -> None:
        self._session = session

    def on_message(self, frame: Any) -> None:
        self._session.received(frame.headers, frame.body)

    def on_error(self, frame: Any) -> None:
        self._session.error = frame.headers.get("message") or str(frame.body or "")
        self._session.error_seen.set()

    def on_disconnected(self) -> None:
        self._session.lost("the broker closed the connection")

    def on_heartbeat_timeout(self) -> None:
        self._session.lost("the broker stopped answering heartbeats")


class StompSession:
    """Consumes one ActiveMQ queue on one STOMP connection (``lambdaplane.esm.mq.Session``)."""

    def __init__(
        self,
        url: str,
        queue: str,
        prefetch: int,
        blocking: Blocking,
        clock: Callable[[], float],
        failures: OrderedDict[str, int],
    ) -> None:
        self.inbox: asyncio.Queue[Delivery | SessionLost] = asyncio.Queue()
        self.error: str | None = None
        self.error_seen = threading.Event()
        self._loop = asyncio.get_running_loop()
        self._queue = queue
        self._prefetch = prefetch
        self._blocking = blocking
        self._clock = clock
        self._failures = failures
        address = urlsplit(url)
        host, port = address.hostname or "127.0.0.1", address.port or 61613
        self._where = f"{host}:{port}"
        self._connection = stomp.Connection12(
            [(host, port)],
            heartbeats=(HEARTBEAT_MS, HEARTBEAT_MS),
            reconnect_attempts_max=1,
            auto_decode=False,
            auto_content_length=False,
        )
        if address.scheme.endswith("+ssl"):
            self._connection.set_ssl(for_hosts=[(host, port)])
        self._connection.set_listener("lambdaplane", _Listener(self))
        self._ids = itertools.count(1)
        self._subscription = ""
        self._closed = threading.Event()

    async def open(self, username: str, password: str) -> None:
        """Connect and subscribe; BrokerProblem when the broker refuses."""
        opening = asyncio.ensure_future(self._blocking(self._open, username, password))
        try:
            await asyncio.shield(opening)
        except asyncio.CancelledError:  # the thread goes on: close what it opens
            opening.add_done_callback(lambda _: self._disconnect_in_background())
            raise
        except (StompException, OSError) as err:
            await self.close()
            if self.error:
                raise BrokerProblem(f"The broker refused the connection: {self.error}") from err
            detail = str(err) or "no STOMP broker answers there"
            raise BrokerProblem(f"Cannot connect to {self._where}: {detail}.") from err
        except Exception:
            await self.close()
            raise

    def _open(self, username: str, password: str) -> None:
        self._connection.connect(username, password, wait=False)
        transport = self._connection.transport
        try:
            transport.wait_for_connection(CONNECT_TIMEOUT_SECONDS)
        except StompException:
            # stomp.py ends this wait on an ERROR frame before it hands the frame to the
            # listener: give the listener the moment it needs to record why.
            if getattr(transport, "connection_error", False):
                self.error_seen.wait(ERROR_FRAME_GRACE_SECONDS)
            raise
        self._subscribe()

    def _disconnect_in_background(self) -> None:
        self._closed.set()
        threading.Thread(
            target=self._disconnect, name="lambdaplane-stomp-close", daemon=True
        ).start()

    def _disconnect(self) -> None:
        with contextlib.suppress(Exception):  # already gone: nothing is left to give back
            self._connection.disconnect()

    def _subscribe(self) -> None:
        self._subscription = f"lambdaplane-{next(self._ids)}"
        self._connection.subscribe(
            f"/queue/{self._queue}",
            id=self._subscription,
            ack="client-individual",
            headers={"activemq.prefetchSize": str(self._prefetch)},
        )

    # stomp.py's receiver thread ------------------------------------------------------

    def received(self, headers: dict[str, str], body: bytes | str) -> None:
        if headers.get("subscription") != self._subscription:
            return  # for a subscription closed since: the broker gives it again
        data = body.encode() if isinstance(body, str) else body
        record = mq_message(headers, data, self._queue, int(self._clock() * 1000))
        handle = (headers["ack"], headers["message-id"], self._subscription)
        self._put(Delivery(record, record_bytes(record), handle))

    def lost(self, reason: str) -> None:
        if not self._closed.is_set():
            self._put(SessionLost(reason))

    def _put(self, item: Delivery | SessionLost) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            self._loop.call_soon_threadsafe(self.inbox.put_nowait, item)

    # the poller's side -----------------------------------------------------------------

    async def settle(self, deliveries: Sequence[Delivery]) -> None:
        await self._call(self._ack, [d.handle for d in deliveries])
        for delivery in deliveries:
            self._failures.pop(delivery.handle[1], None)

    async def give_back(self, failed: Sequence[Delivery], settled: Sequence[Delivery]) -> None:
        await self.settle(settled)
        dead = []
        for delivery in failed:
            message_id = delivery.handle[1]
            count = self._failures.pop(message_id, 0) + 1
            if count > MAXIMUM_REDELIVERIES:
                dead.append(delivery.handle)
            else:
                self._failures[message_id] = count
        while len(self._failures) > _REMEMBERED_FAILURES:
            self._failures.popitem(last=False)
        if dead:
            log.info(
                "%d message(s) of %s failed after %d redeliveries: to the dead-letter queue",
                len(dead),
                self._queue,
                MAXIMUM_REDELIVERIES,
            )
            await self._call(self._nack, dead)
        await self._call(self._resubscribe)
        kept = []
        while not self.inbox.empty():  # drop what the closed subscription had sent
            item = self.inbox.get_nowait()
            if isinstance(item, SessionLost) or item.handle[2] == self._subscription:
                kept.append(item)
        for item in kept:
            self.inbox.put_nowait(item)

    async def reject(self, delivery: Delivery) -> None:
        await self._call(self._nack, [delivery.handle])

    async def close(self) -> None:
        self._closed.set()
        await self._blocking(self._disconnect)

    async def _call(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            await self._blocking(fn, *args)
        except (StompException, OSError) as err:
            raise SessionLost(str(err) or type(err).__name__) from err

    def _ack(self, handles: list[tuple[str, str, str]]) -> None:
        for ack_id, _, _ in handles:
            self._connection.ack(ack_id)

    def _nack(self, handles: list[tuple[str, str, str]]) -> None:
        for ack_id, _, _ in handles:
            self._connection.nack(ack_id)

    def _resubscribe(self) -> None:
        """Closing the subscription returns its unacknowledged messages, in order."""
        old = self._subscription
        self._subscription = ""  # frames still arriving for it are dropped
        self._connection.unsubscribe(old)
        self._subscribe()


# -- the poller --------------------------------------------------------------------------


class ActiveMqPoller(MqPoller):
    """Polls one ActiveMQ queue for one mapping (see the module docstring)."""

    def __init__(self, mapping: MappingConfig) -> None:
        super().__init__(mapping)
        self._failures: OrderedDict[str, int] = OrderedDict()

    def envelope(self) -> tuple[bytes, bytes]:
        arn = self.mapping.event_source_arn or ""
        head = f'{{"eventSource":"aws:mq","eventSourceArn":{json.dumps(arn)},"messages":['
        return head.encode(), b"]}"

    async def open_session(self, ctx: PollerContext) -> StompSession:
        url = broker_url(ctx)
        if not url.startswith(("stomp://", "stomp+ssl://")):
            raise BrokerProblem(
                f"lambdaplane reaches ActiveMQ over STOMP: configure the broker's stomp:// or "
                f"stomp+ssl:// URL, not {url}"
            )
        login = credentials(ctx)
        queue = self.mapping.queues[0] if self.mapping.queues else ""
        session = StompSession(
            url,
            queue,
            min(self.mapping.batch_size, 65535),
            ctx.blocking,
            ctx.clock,
            self._failures,
        )
        await session.open(login.username, login.password)
        return session
