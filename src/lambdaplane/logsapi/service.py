"""The Logs domain: groups, streams, reading events back, retention.

Everything here is in milliseconds since the epoch and works on the store's
repository; the clock is injected. Errors are the API's own (``logsapi.errors``).
Reads never return events older than their group's retention, whether or not the
sweep (``retention``) has deleted them yet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lambdaplane.logsapi.errors import (
    GROUP_EXISTS,
    GROUP_NOT_FOUND,
    STREAM_EXISTS,
    STREAM_NOT_FOUND,
    InvalidParameterException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)
from lambdaplane.logsapi.filter_pattern import Pattern
from lambdaplane.store.log_groups import (
    EventKey,
    EventRange,
    LogGroupRepository,
    StoredEvent,
    StoredLogGroup,
    StoredLogStream,
)

DAY_MS = 86_400_000
# PutRetentionPolicy's accepted values (the API reference's list).
RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
MAX_EVENTS = 10_000
MAX_RESPONSE_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26  # what AWS counts per event beside its message
SCAN_BATCH = 2_000
SCAN_BUDGET = 100_000  # events one FilterLogEvents call reads before answering with a token
START = EventKey(0, 0)  # before every event


@dataclass(frozen=True)
class EventPage:
    """GetLogEvents' answer: events oldest first, and the positions to page on from."""

    events: list[StoredEvent]
    forward: EventKey  # the next page starts after this
    backward: EventKey  # the previous page ends before this


@dataclass(frozen=True)
class FilteredPage:
    events: list[StoredEvent]
    resume_after: EventKey | None  # None: nothing more in the range


