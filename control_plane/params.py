"""Bounded request parameters: numbers the database can store, names and ids it can look up.

A path or query number beyond the column's range used to reach the database driver and fail
there (an ``OverflowError`` or, on PostgreSQL, a data exception answered 500). Declaring the
bound on the parameter makes Litestar refuse it with 422 naming the parameter;
:mod:`control_plane.errors` keeps a fallback for numbers in bodies. Version columns are
``INTEGER`` (32 bits on PostgreSQL); offsets go to ``OFFSET`` (64 bits). Every text in a
path is a :data:`NamePath` or a :data:`KeyPath`: no route takes a bare ``str`` from its path.
"""

from __future__ import annotations

from typing import Annotated, Final

from litestar.params import PathParameter, QueryParameter

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
