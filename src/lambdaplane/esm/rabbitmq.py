"""The RabbitMQ poller (``aws:rmq`` events), over AMQP 0-9-1 with aiormq.

The event is AWS's: ``rmqMessagesByQueue`` maps ``"<queue>::<virtual host>"`` to the
messages, each with its ``basicProperties`` as Lambda's Java poller renders them (string
header values as ``{"bytes": [...]}`` of signed bytes, timestamps as Java's default date
format, absent properties as null), ``redelivered`` and the base64 ``data``.

A failed batch is negatively acknowledged with requeue (so a quorum queue's
``x-delivery-limit`` and dead-letter exchanges apply, as on AWS) and its channel is
reopened, which returns the messages received after it too: the queue is consumed again
in its own order, the failed messages first, marked redelivered.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import decimal
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiormq
from aiormq.abc import DeliveredMessage

from lambdaplane.esm.batching import record_bytes
from lambdaplane.esm.mq import (
    CONNECT_TIMEOUT_SECONDS,
    BrokerProblem,
    Delivery,
    MqPoller,
    SessionLost,
    broker_url,
    credentials,
)
from lambdaplane.esm.poller import PollerContext

log = logging.getLogger("lambdaplane.esm.rabbitmq")

DEFAULT_VIRTUAL_HOST = "/"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# -- the event ---------------------------------------------------------------------------


def queue_key(queue: str, virtual_host: str | None) -> str:
    """The ``rmqMessagesByQueue`` key: ``"<queue>::<virtual host>"``."""
    return f"{queue}::{virtual_host or DEFAULT_VIRTUAL_HOST}"


def rmq_message(properties: Mapping[str, Any], body: bytes, redelivered: bool) -> dict[str, Any]:
    """One delivered message as an ``aws:rmq`` event message. ``properties`` are AMQP's
    basic properties under pamqp's names (``content_type``, ``message_type`` ...)."""
    return {
        "basicProperties": {
            "contentType": properties.get("content_type"),
            "contentEncoding": properties.get("content_encoding"),
            "headers": java_value(properties.get("headers")),
            "deliveryMode": properties.get("delivery_mode"),
            "priority": properties.get("priority"),
            "correlationId": properties.get("correlation_id"),
            "replyTo": properties.get("reply_to"),
            "expiration": properties.get("expiration"),
            "messageId": properties.get("message_id"),
            "timestamp": java_value(properties.get("timestamp")),
            "type": properties.get("message_type"),
            "userId": properties.get("user_id"),
            "appId": properties.get("app_id"),
            "clusterId": properties.get("cluster_id") or None,
            "bodySize": len(body),
        },
        "redelivered": redelivered,
        "data": base64.b64encode(body).decode(),
    }


def java_value(value: Any) -> Any:
    """An AMQP field value as Lambda's poller serializes it (the RabbitMQ Java client's
    types through Gson): long strings as ``{"bytes": [signed bytes]}``, byte arrays as
    lists of signed bytes, timestamps as ``"Jan 1, 1970, 12:33:41 AM"`` (UTC)."""
    if isinstance(value, str):
        return {"bytes": _signed(value.encode())}
    if isinstance(value, bytes):  # a long string that is not UTF-8
        return {"bytes": _signed(value)}
    if isinstance(value, bytearray | memoryview):
        return _signed(bytes(value))
    if isinstance(value, datetime.datetime):
        return java_date(value)
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(k): java_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [java_value(v) for v in value]
    return value


def java_date(value: datetime.datetime) -> str:
    """Java's default date format in the US locale, in UTC: ``Jan 1, 1970, 12:33:41 AM``."""
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC)
    hour = value.hour % 12 or 12
    half = "AM" if value.hour < 12 else "PM"
    month = _MONTHS[value.month - 1]
    return f"{month} {value.day}, {value.year}, {hour}:{value:%M:%S} {half}"


def _signed(data: bytes) -> list[int]:
    return [b - 256 if b > 127 else b for b in data]


# -- the session -------------------------------------------------------------------------


