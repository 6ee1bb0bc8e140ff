"""Bounded request parameters: numbers the database can store, names and ids it can look up.

A path or query number beyond the column's range used to reach the database driver and fail
there (an ``OverflowError`` or, on PostgreSQL, a data exception answered 500). Declaring the
bound on the parameter makes Litestar refuse it with 422 naming the parameter;
:mod:`control_plane.errors` keeps a fallback for numbers in bodies. Version columns are
``INTEGER`` (32 bits on PostgreSQL); offsets go to ``OFFSET`` (64 bits). Every text in a
path is a :data:`NamePath` or a :data:`KeyPath`: no route takes a bare ``str`` from its path.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final

from litestar.params import PathParameter, QueryParameter

from modelyard.errors import InvalidArgument
from modelyard.models import MAX_VERSION, NAME_PATTERN, NO_NUL

MAX_INT64: Final = 2**63 - 1

VersionPath = Annotated[int, PathParameter(ge=1, le=MAX_VERSION)]
"""A version number in a path: 1 .. 2**31-1."""

VersionQuery = Annotated[int | None, QueryParameter(ge=1, le=MAX_VERSION)]
"""An optional version number in a query: 1 .. 2**31-1."""

IdPath = Annotated[int, PathParameter(ge=1, le=MAX_VERSION)]
"""A row id in a path (an ``INTEGER`` key, like versions): 1 .. 2**31-1."""

NamePath = Annotated[str, PathParameter(pattern=NAME_PATTERN)]
"""A model, feature or channel name in a path: 1-128 letters, digits and ``_ . -``, starting
with a letter or digit (the rule every such name was created under). Anything else -- NUL
included, which PostgreSQL refused with its own error where SQLite answered 404 -- is a 422
naming the parameter before a store sees it."""

KeyPath = Annotated[str, PathParameter(min_length=1, max_length=128, pattern=NO_NUL)]
"""A generated id (job, run, test, token) or a scheduled job's name in a path: 1-128 characters
without NUL (else 422 naming the parameter, on both databases)."""

TextQuery = Annotated[str | None, QueryParameter(max_length=1024, pattern=NO_NUL)]
"""An optional text filter in a query: no NUL (PostgreSQL refuses it, with its own error; SQLite
answered), at most 1,024 characters."""

Offset = Annotated[int, QueryParameter(ge=0, le=MAX_INT64)]
"""A page offset: 0 .. 2**63-1."""


def utc_query(name: str, moment: dt.datetime | None) -> dt.datetime | None:
    """A time from a query in UTC (a naive one is UTC already).

    Raises:
        InvalidArgument: naming ``name``, when the time leaves the calendar once in UTC (year 1
            at +14:00, year 9999 at -14:00: PostgreSQL refused it with its own error).

    >>> utc_query("since", dt.datetime(2026, 12, 6, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    datetime.datetime(2026, 12, 6, 10, 0, tzinfo=datetime.timezone.utc)
    >>> utc_query("since", dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=14))))
    Traceback (most recent call last):
    modelyard.errors.InvalidArgument: since 0001-01-01T00:00:00+14:00 is out of range in UTC
    """
    if moment is None or moment.tzinfo is None:
        return None if moment is None else moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:
        raise InvalidArgument(f"{name} {moment.isoformat()} is out of range in UTC") from None
