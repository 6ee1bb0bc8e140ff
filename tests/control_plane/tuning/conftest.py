"""Tuning tests share the MLflow store fixtures."""

from __future__ import annotations

from tests.control_plane.mlflow_fixtures import mlflow_template, tracker

__all__ = ["mlflow_template", "tracker"]
