"""Process wiring of one inference-server process: what is decided at start, not configured.

The configuration of a server process is :class:`modelyard.settings.Settings`, one object for
the whole process (its ``server`` and ``prediction_log`` sections). What it does not hold is
how this process sits among the others, which ``modelyard serve`` decides when it spawns its
workers: :class:`WorkerSeat`. A lone process (tests, ``--workers 1``) has no seat.
"""

from __future__ import annotations

import msgspec


class WorkerSeat(msgspec.Struct, kw_only=True, frozen=True):
    """This process's place among the N workers of one server (``modelyard serve --workers N``).

    A worker with a seat binds its gRPC and HTTP ports with SO_REUSEPORT (the N workers share
    them), applies admin calls through its supervisor, and serves its metrics on
    ``server.metrics_port + index``.

    Attributes:
        index: k in ``0..N-1``; also names the worker's prediction-log spool ``worker-k``.
        control_socket: the supervisor's Unix socket (:mod:`inference_server.admin.supervisor`).
    """

    index: int
    control_socket: str


__all__ = ["WorkerSeat"]
