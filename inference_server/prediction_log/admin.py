"""The ``prediction_log.flush`` admin operation: every worker spools and ships what it holds.

Registered on the server's fan-out (:mod:`inference_server.admin.fanout`) when the log is on;
reached over HTTP as ``POST /v2/prediction_log/flush`` with the admin token. The answer says
how many workers flushed and whether every record they held reached the database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from inference_server.admin.fanout import Operation

if TYPE_CHECKING:
    from collections.abc import Sequence

    from inference_server.admin.fanout import Fanout
    from inference_server.prediction_log.writer import PredictionLogWriter

FLUSH = "prediction_log.flush"


class FlushRequest(msgspec.Struct, kw_only=True, frozen=True):
    """How long each worker may wait for the database."""

    timeout_s: float = 30.0


class Flushed(msgspec.Struct, kw_only=True, frozen=True):
    """What a flush did (per worker, or summed over workers).

    Attributes:
        complete: every record buffered before the call is in the database.
        shipped: records the workers have shipped since they started.
        pending_bytes: spool bytes still on disk.
    """

    complete: bool
    shipped: int
    pending_bytes: int


def _aggregate(results: Sequence[Flushed]) -> Flushed:
    return Flushed(
        complete=all(r.complete for r in results),
        shipped=sum(r.shipped for r in results),
        pending_bytes=sum(r.pending_bytes for r in results),
    )


def register_flush(fanout: Fanout, writer: PredictionLogWriter) -> None:
    """Register :data:`FLUSH` with ``writer`` as this worker's handler."""

    async def flush(request: FlushRequest) -> Flushed:
        complete = await writer.flush(request.timeout_s)
        return Flushed(
            complete=complete, shipped=writer.shipped, pending_bytes=writer.pending_bytes()
        )

    fanout.register(
        Operation(
            name=FLUSH,
            payload_type=FlushRequest,
            result_type=Flushed,
            handler=flush,
            aggregate=_aggregate,
        )
    )


__all__ = ["FLUSH", "FlushRequest", "Flushed", "register_flush"]
