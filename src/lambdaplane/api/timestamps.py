"""Timestamps on the wire, in the three formats botocore's protocols use.

Contract:

- ``parse_timestamp(value)`` accepts epoch seconds (number or numeric string),
  ISO-8601 (``2024-01-02T03:04:05Z``, offsets, fractions) and RFC 822 / HTTP dates,
  whatever the declared format (botocore's parsers are equally lenient), and returns
  an aware UTC ``datetime``; anything else raises ``ValueError``.
- ``format_timestamp(value, fmt)`` renders a ``datetime`` (naive = UTC) as
  ``iso8601`` (``2024-01-02T03:04:05Z`` or ``…05.123Z``), ``rfc822``
  (``Tue, 02 Jan 2024 03:04:05 GMT``) or ``unixTimestamp`` (a number, millisecond
  precision). Defaults per location in rest-json: body ``unixTimestamp``, header
  ``rfc822``, querystring ``iso8601`` (``default_format``).
"""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime, parsedate_to_datetime

UTC = dt.UTC

_DEFAULT_FORMATS = {"header": "rfc822", "querystring": "iso8601", "uri": "iso8601"}


def default_format(location: str | None) -> str:
    """rest-json's timestamp format for a member location (None = JSON body)."""
    return _DEFAULT_FORMATS.get(location or "", "unixTimestamp")


def parse_timestamp(value: str | int | float) -> dt.datetime:
    """A wire timestamp in any of the three formats -> aware UTC datetime."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, UTC)
    text = value.strip()
    try:
        return dt.datetime.fromtimestamp(float(text), UTC)
    except (ValueError, OverflowError):
        pass
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError) as err:
            raise ValueError(f"not a timestamp: {value!r}") from err
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_timestamp(value: dt.datetime, fmt: str) -> str | int | float:
    """Render ``value`` in a botocore timestamp format."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    if fmt == "rfc822":
        return format_datetime(value, usegmt=True)
    if fmt == "iso8601":
        if value.microsecond:
            return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    seconds = round(value.timestamp(), 3)
    return int(seconds) if seconds == int(seconds) else seconds
