"""Settings of one server process's prediction-log writer (part of ``ServerSettings``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import msgspec


class LogWriterSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Where and how a server records its answers (``docs/prediction-log.md``).

    Attributes:
        database_url: ``sqlite:///PATH`` or ``postgresql://...`` holding the
            ``prediction_log`` table (migrated by ``modelyard db upgrade``); ``""`` turns the
            log off.
        schema: PostgreSQL schema (``search_path``) of the table; None for the default.
        spool_dir: local folder of the append-only spool; worker k uses ``worker-k`` in it.
        flush_interval_ms: the buffer is written to the spool at least this often; a
            ``kill -9`` loses at most the answers of the last interval.
        buffer_capacity: answered requests one worker may hold before they reach the spool.
        overflow: what happens to an answer when the buffer is full: ``drop`` (the answer is
            returned, its record dropped and counted) or ``reject`` (new requests fail with
            RESOURCE_EXHAUSTED until the buffer has room).
        max_spool_bytes: the spool stops growing here (database down for long); the buffer
            then fills and ``overflow`` applies.
        segment_bytes: a spool segment is closed at this size.
        ship_batch: records per database batch.
        fsync: fsync the spool about once per flush interval (from the shipper thread, so a
            slow disk never delays the spooler): a machine crash then loses about two
            intervals, not whatever the OS had not written.
        shutdown_timeout_s: how long SIGTERM waits for the spool to reach the database;
            what is left stays in the spool for the next start.
    """

    database_url: str = ""
    schema: str | None = None
    spool_dir: Path = Path(".modelyard/prediction-spool")
    flush_interval_ms: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 50
    buffer_capacity: Annotated[int, msgspec.Meta(ge=1)] = 100_000
    overflow: Literal["drop", "reject"] = "drop"
    max_spool_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1024**3
    segment_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 8 * 1024**2
    ship_batch: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 5000
    fsync: bool = True
    shutdown_timeout_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0

    @property
    def enabled(self) -> bool:
        """Whether answers are recorded."""
        return bool(self.database_url)


__all__ = ["LogWriterSettings"]
