"""The SQS poller: long-polls a queue, invokes the function with batches, deletes successes.

As Lambda does it:

- ReceiveMessage long-polls (up to 20 s) for up to 10 messages a call; several calls
  (in parallel for big batches of a standard queue) fill a batch until it holds
  ``BatchSize`` messages, its ``MaximumBatchingWindowInSeconds`` ends, or the next
  message would take the payload past 6 MB (with no window, the first non-empty
  receive is the batch).
- Messages no filter matches are deleted without invoking; the others are deleted only
  after the invocation succeeded. With ``ReportBatchItemFailures`` only the successes are
  deleted (a malformed response fails the whole batch). A failed message is left alone:
  its visibility timeout brings it back, and the queue's own redrive policy moves it to
  a dead-letter queue after ``maxReceiveCount`` receives.
- FIFO queues stay ordered per message group: SQS hands out no more messages of a
  group while some are in flight, so a batch's group is processed in order, and with
  ``ReportBatchItemFailures`` a failed message fails the rest of its group in the batch.
- At most ``ScalingConfig.MaximumConcurrency`` batches (default 5, the pollers AWS
  starts with) are being invoked at once; the next batch is collected only when one of
  them may start, so messages are never held invisible waiting for a slot.
- A throttled invocation is retried with back-off for most of the visibility timeout,
  then left to come back; a function that cannot be invoked at all pauses polling.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambdaplane.esm.batching import Batch, failed_items, payload, record_bytes
from lambdaplane.esm.filtering import sqs_view
from lambdaplane.esm.model import MappingConfig
from lambdaplane.esm.poller import InvokeOutcome, InvokeUnavailable, PollerContext, Throttled

log = logging.getLogger("lambdaplane.esm.sqs")

DEFAULT_CONCURRENCY = 5
MAX_RECEIVE = 10  # SQS's limit per ReceiveMessage
LONG_POLL_SECONDS = 20  # SQS's longest wait
PARALLEL_RECEIVES = 4  # receive calls in flight at once while filling a big batch
DEFAULT_VISIBILITY_TIMEOUT = 30
# A FIFO long poll started while batches are in flight waits at most this long: some
# servers (moto) keep the groups in flight locked for the whole of a long poll that
# started before they were deleted, which would stall a group for 20 s.
FIFO_BUSY_POLL_SECONDS = 1
_SYSTEM_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
)
_FIFO_ATTRIBUTES = ("SequenceNumber", "MessageGroupId", "MessageDeduplicationId")


# -- the event ---------------------------------------------------------------------------


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One ReceiveMessage message as Lambda's ``aws:sqs`` event record."""
    received = message.get("Attributes") or {}
    attributes = {k: str(received[k]) for k in _SYSTEM_ATTRIBUTES if k in received}
    for key in ("AWSTraceHeader", *_FIFO_ATTRIBUTES):
        if key in received:
            attributes[key] = str(received[key])
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record["md5OfBody"] = message.get("MD5OfBody", "")
    record["eventSource"] = "aws:sqs"
    record["eventSourceARN"] = queue_arn
    record["awsRegion"] = region
    return record


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """SQS's MessageAttributeValue in the event's camelCase, binary values in base64."""
    out: dict[str, Any] = {}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        raw = value["BinaryValue"]
        out["binaryValue"] = base64.b64encode(raw).decode() if isinstance(raw, bytes) else raw
    out["stringListValues"] = list(value.get("StringListValues") or [])
    out["binaryListValues"] = [
        base64.b64encode(v).decode() if isinstance(v, bytes) else v
        for v in value.get("BinaryListValues") or []
    ]
    out["dataType"] = value.get("DataType", "String")
    return out


def fifo_failures(records: list[Mapping[str, Any]], failed: set[str]) -> set[str]:
    """Failures as a FIFO queue must see them: every message after a failed one in the
    same message group fails too (it may not be processed before the failed one)."""
    blocked: set[str] = set()
    out = set(failed)
    for record in records:
        group = record.get("attributes", {}).get("MessageGroupId")
        if group in blocked:
            out.add(record["messageId"])
        elif record["messageId"] in failed:
            blocked.add(group)
    return out


