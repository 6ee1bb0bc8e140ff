"""Properties 27-30 of retraining, with real worker processes, a real MLflow store and both
databases.

Each example registers a Production version, sets a retraining spec over a generated table and
lets the control plane retrain in a worker process. Examples are few (each one trains, converts
and evaluates twice for real); hypothesis picks the data seed, the margin and the trigger.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control_plane.retraining.models import STEPS, RunStatus
from modelyard import model_repository as layout
from modelyard.enums import ModelStage, TriggerType
from tests.control_plane.retraining.conftest import Services
from tests.control_plane.retraining.helpers import (
    DEVELOPER,
    churn_table,
    production_version,
    spec_for,
    step_names,
    strong_model,
    weak_model,
)

pytestmark = pytest.mark.slow

PROPERTY = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None, max_examples=2
)
SEEDS = st.integers(min_value=0, max_value=10_000)


def _setup(services: Services, seed: int, *, production_is_strong: bool, **spec: object) -> str:
    """A model whose Production version is strong or weak, and its retraining spec."""
    name = f"churn-{seed}-{'s' if production_is_strong else 'w'}-{len(spec)}"
    frame = churn_table(seed)
    data = services.root / f"{name}.parquet"
    frame.to_parquet(data)
    model = strong_model(frame) if production_is_strong else weak_model(frame, seed)
    cp = services.services
    services.run(production_version(cp, name, model, frame))
    services.run(cp.retraining_service.put_spec(name, spec_for(data, **spec), DEVELOPER))
    return name


@PROPERTY
@given(seed=SEEDS, kind=st.sampled_from(["drift", "performance"]))
def test_property_27_drift_alerts_trigger_retraining(
    services: Services, seed: int, kind: str
) -> None:
    name = _setup(services, seed, production_is_strong=False)
    retraining = services.services.retraining_service
    run = services.run(retraining.on_alert(kind, name, f"{kind} alert on {name}"))
    assert run is not None, "an alert on a model with a spec starts a run"
    assert run.trigger.trigger_type is TriggerType(kind)
    again = services.run(retraining.on_alert(kind, name, "the same alert again"))
    assert again is not None
    assert again.id == run.id, "a second alert while the first run is active attaches to it"
    assert [t.reason for t in again.attached] == ["the same alert again"]
    done = services.run(retraining.wait(run.id))
    assert done.status in (RunStatus.PROMOTED, RunStatus.REJECTED), done.error


@PROPERTY
@given(seed=SEEDS, strong=st.booleans())
def test_property_28_retraining_includes_evaluation(
    services: Services, seed: int, strong: bool
) -> None:
    name = _setup(services, seed, production_is_strong=strong)
    cp = services.services
    production = services.run(cp.registry.production(name))
    run = services.run(cp.retraining_service.trigger(name, TriggerType.MANUAL, "property 28"))
    done = services.run(cp.retraining_service.wait(run.id))
    assert done.status in (RunStatus.PROMOTED, RunStatus.REJECTED), done.error
    assert step_names(done) == list(STEPS), "evaluation happens before register and decide"
    assert all(step.status == "succeeded" for step in done.steps)
    comparison = done.comparison
    assert comparison is not None
    assert comparison.production_version == production.version
    assert comparison.holdout_rows > 0
    assert set(comparison.candidate) == set(comparison.production) >= {"auc", "log_loss"}
    assert done.decision is not None
    assert "auc" in done.decision


@PROPERTY
@given(seed=SEEDS, margin=st.floats(min_value=0.0, max_value=0.05))
def test_property_29_better_models_are_promoted_to_staging(
    services: Services, seed: int, margin: float
) -> None:
    name = _setup(services, seed, production_is_strong=False, min_improvement=margin)
    cp = services.services
    before = services.run(cp.registry.production(name))
    run = services.run(cp.retraining_service.trigger(name, TriggerType.SCHEDULE, "property 29"))
    done = services.run(cp.retraining_service.wait(run.id))
    assert done.status is RunStatus.PROMOTED, done.decision or done.error
    assert done.comparison is not None
    gain = done.comparison.candidate["auc"] - done.comparison.production["auc"]
    assert gain >= margin
    assert done.candidate_version is not None
    candidate = services.run(cp.registry.get(name, done.candidate_version))
    assert candidate.stage is ModelStage.STAGING, "to Staging, never straight to Production"
    assert candidate.lineage.parent_version == before.version
    assert services.run(cp.registry.production(name)).version == before.version
    served = layout.scan_model(Path(cp.settings.registry.model_repository) / name)
    assert done.candidate_version in served, "the Staging candidate is published"


@PROPERTY
@given(seed=SEEDS, margin=st.floats(min_value=0.0, max_value=0.05))
def test_property_30_worse_models_are_not_deployed(
    services: Services, seed: int, margin: float
) -> None:
    trainer = "tests.control_plane.retraining.helpers:train_on_shuffled_labels"
    name = _setup(
        services, seed, production_is_strong=True, min_improvement=margin, trainer=trainer
    )
    cp = services.services
    repository = Path(cp.settings.registry.model_repository) / name
    before = services.run(cp.registry.production(name))
    served_before = layout.scan_model(repository)
    config_before = (repository / layout.CONFIG_FILENAME).read_bytes()
    run = services.run(cp.retraining_service.trigger(name, TriggerType.DRIFT, "property 30"))
    done = services.run(cp.retraining_service.wait(run.id))
    assert done.status is RunStatus.REJECTED, done.decision or done.error
    assert done.decision is not None
    assert "not better" in done.decision
    assert done.candidate_version is not None
    candidate = services.run(cp.registry.get(name, done.candidate_version))
    assert candidate.stage is ModelStage.NONE, "registered for the record, never deployed"
    assert services.run(cp.registry.production(name)).version == before.version
    assert layout.scan_model(repository) == served_before, "the repository is untouched"
    assert (repository / layout.CONFIG_FILENAME).read_bytes() == config_before
