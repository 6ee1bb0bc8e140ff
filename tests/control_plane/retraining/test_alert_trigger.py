"""The composition root wires monitoring's alerts to retraining (property 27 end to end): a
drift alert raised by monitoring starts a retraining run of its model, a repeat of it does not
start a second one, and a streaming alert starts none."""

from __future__ import annotations

import msgspec
import pytest

from control_plane.monitoring.models import AlertType
from modelyard.enums import TriggerType
from tests.control_plane.monitoring.helpers import drift_candidate
from tests.control_plane.retraining.conftest import Services
from tests.control_plane.retraining.helpers import (
    DEVELOPER,
    churn_table,
    production_version,
    spec_for,
    weak_model,
)

pytestmark = pytest.mark.slow


def test_a_drift_alert_starts_retraining(services: Services) -> None:
    name = "churn-alerted"
    frame = churn_table(5)
    data = services.root / f"{name}.parquet"
    frame.to_parquet(data)
    cp = services.services
    version = services.run(production_version(cp, name, weak_model(frame, 5), frame))
    services.run(cp.retraining_service.put_spec(name, spec_for(data), DEVELOPER))
    streaming = msgspec.structs.replace(drift_candidate(model=name), type=AlertType.STREAMING_DRIFT)
    services.run(cp.monitoring.alerts.raise_alert(streaming))
    assert services.run(cp.retraining_service.list(name)) == []
    alert, _ = services.run(
        cp.monitoring.alerts.raise_alert(drift_candidate(model=name, version=version))
    )
    [run] = services.run(cp.retraining_service.list(name))
    assert run.trigger.trigger_type is TriggerType.DRIFT
    assert run.trigger.reason == alert.summary
    services.run(cp.retraining_service.wait(run.id))
