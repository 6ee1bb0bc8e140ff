"""Times in UTC: one rule for the times the platform stores and for times from outside.

Every time the platform stores is UTC. SQLite hands datetimes back naive, PostgreSQL aware:
:func:`as_utc` reads either as UTC. A time from outside input (a body's or a query's
``since``/``until``) may carry any offset, or none (then it is UTC): :func:`given_utc`
converts it, and a time that leaves the calendar once in UTC (year 1 at +14:00, year 9999 at
-14:00) is an :class:`~modelyard.errors.InvalidArgument` naming the field. Before, the
conversion raised ``OverflowError`` (answered with a generic "out of range" that named no
field), or the time reached PostgreSQL, which refused it with its own error.

>>> as_utc(dt.datetime(2026, 12, 6, 12))
datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.timezone.utc)
>>> given_utc("since", dt.datetime(2026, 12, 6, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))))
datetime.datetime(2026, 12, 6, 10, 0, tzinfo=datetime.timezone.utc)
>>> given_utc("since", dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=14))))
Traceback (most recent call last):
modelyard.errors.InvalidArgument: since 0001-01-01T00:00:00+14:00 is out of range in UTC
"""

from __future__ import annotations

import datetime as dt
from typing import overload

from modelyard.errors import InvalidArgument


@overload
def as_utc(value: dt.datetime) -> dt.datetime: ...


@overload
def as_utc(value: None) -> None: ...


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A stored time (or None) in UTC: a naive one is UTC already (SQLite's)."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


@overload
def given_utc(name: str, moment: dt.datetime) -> dt.datetime: ...


@overload
def given_utc(name: str, moment: None) -> None: ...


def given_utc(name: str, moment: dt.datetime | None) -> dt.datetime | None:
    """A time from outside input (or None) in UTC; ``name`` is its field, for the error.

    Raises:
        InvalidArgument: the time leaves the calendar once in UTC.
    """
    try:
        return as_utc(moment)
    except OverflowError:
        assert moment is not None
        raise InvalidArgument(f"{name} {moment.isoformat()} is out of range in UTC") from None


def window_start(until: dt.datetime, width: dt.timedelta) -> dt.datetime:
    """The start of the window of ``width`` that ends at ``until`` (from outside input).

    Raises:
        InvalidArgument: the start would be before year 1.

    >>> window_start(dt.datetime(1, 1, 1, 12, tzinfo=dt.UTC), dt.timedelta(days=1))
    Traceback (most recent call last):
    modelyard.errors.InvalidArgument: a window of 86400 s ending at 0001-01-01T12:00:00+00:00 ...
    """
    try:
        return until - width
    except OverflowError:
        raise InvalidArgument(
            f"a window of {width.total_seconds():g} s ending at {until.isoformat()} would start "
            "before year 1"
        ) from None


def request_window(
    since: dt.datetime | None,
    until: dt.datetime | None,
    width: dt.timedelta,
    now: dt.datetime,
    what: str = "window",
) -> tuple[dt.datetime, dt.datetime]:
    """The window a request names, in UTC: ``since`` to ``until`` (``now`` when absent), or the
    ``width`` before ``until`` when ``since`` is absent (drift checks, performance tracking).

    Raises:
        InvalidArgument: a time out of range (:func:`given_utc`, :func:`window_start`), or
            ``since`` not before ``until`` (the message starts with ``what``).

    >>> t = dt.datetime(2026, 12, 6, 12, tzinfo=dt.UTC)
    >>> request_window(None, t, dt.timedelta(hours=1), t)[0].hour
    11
    >>> request_window(t, t, dt.timedelta(hours=1), t, "drift window")
    Traceback (most recent call last):
    modelyard.errors.InvalidArgument: drift window since=... must precede until=...
    """
    end = given_utc("until", until or now)
    start = given_utc("since", since) if since is not None else window_start(end, width)
    if start >= end:
        raise InvalidArgument(f"{what} since={start} must precede until={end}")
    return start, end


__all__ = ["as_utc", "given_utc", "request_window", "window_start"]
