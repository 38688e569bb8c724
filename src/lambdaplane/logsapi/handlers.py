"""One function per implemented Logs operation: validated input dict -> output dict.

Each takes the ``LogsService`` and the request's members (as botocore's model names
them) and returns the response's members, shaped as AWS returns them. Handlers run
in a worker thread: the service blocks on the store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lambdaplane.logsapi.errors import InvalidParameterException
from lambdaplane.logsapi.filter_pattern import FilterPatternError, compile_pattern
from lambdaplane.logsapi.service import LogsService
from lambdaplane.logsapi.tokens import (
    BACKWARD,
    FORWARD,
    event_id,
    event_token,
    page_token,
    parse_event_token,
    parse_page_token,
)
from lambdaplane.store.log_groups import EventKey, StoredLogGroup, StoredLogStream

Params = Mapping[str, Any]
Output = dict[str, Any]
Handler = Callable[[LogsService, Params], Output]

DEFAULT_PAGE = 50


def create_log_group(service: LogsService, p: Params) -> Output:
    service.create_group(p["logGroupName"], p.get("logGroupClass"))
    return {}


def describe_log_groups(service: LogsService, p: Params) -> Output:
    limit = p.get("limit") or DEFAULT_PAGE
    token = p.get("nextToken")
    after = parse_page_token(token, str)[0] if token else None
    groups = service.groups(
        prefix=p.get("logGroupNamePrefix"),
        pattern=p.get("logGroupNamePattern"),
        identifiers=p.get("logGroupIdentifiers"),
        log_group_class=p.get("logGroupClass"),
        after=after,
        limit=limit + 1,
    )
    out: Output = {"logGroups": [_group(service, g) for g in groups[:limit]]}
    if len(groups) > limit:
        out["nextToken"] = page_token(groups[limit - 1].name)
    return out


def _group(service: LogsService, group: StoredLogGroup) -> Output:
    arn = service.group_arn(group.name)
    out: Output = {
        "logGroupName": group.name,
        "creationTime": group.created_at,
        "metricFilterCount": 0,
        "arn": f"{arn}:*",
        "storedBytes": group.stored_bytes,
        "logGroupClass": group.log_group_class,
        "logGroupArn": arn,
    }
    if group.retention_days is not None:
        out["retentionInDays"] = group.retention_days
    return out


def delete_log_group(service: LogsService, p: Params) -> Output:
    service.delete_group(p["logGroupName"])
    return {}


def put_retention_policy(service: LogsService, p: Params) -> Output:
    service.put_retention(p["logGroupName"], p["retentionInDays"])
    return {}


def delete_retention_policy(service: LogsService, p: Params) -> Output:
    service.delete_retention(p["logGroupName"])
    return {}


def create_log_stream(service: LogsService, p: Params) -> Output:
    service.create_stream(p["logGroupName"], p["logStreamName"])
    return {}


def delete_log_stream(service: LogsService, p: Params) -> Output:
    service.delete_stream(p["logGroupName"], p["logStreamName"])
    return {}


def describe_log_streams(service: LogsService, p: Params) -> Output:
    group = service.group_name(p.get("logGroupName"), p.get("logGroupIdentifier"))
    limit = p.get("limit") or DEFAULT_PAGE
    by_last_event = p.get("orderBy") == "LastEventTime"
    token = p.get("nextToken")
    after: tuple[int, str] | None = None
    if token:
        value, name = parse_page_token(token, int, str)
        after = (value, name)
    streams = service.streams(
        group,
        prefix=p.get("logStreamNamePrefix"),
        by_last_event=by_last_event,
        descending=bool(p.get("descending")),
        after=after,
        limit=limit + 1,
    )
    out: Output = {"logStreams": [_stream(service, group, s) for s in streams[:limit]]}
    if len(streams) > limit:
        last = streams[limit - 1]
        sort_value = (last.last_event or 0) if by_last_event else 0
        out["nextToken"] = page_token(sort_value, last.name)
    return out


def _stream(service: LogsService, group: str, stream: StoredLogStream) -> Output:
    out: Output = {"logStreamName": stream.name, "creationTime": stream.created_at}
    if stream.first_event is not None:
        out["firstEventTimestamp"] = stream.first_event
    if stream.last_event is not None:
        out["lastEventTimestamp"] = stream.last_event
    if stream.last_ingestion is not None:
        out["lastIngestionTime"] = stream.last_ingestion
    out["arn"] = service.stream_arn(group, stream.name)
    out["storedBytes"] = 0  # AWS stopped reporting it per stream in 2019: always zero.
    return out


def get_log_events(service: LogsService, p: Params) -> Output:
    group = service.group_name(p.get("logGroupName"), p.get("logGroupIdentifier"))
    token = p.get("nextToken")
    page = service.stream_events(
        group,
        p["logStreamName"],
        start=p.get("startTime"),
        end=p.get("endTime"),
        limit=p.get("limit"),
        from_head=bool(p.get("startFromHead")),
        cursor=parse_event_token(token) if token else None,
    )
    return {
        "events": [
            {"timestamp": e.key.timestamp, "message": e.message, "ingestionTime": e.ingestion_time}
            for e in page.events
        ],
        "nextForwardToken": event_token(FORWARD, page.forward),
        "nextBackwardToken": event_token(BACKWARD, page.backward),
    }


def filter_log_events(service: LogsService, p: Params) -> Output:
    group = service.group_name(p.get("logGroupName"), p.get("logGroupIdentifier"))
    try:
        pattern = compile_pattern(p.get("filterPattern"))
    except FilterPatternError as exc:
        raise InvalidParameterException(str(exc)) from exc
    token = p.get("nextToken")
    after = EventKey(*parse_page_token(token, int, int)) if token else None
    page = service.filter_events(
        group,
        streams=p.get("logStreamNames"),
        stream_prefix=p.get("logStreamNamePrefix"),
        start=p.get("startTime"),
        end=p.get("endTime"),
        pattern=pattern,
        limit=p.get("limit"),
        after=after,
    )
    out: Output = {
        "events": [
            {
                "logStreamName": e.log_stream,
                "timestamp": e.key.timestamp,
                "message": e.message,
                "ingestionTime": e.ingestion_time,
                "eventId": event_id(e.key),
            }
            for e in page.events
        ],
        "searchedLogStreams": [],
    }
    if page.resume_after is not None:
        out["nextToken"] = page_token(page.resume_after.timestamp, page.resume_after.id)
    return out


HANDLERS: dict[str, Handler] = {
    "CreateLogGroup": create_log_group,
    "DescribeLogGroups": describe_log_groups,
    "DeleteLogGroup": delete_log_group,
    "PutRetentionPolicy": put_retention_policy,
    "DeleteRetentionPolicy": delete_retention_policy,
    "CreateLogStream": create_log_stream,
    "DescribeLogStreams": describe_log_streams,
    "DeleteLogStream": delete_log_stream,
    "GetLogEvents": get_log_events,
    "FilterLogEvents": filter_log_events,
}