def queue_parts(arn: str) -> tuple[str, str]:
    """(account, queue name) of a queue ARN."""
    parts = arn.split(":")
    return parts[4], parts[5]


# -- the poller --------------------------------------------------------------------------


@dataclass
class _Received:
    record: dict[str, Any]
    encoded: bytes


class SqsPoller:
    """Polls one SQS queue for one mapping (see the module docstring)."""

    def __init__(self, mapping: MappingConfig, *, long_poll: int = LONG_POLL_SECONDS) -> None:
        self.mapping = mapping
        self._arn = mapping.event_source_arn or ""
        self._fifo = self._arn.endswith(".fifo")
        self._long_poll = long_poll
        self._url = ""
        self._visibility = float(DEFAULT_VISIBILITY_TIMEOUT)
        self._carry: list[_Received] = []  # received, but did not fit the last batch
        self._pause = 0.0  # after a failure to invoke at all: seconds before polling again
        self._busy = 0  # batches being invoked
        self._concurrency = mapping.maximum_concurrency or DEFAULT_CONCURRENCY

    async def run(self, ctx: PollerContext) -> None:
        queue = await self._queue(ctx)
        if queue is None:  # stopped before the queue could be reached
            return
        self._url, self._visibility = queue
        slots = asyncio.Semaphore(self._concurrency)
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while not ctx.stopping.is_set():
                if self._pause:
                    if await ctx.sleep(self._pause):
                        break
                    self._pause = 0.0
                await slots.acquire()
                try:
                    batch = await self._collect(ctx)
                except BaseException:
                    slots.release()
                    raise
                if not batch.items:
                    slots.release()
                    continue
                task = asyncio.create_task(self._process(ctx, batch.items))
                in_flight.add(task)
                self._busy += 1
                task.add_done_callback(in_flight.discard)
                task.add_done_callback(lambda _: self._done(slots))
            if self._carry:  # received for a batch that will not be: give them back now
                carried, self._carry = self._carry, []
                await self._release(ctx, carried)
            if in_flight:  # let the batches being invoked finish (the manager's grace)
                await asyncio.gather(*in_flight, return_exceptions=True)
        finally:
            for task in in_flight:
                task.cancel()

    def _done(self, slots: asyncio.Semaphore) -> None:
        self._busy -= 1
        slots.release()

    async def _queue(self, ctx: PollerContext) -> tuple[str, float] | None:
        """The queue's URL and visibility timeout, retried until found; None if stopped."""
        account, name = queue_parts(self._arn)
        delay = 1.0
        while True:
            try:
                client = ctx.client("sqs")
                url = (
                    await ctx.blocking(
                        client.get_queue_url, QueueName=name, QueueOwnerAWSAccountId=account
                    )
                )["QueueUrl"]
                attributes = await ctx.blocking(
                    client.get_queue_attributes, QueueUrl=url, AttributeNames=["VisibilityTimeout"]
                )
                timeout = attributes.get("Attributes", {}).get("VisibilityTimeout")
                return str(url), float(timeout or DEFAULT_VISIBILITY_TIMEOUT)
            except Exception as err:
                await ctx.report(f"PROBLEM: Error occurred while ReceiveMessage: {err}"[:1024])
                log.warning("mapping %s: cannot reach queue %s: %s", self.mapping.uuid, name, err)
                if await ctx.sleep(delay):
                    return None
                delay = min(30.0, delay * 2)

    async def _collect(self, ctx: PollerContext) -> Batch:
        """One batch: full, at the end of its window, at 6 MB, or whatever stopping left."""
        mapping = self.mapping
        batch = Batch(mapping.batch_size, mapping.maximum_batching_window)
        carried, self._carry = self._carry, []
        for n, item in enumerate(carried):
            if batch.full or not batch.fits(item.encoded):
                self._carry = carried[n:]
                return batch
            batch.add(item, item.encoded, ctx.clock())
        # Where each message of the batch is: one received twice (parallel receives may both
        # get it, and a standard queue may redeliver) is kept once, with its newest receipt
        # handle, the only one SQS promises to delete it with.
        positions = {item.record["messageId"]: n for n, item in enumerate(batch.items)}
        drained = False  # the queue had nothing more at the last look
        while not ctx.stopping.is_set() and not batch.due(ctx.clock()):
            remaining = batch.remaining(ctx.clock())
            wanted = mapping.batch_size - len(batch)
            calls = 1
            ask = wanted
            if not batch.items:  # long-poll for the first message(s)
                busy_fifo = self._fifo and self._busy > 0
                wait = FIFO_BUSY_POLL_SECONDS if busy_fifo else self._long_poll
                wait = min(wait, self._long_poll)
                if not self._fifo:  # small batches: enough for every free invoker at once
                    free = max(1, self._concurrency - self._busy)
                    ask = min(MAX_RECEIVE, wanted * free)
            elif not drained:  # take what is there at once, in parallel for big batches
                wait = 0
                if not self._fifo:
                    calls = min(PARALLEL_RECEIVES, math.ceil(wanted / MAX_RECEIVE))
            else:  # wait for more within the window (whole seconds: SQS's unit)
                wait = min(LONG_POLL_SECONDS, math.floor(remaining))
                if wait == 0:
                    await ctx.sleep(min(0.2, remaining))
                    drained = False
                    continue
            messages = await self._receive(ctx, ask, wait, calls)
            if messages is None:  # receiving failed: deliver what we hold, then back off
                self._pause = max(self._pause, 1.0)
                break
            drained = not messages
            full = False
            again = 0
            for message in messages:
                record = sqs_record(message, self._arn, ctx.region)
                item = _Received(record, record_bytes(record))
                known = positions.get(record["messageId"])
                if known is not None:
                    batch.replace(known, item, item.encoded)
                    again += 1
                    continue
                if full or not batch.fits(item.encoded) or batch.full:
                    full = True
                    self._carry.append(item)
                    continue
                positions[record["messageId"]] = len(batch.items)
                batch.add(item, item.encoded, ctx.clock())
            ctx.metrics.polled(len(messages) - again)
            if full or (batch.items and mapping.maximum_batching_window <= 0):
                break
        return batch

    async def _receive(
        self, ctx: PollerContext, wanted: int, wait: int, calls: int
    ) -> list[dict[str, Any]] | None:
        """Messages from up to ``calls`` parallel ReceiveMessage calls; None on failure.

        A stop does not wait for a long poll: the calls are abandoned, and messages they
        still receive are made visible again at once (``_receive_call``).
        """
        client = ctx.client("sqs")
        sizes = []
        left = wanted
        for _ in range(max(1, calls)):
            if left <= 0:
                break
            sizes.append(min(MAX_RECEIVE, left))
            left -= sizes[-1]
        abandoned = threading.Event()
        receiving = asyncio.ensure_future(
            asyncio.gather(
                *(
                    ctx.blocking(self._receive_call, client, size, max(0, wait), abandoned)
                    for size in sizes
                )
            )
        )
        stopped = asyncio.ensure_future(ctx.stopping.wait())
        try:
            await asyncio.wait({receiving, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if not receiving.done():
            abandoned.set()
            receiving.add_done_callback(_consume)
            return []
        try:
            answers = receiving.result()
        except Exception as err:
            log.warning("mapping %s: ReceiveMessage failed: %s", self.mapping.uuid, err)
            await ctx.report(f"PROBLEM: Error occurred while ReceiveMessage: {err}"[:1024])
            return None
        return [m for messages in answers for m in messages]

    def _receive_call(
        self, client: Any, size: int, wait: int, abandoned: threading.Event
    ) -> list[dict[str, Any]]:
        """One ReceiveMessage (blocking); what an abandoned call receives is released."""
        answer = client.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=size,
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = answer.get("Messages") or []
        if messages and abandoned.is_set():
            entries = [
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for n, m in enumerate(messages)
            ]
            try:
                client.change_message_visibility_batch(QueueUrl=self._url, Entries=entries)
            except Exception as err:  # they come back after the visibility timeout anyway
                log.info("mapping %s: could not release messages: %s", self.mapping.uuid, err)
            return []
        return messages

    async def _process(self, ctx: PollerContext, items: list[_Received]) -> None:
        """Filter, invoke and delete one batch; never raises (logs instead)."""
        try:
            await self._process_batch(ctx, items)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("mapping %s: processing a batch failed", self.mapping.uuid)

    async def _process_batch(self, ctx: PollerContext, items: list[_Received]) -> None:
        matcher = self.mapping.matcher
        keep: list[_Received] = []
        dropped: list[_Received] = []
        for item in items:
            (keep if matcher.matches(sqs_view(item.record)) else dropped).append(item)
        if dropped:  # Lambda deletes what no filter matches
            ctx.metrics.filtered_out(len(dropped))
            await self._delete(ctx, dropped)
        if not keep:
            return
        outcome = await self._invoke(ctx, payload([i.encoded for i in keep]))
        if outcome is None:
            return
        if not outcome.ok:
            ctx.metrics.failed(len(keep))
            await ctx.report("PROBLEM: Function call failed")
            return  # the visibility timeout brings the batch back
        done = keep
        if self.mapping.report_batch_item_failures:
            ids = [i.record["messageId"] for i in keep]
            failed = failed_items(outcome.payload, ids)
            if failed is None:  # a malformed response fails the whole batch
                ctx.metrics.failed(len(keep))
                await ctx.report("PROBLEM: Function call failed")
                return
            if self._fifo and failed:
                failed = fifo_failures([i.record for i in keep], failed)
            done = [i for i in keep if i.record["messageId"] not in failed]
        ctx.metrics.invoked(len(keep))
        await self._delete(ctx, done)
        await ctx.report("OK")

    async def _invoke(self, ctx: PollerContext, payload: bytes) -> InvokeOutcome | None:
        """Invoke, retrying throttles for most of the visibility timeout; None if given up."""
        deadline = ctx.clock() + self._visibility * 0.8
        delay = 0.05
        while True:
            try:
                return await ctx.invoke(payload)
            except Throttled:
                if ctx.clock() + delay > deadline or await ctx.sleep(delay):
                    return None
                delay = min(1.0, delay * 2)
            except InvokeUnavailable as err:
                log.warning("mapping %s: cannot invoke: %s", self.mapping.uuid, err.message)
                await ctx.report(f"PROBLEM: {err.message}"[:1024])
                self._pause = min(30.0, max(1.0, self._pause * 2))
                return None

    async def _release(self, ctx: PollerContext, items: list[_Received]) -> None:
        """Make received messages visible again at once (ChangeMessageVisibility 0)."""
        client = ctx.client("sqs")
        for start in range(0, len(items), MAX_RECEIVE):
            entries = [
                {"Id": str(n), "ReceiptHandle": i.record["receiptHandle"], "VisibilityTimeout": 0}
                for n, i in enumerate(items[start : start + MAX_RECEIVE])
            ]
            try:
                await ctx.blocking(
                    client.change_message_visibility_batch, QueueUrl=self._url, Entries=entries
                )
            except Exception as err:  # they come back after the visibility timeout anyway
                log.info("mapping %s: could not release messages: %s", self.mapping.uuid, err)

    async def _delete(self, ctx: PollerContext, items: list[_Received]) -> None:
        client = ctx.client("sqs")
        for start in range(0, len(items), MAX_RECEIVE):
            chunk = items[start : start + MAX_RECEIVE]
            entries = [
                {"Id": str(n), "ReceiptHandle": i.record["receiptHandle"]}
                for n, i in enumerate(chunk)
            ]
            try:
                answer = await ctx.blocking(
                    client.delete_message_batch, QueueUrl=self._url, Entries=entries
                )
            except Exception as err:
                log.warning("mapping %s: DeleteMessageBatch failed: %s", self.mapping.uuid, err)
                continue
            for failure in answer.get("Failed") or []:
                log.warning(
                    "mapping %s: could not delete a message: %s",
                    self.mapping.uuid,
                    failure.get("Message") or failure.get("Code"),
                )


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned call's outcome, so asyncio does not log it as never read."""
    if not future.cancelled():
        future.exception()
