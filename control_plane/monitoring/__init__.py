"""Monitoring: alerts with de-duplication, notifications with retries and dead letters."""

from __future__ import annotations