class RabbitSession:
    """Consumes one queue on one AMQP connection (``lambdaplane.esm.mq.Session``)."""

    def __init__(self, connection: aiormq.abc.AbstractConnection, queue: str, prefetch: int):
        self.inbox: asyncio.Queue[Delivery | SessionLost] = asyncio.Queue()
        self._connection = connection
        self._queue = queue
        self._prefetch = prefetch
        self._channel: aiormq.abc.AbstractChannel | None = None
        self._closed = False
        connection.closing.add_done_callback(lambda closing: self._lost("connection", closing))

    @classmethod
    async def open(
        cls,
        url: str,
        username: str,
        password: str,
        virtual_host: str,
        queue: str,
        prefetch: int,
        name: str = "",
    ) -> RabbitSession:
        """Connect and consume ``queue``; BrokerProblem when the broker refuses. ``name``
        is the connection's name in the broker's management tools."""
        address = amqp_url(url, username, password, virtual_host, name)
        try:
            connection = await asyncio.wait_for(aiormq.connect(address), CONNECT_TIMEOUT_SECONDS)
        except aiormq.exceptions.ProbableAuthenticationError as err:
            raise BrokerProblem(f"The broker refused the credentials: {_reason(err)}") from err
        except (aiormq.exceptions.AMQPError, OSError, TimeoutError) as err:
            where = f"{urlsplit(url).netloc} (virtual host {virtual_host})"
            raise BrokerProblem(f"Cannot connect to {where}: {_reason(err)}") from err
        session = cls(connection, queue, prefetch)
        try:
            await session._consume()
        except aiormq.exceptions.ChannelNotFoundEntity as err:
            await session.close()
            raise BrokerProblem(
                f"Queue {queue} does not exist in virtual host {virtual_host}."
            ) from err
        except (aiormq.exceptions.AMQPError, OSError) as err:
            await session.close()
            raise BrokerProblem(f"Cannot consume queue {queue}: {_reason(err)}") from err
        except BaseException:  # cancelled: no consumer may outlive its poller
            await session.close()
            raise
        return session

    async def _consume(self) -> None:
        channel = await self._connection.channel()
        self._channel = channel

        def channel_closed(closing: asyncio.Future[Any]) -> None:
            if channel is self._channel:  # not one closed on purpose
                self._lost("channel", closing)

        channel.closing.add_done_callback(channel_closed)
        await channel.basic_qos(prefetch_count=self._prefetch)
        await channel.queue_declare(self._queue, passive=True)

        async def deliver(message: DeliveredMessage) -> None:
            if message.channel is not self._channel:
                return  # from a channel closed since: the broker gives it again
            properties = dict(message.header.properties)
            record = rmq_message(properties, message.body, bool(message.redelivered))
            tag = message.delivery_tag
            self.inbox.put_nowait(Delivery(record, record_bytes(record), tag))

        await channel.basic_consume(self._queue, deliver, no_ack=False)

    def _lost(self, what: str, closing: asyncio.Future[Any]) -> None:
        if self._closed:
            return
        reason = f"the {what} closed"
        error = None if closing.cancelled() else closing.exception()
        if error is not None and not isinstance(error, asyncio.CancelledError):
            reason += f": {_reason(error)}"
        self.inbox.put_nowait(SessionLost(reason))

    def _live_channel(self) -> aiormq.abc.AbstractChannel:
        if self._channel is None or self._channel.is_closed:
            raise SessionLost("the channel closed")
        return self._channel

    async def settle(self, deliveries: Sequence[Delivery]) -> None:
        channel = self._live_channel()
        try:  # a batch is a prefix of what is unacknowledged: one multiple ack covers it
            await channel.basic_ack(max(d.handle for d in deliveries), multiple=True)
        except aiormq.exceptions.AMQPError as err:
            raise SessionLost(_reason(err)) from err

    async def give_back(self, failed: Sequence[Delivery], settled: Sequence[Delivery]) -> None:
        channel = self._live_channel()
        try:
            for delivery in settled:
                await channel.basic_ack(delivery.handle)
            await channel.basic_nack(max(d.handle for d in failed), multiple=True, requeue=True)
            self._channel = None  # closed on purpose
            await channel.close()  # returns what was received after the batch, in order
            while not self.inbox.empty():
                item = self.inbox.get_nowait()
                if isinstance(item, SessionLost):
                    raise item
            await self._consume()
        except aiormq.exceptions.AMQPError as err:
            raise SessionLost(_reason(err)) from err

    async def reject(self, delivery: Delivery) -> None:
        try:
            await self._live_channel().basic_reject(delivery.handle, requeue=False)
        except aiormq.exceptions.AMQPError as err:
            raise SessionLost(_reason(err)) from err

    async def close(self) -> None:
        self._closed = True
        try:
            await self._connection.close()
        except Exception as err:  # already gone: nothing is left to give back
            log.debug("closing an AMQP connection: %s", err)


def amqp_url(url: str, username: str, password: str, virtual_host: str, name: str = "") -> str:
    """The broker's URL with these credentials, virtual host and connection name."""
    base = urlsplit(url)
    login = f"{quote(username, safe='')}:{quote(password, safe='')}"
    host = f"{base.hostname or '127.0.0.1'}" + (f":{base.port}" if base.port else "")
    path = "/" if virtual_host == DEFAULT_VIRTUAL_HOST else "/" + quote(virtual_host, safe="")
    query = "&".join(part for part in (base.query, name and f"name={quote(name)}") if part)
    return urlunsplit((base.scheme, f"{login}@{host}", path, query, ""))


def _reason(err: BaseException | None) -> str:
    if err is None:
        return ""
    if err.args and isinstance(err.args[0], str):
        return err.args[0]
    return str(err) or type(err).__name__


# -- the poller --------------------------------------------------------------------------


class RabbitMqPoller(MqPoller):
    """Polls one RabbitMQ queue for one mapping (see the module docstring)."""

    def envelope(self) -> tuple[bytes, bytes]:
        arn = self.mapping.event_source_arn or ""
        queue = self.mapping.queues[0] if self.mapping.queues else ""
        key = queue_key(queue, self.mapping.virtual_host)
        head = f'{{"eventSource":"aws:rmq","eventSourceArn":{json.dumps(arn)},'
        head += f'"rmqMessagesByQueue":{{{json.dumps(key)}:['
        return head.encode(), b"]}}"

    async def open_session(self, ctx: PollerContext) -> RabbitSession:
        url = broker_url(ctx)
        if not url.startswith(("amqp://", "amqps://")):
            raise BrokerProblem(f"RabbitMQ brokers are reached at amqp:// or amqps:// URLs: {url}")
        login = credentials(ctx)
        queue = self.mapping.queues[0] if self.mapping.queues else ""
        return await RabbitSession.open(
            url,
            login.username,
            login.password,
            self.mapping.virtual_host or DEFAULT_VIRTUAL_HOST,
            queue,
            min(self.mapping.batch_size, 65535),
            name=f"lambdaplane event source mapping {self.mapping.uuid}",
        )
