"""Bounded request parameters: numbers the database can store (signed 64 bits).

A path or query number beyond 64 bits used to reach the database driver and fail there (an
``OverflowError`` answered 500). Declaring the bound on the parameter makes Litestar refuse it
with 422 naming the parameter; :mod:`control_plane.errors` keeps a fallback for numbers in
bodies.
"""

from __future__ import annotations

from typing import Annotated, Final

from litestar.params import PathParameter, QueryParameter

MAX_INT64: Final = 2**63 - 1

VersionPath = Annotated[int, PathParameter(ge=1, le=MAX_INT64)]
"""A version number in a path: 1 .. 2**63-1."""

VersionQuery = Annotated[int | None, QueryParameter(ge=1, le=MAX_INT64)]
"""An optional version number in a query: 1 .. 2**63-1."""

Offset = Annotated[int, QueryParameter(ge=0, le=MAX_INT64)]
"""A page offset: 0 .. 2**63-1."""
