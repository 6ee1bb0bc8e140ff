"""The scheduler's shapes: a job's schedule, its stored state, and one run handed to a job."""

from __future__ import annotations

import datetime as dt
import math
import re

import msgspec

from control_plane.scheduler.cron import CronExpression
from modelyard.errors import InvalidArgument

_EVERY = re.compile(r"^every\s+(\d+(?:\.\d+)?)\s*(s|m|h|d)\Z")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_INTERVAL_S = 366 * 86400.0
"""Longest ``every`` interval (a longer one is a cron job: ``@yearly``)."""
MIN_INTERVAL_S = 0.001
"""Shortest ``every`` interval: a shorter one rounded to a zero ``timedelta`` (microseconds), and
every tick then failed dividing by it, so the job never ran."""
_PROBE = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
"""Where :meth:`Schedule.parse` checks that a cron expression fires at all (any moment would
do: an expression that fires at all fires within its search window of every moment)."""


class Schedule(msgspec.Struct, kw_only=True, frozen=True):
    """When a job is due: ``every <n><s|m|h|d>`` (a fixed interval) or a cron expression.

    >>> import datetime as dt
    >>> t0 = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
    >>> s = Schedule.parse("every 10m")
    >>> s.next_due(t0, now=t0 + dt.timedelta(minutes=25)).isoformat()
    '2026-12-04T12:30:00+00:00'
    >>> Schedule.parse("0 3 * * 1").next_due(t0, now=t0).isoformat()
    '2026-12-07T03:00:00+00:00'
    """

    text: str
    interval_s: float | None = None

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """Parse a schedule.

        Raises:
            InvalidArgument: neither an interval (``every 30s``, 1 ms to 366 days)
                nor a valid cron expression that fires at all (``0 0 30 2 *`` never does).
        """
        clean = " ".join(text.strip().lower().split())
        match = _EVERY.match(clean)
        if match is not None:
            seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
            if not MIN_INTERVAL_S <= seconds <= MAX_INTERVAL_S:
                raise InvalidArgument(
                    f"schedule {text!r}: the interval must be at least 1 ms and at most 366 days"
                )
            return cls(text=clean, interval_s=seconds)
        # NOTE: one that never fires (``0 0 30 2 *``) is refused here, not at every tick
        CronExpression.parse(clean).next_after(_PROBE)
        return cls(text=clean)

    @classmethod
    def every(cls, seconds: float) -> Schedule:
        """A fixed interval of ``seconds``.

        Raises:
            InvalidArgument: ``seconds`` is not positive.
        """
        return cls.parse(f"every {seconds:g}s")

    def first_due(self, now: dt.datetime) -> dt.datetime:
        """When a newly registered job first runs: one interval from now, or the next cron tick."""
        if self.interval_s is not None:
            return now + dt.timedelta(seconds=self.interval_s)
        return CronExpression.parse(self.text).next_after(now)

    def next_due(self, due: dt.datetime, *, now: dt.datetime) -> dt.datetime:
        """The next due time after the run due at ``due``, strictly after ``now``.

        Runs missed while no replica was up are coalesced into the one being started: an
        interval job stays on its grid (``due + k * interval``), a cron job takes its next tick.
        """
        if self.interval_s is None:
            return CronExpression.parse(self.text).next_after(max(due, now))
        step = dt.timedelta(seconds=self.interval_s)
        behind = max(0.0, (now - due) / step)
        return due + step * (math.floor(behind) + 1)


class JobState(msgspec.Struct, kw_only=True, frozen=True):
    """A job as stored: schedule, next due time, lease, and its last run."""

    name: str
    schedule: str
    next_run_at: dt.datetime
    running_due_at: dt.datetime | None = None
    """Due time of the run in progress (or interrupted, to be run again); ``None`` when idle."""
    lease_owner: str | None = None
    lease_until: dt.datetime | None = None
    last_started_at: dt.datetime | None = None
    last_finished_at: dt.datetime | None = None
    last_status: str | None = None
    """``running``, ``succeeded``, ``failed`` or ``interrupted``."""
    last_error: str | None = None
    run_count: int = 0
    registered: bool = False
    """True when this replica has a function registered under ``name``."""


class JobRun(msgspec.Struct, kw_only=True, frozen=True):
    """One run handed to a job function."""

    name: str
    due_at: dt.datetime
    """The due time this run stands for (several missed ones coalesce into it)."""
    started_at: dt.datetime
    owner: str
    """The replica running it."""
    rerun: bool = False
    """True when an earlier attempt of this due run was interrupted (crash or shutdown)."""


__all__ = ["JobRun", "JobState", "Schedule"]
