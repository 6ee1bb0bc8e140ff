"""The control plane's background scheduler (periodic jobs with a database lease)."""

from __future__ import annotations

from control_plane.scheduler.models import JobRun, JobState, Schedule
from control_plane.scheduler.scheduler import ManualClock, Scheduler

__all__ = ["JobRun", "JobState", "ManualClock", "Schedule", "Scheduler"]