class LogsService:
    def __init__(
        self,
        repository: LogGroupRepository,
        *,
        region: str,
        account_id: str,
        clock: Callable[[], float],
        retention_changed: Callable[[], None] = lambda: None,
    ) -> None:
        self._repo = repository
        self.region = region
        self.account_id = account_id
        self._clock = clock
        self._retention_changed = retention_changed

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    # ------------------------------------------------------------------ names

    def group_arn(self, name: str) -> str:
        return f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{name}"

    def stream_arn(self, group: str, stream: str) -> str:
        return f"{self.group_arn(group)}:log-stream:{stream}"

    def group_name(self, name: str | None, identifier: str | None) -> str:
        """The group named by ``logGroupName`` or ``logGroupIdentifier`` (a name or ARN)."""
        if name is not None and identifier is not None:
            raise InvalidParameterException(
                "LogGroup name and LogGroup ARN are mutually exclusive parameters."
            )
        if identifier is not None:
            if not identifier.startswith("arn:"):
                return identifier
            parts = identifier.split(":")
            if (
                len(parts) in (7, 8)
                and parts[2] == "logs"
                and parts[5] == "log-group"
                and parts[7:] in ([], ["*"])
            ):
                if parts[3] != self.region or parts[4] != self.account_id:
                    raise ResourceNotFoundException(GROUP_NOT_FOUND)
                return parts[6]
            raise InvalidParameterException(f"Invalid log group identifier: {identifier}")
        if name is None:
            raise InvalidParameterException("Should provide either name or ARN of LogGroup.")
        return name

    def cutoff(self, group: StoredLogGroup) -> int | None:
        """The oldest timestamp the group still keeps, or None when it keeps everything."""
        if group.retention_days is None:
            return None
        return self.now_ms() - group.retention_days * DAY_MS

    # ----------------------------------------------------------------- groups

    def create_group(self, name: str, log_group_class: str | None) -> None:
        if not self._repo.create_group(name, self.now_ms(), log_group_class):
            raise ResourceAlreadyExistsException(GROUP_EXISTS)

    def group(self, name: str) -> StoredLogGroup:
        found = self._repo.group(name)
        if found is None:
            raise ResourceNotFoundException(GROUP_NOT_FOUND)
        return found

    def groups(
        self,
        *,
        prefix: str | None,
        pattern: str | None,
        identifiers: Sequence[str] | None,
        log_group_class: str | None,
        after: str | None,
        limit: int,
    ) -> list[StoredLogGroup]:
        if prefix and pattern:
            raise InvalidParameterException(
                "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters."
            )
        names = None
        if identifiers is not None:
            names = [self.group_name(None, identifier) for identifier in identifiers]
        return self._repo.groups(
            prefix=prefix,
            contains=pattern,
            names=names,
            log_group_class=log_group_class,
            after=after,
            limit=limit,
        )

    def delete_group(self, name: str) -> None:
        if not self._repo.delete_group(name):
            raise ResourceNotFoundException(GROUP_NOT_FOUND)

    def put_retention(self, name: str, days: int) -> None:
        if days not in RETENTION_DAYS:
            allowed = ", ".join(map(str, RETENTION_DAYS))
            raise InvalidParameterException(
                f"1 validation error detected: Value '{days}' at 'retentionInDays' failed to "
                f"satisfy constraint: Member must satisfy enum value set: [{allowed}]"
            )
        if not self._repo.set_retention(name, days):
            raise ResourceNotFoundException(GROUP_NOT_FOUND)
        self._retention_changed()

    def delete_retention(self, name: str) -> None:
        if not self._repo.set_retention(name, None):
            raise ResourceNotFoundException(GROUP_NOT_FOUND)

    # ---------------------------------------------------------------- streams

    def create_stream(self, group: str, name: str) -> None:
        self.group(group)
        if not self._repo.create_stream(group, name, self.now_ms()):
            raise ResourceAlreadyExistsException(STREAM_EXISTS)

    def streams(
        self,
        group: str,
        *,
        prefix: str | None,
        by_last_event: bool,
        descending: bool,
        after: tuple[int, str] | None,
        limit: int,
    ) -> list[StoredLogStream]:
        if by_last_event and prefix:
            raise InvalidParameterException(
                "Cannot order by LastEventTime with a logStreamNamePrefix."
            )
        self.group(group)
        return self._repo.streams(
            group,
            prefix=prefix,
            by_last_event=by_last_event,
            descending=descending,
            after=after,
            limit=limit,
        )

    def delete_stream(self, group: str, name: str) -> None:
        self.group(group)
        if not self._repo.delete_stream(group, name):
            raise ResourceNotFoundException(STREAM_NOT_FOUND)

    # ----------------------------------------------------------------- events

    def stream_events(
        self,
        group_name: str,
        stream: str,
        *,
        start: int | None,
        end: int | None,
        limit: int | None,
        from_head: bool,
        cursor: tuple[str, EventKey] | None,
    ) -> EventPage:
        """GetLogEvents: a page of one stream, by a forward/backward ``cursor`` or from
        either end. A page with no events hands the cursor it was given back."""
        group = self.group(group_name)
        if self._repo.stream(group_name, stream) is None:
            raise ResourceNotFoundException(STREAM_NOT_FOUND)
        window = EventRange(start, end, self.cutoff(group))
        count = limit or MAX_EVENTS
        forward = cursor[0] == "f" if cursor is not None else from_head
        position = cursor[1] if cursor is not None else None
        if forward:
            events = self._repo.stream_events(
                group_name, stream, window, after=position, limit=count
            )
            events = _within_bytes(events)
        else:
            newest = self._repo.stream_events(
                group_name, stream, window, before=position, newest_first=True, limit=count
            )
            events = _within_bytes(newest)[::-1]
        if events:
            return EventPage(events, forward=events[-1].key, backward=events[0].key)
        if position is None:
            return EventPage([], forward=START, backward=START)
        if forward:  # Nothing after ``position``: the previous page ends with it.
            return EventPage([], forward=position, backward=_next(position))
        return EventPage([], forward=_previous(position), backward=position)

    def filter_events(
        self,
        group_name: str,
        *,
        streams: Sequence[str] | None,
        stream_prefix: str | None,
        start: int | None,
        end: int | None,
        pattern: Pattern,
        limit: int | None,
        after: EventKey | None,
    ) -> FilteredPage:
        """FilterLogEvents: matching events of a group in time order, resumable."""
        if streams is not None and stream_prefix is not None:
            raise InvalidParameterException(
                "logStreamNames and logStreamNamePrefix are mutually exclusive parameters."
            )
        group = self.group(group_name)
        window = EventRange(start, end, self.cutoff(group))
        wanted = limit or MAX_EVENTS
        found: list[StoredEvent] = []
        size = 0
        scanned = 0
        position = after
        while True:
            rows = self._repo.group_events(
                group_name,
                window,
                streams=streams,
                stream_prefix=stream_prefix,
                after=position,
                limit=SCAN_BATCH,
            )
            for index, row in enumerate(rows):
                position = row.key
                if not pattern.matches(row.message):
                    continue
                size += len(row.message.encode()) + EVENT_OVERHEAD_BYTES
                if size > MAX_RESPONSE_BYTES and found:
                    return FilteredPage(found, found[-1].key)
                found.append(row)
                if len(found) == wanted:
                    more = index + 1 < len(rows) or len(rows) == SCAN_BATCH
                    return FilteredPage(found, row.key if more else None)
            scanned += len(rows)
            if len(rows) < SCAN_BATCH:
                return FilteredPage(found, None)
            if scanned >= SCAN_BUDGET:
                return FilteredPage(found, position)


def _within_bytes(events: list[StoredEvent]) -> list[StoredEvent]:
    """The leading events whose messages fit in one response (at least one)."""
    size = 0
    for index, event in enumerate(events):
        size += len(event.message.encode()) + EVENT_OVERHEAD_BYTES
        if size > MAX_RESPONSE_BYTES and index > 0:
            return events[:index]
    return events


def _next(key: EventKey) -> EventKey:
    """The position just after ``key``'s event: ``before`` it includes that event."""
    return EventKey(key.timestamp, key.id + 1)


def _previous(key: EventKey) -> EventKey:
    return EventKey(key.timestamp, max(key.id - 1, 0))
