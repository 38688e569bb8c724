"""Amazon MQ pollers: what the RabbitMQ (``aws:rmq``) and ActiveMQ (``aws:mq``) ones share.

As Lambda does it, with one consumer per mapping (AWS allows 5 for ActiveMQ, 1 for
RabbitMQ; one keeps the queue's order without more machinery):

- A poller opens a *session* on the broker that consumes the mapping's one queue with
  manual acknowledgement and a prefetch of ``BatchSize`` (``rabbitmq.py`` speaks AMQP
  0-9-1, ``activemq.py`` STOMP). The broker's URL comes from ``--mq-broker ARN=URL`` and
  the credentials of its ``BASIC_AUTH`` secret from ``--esm-secret`` (no Secrets Manager).
- A batch is invoked when it holds ``BatchSize`` messages, when its window ends
  (``MaximumBatchingWindowInSeconds``; 0 means AWS's Amazon MQ default of 500 ms), or
  before one more message would take the payload past 6 MB. A message too large for any
  payload is rejected to the broker's dead-letter handling (AWS drops it).
- ``FilterCriteria`` apply to each message's ``data``, base64-decoded and parsed when it
  is a JSON object or array; messages no filter matches are acknowledged unseen.
- Nothing is acknowledged before the function took the batch. On a function error the
  session gives the batch back to the broker (redelivered, in order, with
  ``redelivered: true``; the broker's or AWS's redelivery policy decides when a message
  goes to a dead-letter queue) and the poller waits ActiveMQ's default redelivery delay
  (1 s, the policy Lambda uses). Throttles and a function that cannot run keep the batch
  and retry it with back-off.
- A dropped connection (a restart, a broker restart) returns every unacknowledged
  message to the queue: nothing is lost, and nothing is processed twice unless an
  invocation finished without its acknowledgement reaching the broker.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lambdaplane.esm.batching import Batch
from lambdaplane.esm.batching import payload as records_payload
from lambdaplane.esm.model import MAX_BATCH_PAYLOAD_BYTES, MappingConfig
from lambdaplane.esm.poller import InvokeOutcome, InvokeUnavailable, PollerContext, Throttled

log = logging.getLogger("lambdaplane.esm.mq")

DEFAULT_WINDOW_SECONDS = 0.5  # AWS's batching window for Amazon MQ when none is set
REDELIVERY_DELAY_SECONDS = 1.0  # ActiveMQ's default redelivery policy, which Lambda uses
IDLE_WAIT_SECONDS = 1.0  # how often an idle poller looks at ``ctx.stopping``
CONNECT_TIMEOUT_SECONDS = 10.0
CONNECTION_ERROR = (
    "PROBLEM: Connection error. Please check your event source connection configuration."
)
FUNCTION_FAILED = "PROBLEM: Function call failed"


class BrokerProblem(Exception):
    """The broker cannot be used as configured; ``message`` is the LastProcessingResult."""

    def __init__(self, detail: str) -> None:
        self.message = f"{CONNECTION_ERROR} {detail}"[:1024]
        super().__init__(self.message)


class SessionLost(Exception):
    """The session's connection or channel closed; its unacknowledged messages are back
    in the queue."""


@dataclass(eq=False)
class Delivery:
    """One message as received: its event record (and that record's JSON), and the
    session's handle to acknowledge it."""

    record: dict[str, Any]
    encoded: bytes
    handle: Any


class Session(Protocol):
    """A consumer of one queue on one broker connection.

    ``inbox`` receives each message as a ``Delivery`` in queue order, and a
    ``SessionLost`` when the connection drops. The other methods raise SessionLost when
    the broker can no longer be told.
    """

    inbox: asyncio.Queue[Delivery | SessionLost]

    async def settle(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge a batch: processed, or filtered out."""

    async def give_back(self, failed: Sequence[Delivery], settled: Sequence[Delivery]) -> None:
        """A batch failed: acknowledge ``settled`` (filtered out), return ``failed`` and
        every message received after them to the queue, in order; the inbox is emptied
        and the queue consumed again."""

    async def reject(self, delivery: Delivery) -> None:
        """Refuse a message for good (it can never fit a payload): the broker dead-letters
        it if it is set up to."""

    async def close(self) -> None:
        """Close the connection; unacknowledged messages go back to the queue."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def broker_url(ctx: PollerContext) -> str:
    """The configured URL of the mapping's broker; BrokerProblem when there is none."""
    arn = ctx.mapping.event_source_arn or ""
    url = ctx.broker(arn)
    if not url:
        raise BrokerProblem(f"No URL is configured for broker {arn} (--mq-broker ARN=URL).")
    return url


def credentials(ctx: PollerContext) -> Credentials:
    """The BASIC_AUTH secret's username and password; BrokerProblem when not configured."""
    arn = ctx.mapping.basic_auth_secret
    if arn is None:
        raise BrokerProblem("The mapping has no BASIC_AUTH source access configuration.")
    secret = ctx.secret(arn)
    if not secret or "username" not in secret:
        raise BrokerProblem(f"No credentials are configured for secret {arn} (--esm-secret).")
    return Credentials(secret["username"], secret.get("password", ""))


def mq_view(record: dict[str, Any]) -> dict[str, Any]:
    """A message record as Lambda filters it: ``data`` base64-decoded, and parsed when it
    is a UTF-8 JSON object or array (a plain string otherwise, kept base64 if not UTF-8)."""
    view = dict(record)
    data = record.get("data")
    if not isinstance(data, str):
        return view
    try:
        text = base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return view
    view["data"] = text
    try:
        parsed = json.loads(text)
    except ValueError:
        return view
    if isinstance(parsed, dict | list):
        view["data"] = parsed
    return view


class MqPoller(abc.ABC):
    """The batching, invoking and acknowledging loop; a subclass opens the sessions and
    frames the event (``open_session``, ``envelope``)."""

    def __init__(self, mapping: MappingConfig) -> None:
        self.mapping = mapping
        self._carry: list[Delivery] = []  # received, but did not fit the last batch
        prefix, suffix = self.envelope()
        self._prefix, self._suffix = prefix, suffix
        # Batch counts a {"Records":[...]} envelope; ours is this event's.
        overhead = len(prefix) + len(suffix) - len(records_payload([]))
        self._max_bytes = MAX_BATCH_PAYLOAD_BYTES - overhead

    # -- what an engine provides ---------------------------------------------------------

    @abc.abstractmethod
    async def open_session(self, ctx: PollerContext) -> Session:
        """Connect and start consuming; BrokerProblem when the broker refuses."""

    @abc.abstractmethod
    def envelope(self) -> tuple[bytes, bytes]:
        """The event's JSON before and after its comma-separated records."""

    # -- the loop ----------------------------------------------------------------------

    @property
    def window(self) -> float:
        return self.mapping.maximum_batching_window or DEFAULT_WINDOW_SECONDS

    def payload(self, deliveries: Sequence[Delivery]) -> bytes:
        return self._prefix + b",".join(d.encoded for d in deliveries) + self._suffix

    async def run(self, ctx: PollerContext) -> None:
        delay = 1.0
        while not ctx.stopping.is_set():
            try:
                session = await self.open_session(ctx)
            except BrokerProblem as problem:
                log.warning("mapping %s: %s", self.mapping.uuid, problem.message)
                await ctx.report(problem.message)
                if await ctx.sleep(delay):
                    return
                delay = min(30.0, delay * 2)
                continue
            delay = 1.0
            try:
                await self._consume(ctx, session)
            except SessionLost as lost:
                log.warning("mapping %s: lost the broker: %s", self.mapping.uuid, lost)
                await ctx.report(f"{CONNECTION_ERROR} {lost}"[:1024])
                if await ctx.sleep(1.0):
                    return
            finally:
                self._carry.clear()  # the session's close gives them back
                await session.close()

    async def _consume(self, ctx: PollerContext, session: Session) -> None:
        while not ctx.stopping.is_set():
            batch = await self._collect(ctx, session)
            if batch:
                await self._process(ctx, session, batch)

    async def _collect(self, ctx: PollerContext, session: Session) -> list[Delivery]:
        """One batch: full, at the end of its window or at 6 MB; empty when stopping
        (what was received goes back to the queue with the session)."""
        batch = Batch(self.mapping.batch_size, self.window, max_bytes=self._max_bytes)
        carried, self._carry = self._carry, []
        for item in carried:
            batch.add(item, item.encoded, ctx.clock())
        while not batch.due(ctx.clock()):
            if ctx.stopping.is_set():
                return []
            wait = min(IDLE_WAIT_SECONDS, batch.remaining(ctx.clock()) or IDLE_WAIT_SECONDS)
            try:
                received = await asyncio.wait_for(session.inbox.get(), wait)
            except TimeoutError:
                continue
            if isinstance(received, SessionLost):
                raise received
            ctx.metrics.polled(1)
            if len(self.payload([received])) > MAX_BATCH_PAYLOAD_BYTES:
                log.warning(
                    "mapping %s: a %d-byte message cannot fit a 6 MB payload; rejected",
                    self.mapping.uuid,
                    len(received.encoded),
                )
                await session.reject(received)
                continue
            if not batch.fits(received.encoded):
                self._carry.append(received)
                break
            batch.add(received, received.encoded, ctx.clock())
        return list(batch.items)

    async def _process(self, ctx: PollerContext, session: Session, batch: list[Delivery]) -> None:
        matcher = self.mapping.matcher
        kept = [d for d in batch if matcher.matches(mq_view(d.record))]
        if len(kept) < len(batch):
            ctx.metrics.filtered_out(len(batch) - len(kept))
        if not kept:
            await session.settle(batch)
            return
        outcome = await self._invoke(ctx, self.payload(kept))
        if outcome is None:  # stopping: the session's close gives the batch back
            return
        if outcome.ok:
            ctx.metrics.invoked(len(kept))
            await session.settle(batch)
            await ctx.report("OK")
            return
        ctx.metrics.failed(len(kept))
        await ctx.report(FUNCTION_FAILED)
        self._carry.clear()  # given back with the batch, to come again in order
        kept_ids = {id(d) for d in kept}
        await session.give_back(kept, [d for d in batch if id(d) not in kept_ids])
        await ctx.sleep(REDELIVERY_DELAY_SECONDS)

    async def _invoke(self, ctx: PollerContext, payload: bytes) -> InvokeOutcome | None:
        """Invoke until the function takes the batch; None if stopped meanwhile."""
        throttle_delay, pause = 0.05, 1.0
        while True:
            try:
                return await ctx.invoke(payload)
            except Throttled:
                if await ctx.sleep(throttle_delay):
                    return None
                throttle_delay = min(1.0, throttle_delay * 2)
            except InvokeUnavailable as err:
                log.warning("mapping %s: cannot invoke: %s", self.mapping.uuid, err.message)
                await ctx.report(f"PROBLEM: {err.message}"[:1024])
                if await ctx.sleep(pause):
                    return None
                pause = min(30.0, pause * 2)
