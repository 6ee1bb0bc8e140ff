"""Retraining: drift, performance, schedule and manual triggers; evaluate; promote only what is
better (see :mod:`control_plane.retraining.service`)."""

from __future__ import annotations

from control_plane.retraining.service import RetrainingService

__all__ = ["RetrainingService"]
