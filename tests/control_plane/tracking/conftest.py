"""Tracking tests share the MLflow store fixtures; their control plane starts on a copy."""

from __future__ import annotations

import pytest

from control_plane.server import ControlPlaneServer
from tests.control_plane.mlflow_fixtures import mlflow_template, seeded_mlflow, tracker

__all__ = ["mlflow_template", "seeded_mlflow", "tracker"]


@pytest.fixture
def control_plane(seeded_mlflow: str, control_plane: ControlPlaneServer) -> ControlPlaneServer:
    """The shared ``control_plane`` fixture, its MLflow store copied from the template first."""
    return control_plane
