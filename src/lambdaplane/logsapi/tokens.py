"""Paging tokens of the Logs API.

GetLogEvents' tokens have AWS's shape, ``f/<56 digits>/s`` (forward) and
``b/<56 digits>/s`` (backward): the digits are a position in a stream's event order
(timestamp, then event id), and so is an event's ``eventId``. The other operations'
``nextToken`` are opaque (URL-safe base64 of JSON): callers only hand them back.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from lambdaplane.logsapi.errors import BAD_TOKEN, InvalidParameterException
from lambdaplane.store.log_groups import EventKey

FORWARD, BACKWARD = "f", "b"
_EVENT_TOKEN = re.compile(r"([fb])/(\d{20})(\d{36})/s").fullmatch


def event_id(key: EventKey) -> str:
    """The 56-digit eventId of the event at ``key``."""
    return f"{key.timestamp:020d}{key.id:036d}"


def event_token(direction: str, key: EventKey) -> str:
    return f"{direction}/{event_id(key)}/s"


def parse_event_token(token: str) -> tuple[str, EventKey]:
    """(direction, position) of a GetLogEvents token; InvalidParameterException if bad."""
    found = _EVENT_TOKEN(token)
    if found is None:
        raise InvalidParameterException(BAD_TOKEN)
    return found.group(1), EventKey(int(found.group(2)), int(found.group(3)))


def page_token(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


def parse_page_token(token: str, *types: type) -> list[Any]:
    """The parts of a ``page_token``, checked against ``types``."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError as exc:
        raise InvalidParameterException(BAD_TOKEN) from exc
    if (
        not isinstance(parts, list)
        or len(parts) != len(types)
        or not all(
            isinstance(p, t) and not isinstance(p, bool) for p, t in zip(parts, types, strict=True)
        )
    ):
        raise InvalidParameterException(BAD_TOKEN)
    return parts
