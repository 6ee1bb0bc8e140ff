"""ExperimentTracker over a real MLflow SQLite store: runs, nesting, logging, errors."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from control_plane.tracking.models import RunStatus
from control_plane.tracking.tracker import ExperimentTracker
from modelyard.errors import InvalidArgument, NotFound
from tests.conftest import POSTGRES_URL, require_postgres
from tests.control_plane.mlflow_fixtures import copy_store


def test_context_manager_nests_and_ends_runs(tracker: ExperimentTracker, tmp_path: Path) -> None:
    with tracker.start_run("exp", run_name="parent") as parent:
        parent.log_params({"model": "lgbm", "lr": 0.1})
        with parent.start_child("child") as child:
            child.log_metrics({"loss": 0.5}, step=0)
            child.log_metrics({"loss": 0.25}, step=1)
    with pytest.raises(RuntimeError), tracker.start_run("exp", run_name="broken") as broken:
        raise RuntimeError("boom")
    assert tracker.get_run(parent.run_id).status is RunStatus.FINISHED
    assert tracker.get_run(broken.run_id).status is RunStatus.FAILED
    got = tracker.get_run(child.run_id)
    assert got.parent_run_id == parent.run_id
    assert got.metrics == {"loss": 0.25}
    assert [p.value for p in tracker.metric_history(child.run_id, "loss")] == [0.5, 0.25]
    assert tracker.get_run(parent.run_id).params == {"model": "lgbm", "lr": "0.1"}


def test_artifacts_land_under_the_configured_root(
    tracker: ExperimentTracker, tmp_path: Path
) -> None:
    report = tmp_path / "report.txt"
    report.write_text("hello")
    with tracker.start_run("artifacts") as run:
        run.log_artifact(report, "reports")
    assert tracker.list_artifacts(run.run_id, "reports") == ["reports/report.txt"]
    assert (tmp_path / "mlartifacts").is_dir()
    assert not (tmp_path / "mlruns").exists()
    assert tracker.get_run(run.run_id).artifact_uri.startswith((tmp_path / "mlartifacts").as_uri())


def test_end_run_records_the_status(tracker: ExperimentTracker) -> None:
    run = tracker.start_run("status")
    tracker.end_run(run.run_id, RunStatus.KILLED)
    got = tracker.get_run(run.run_id)
    assert got.status is RunStatus.KILLED
    assert got.end_time_ms is not None


def test_invalid_filter_names_the_problem(tracker: ExperimentTracker) -> None:
    tracker.experiment_id("search")
    with pytest.raises(InvalidArgument, match=r"invalid filter 'metrics.auc >'"):
        tracker.search_runs(["search"], filter="metrics.auc >")
    with pytest.raises(InvalidArgument, match="Invalid attribute key 'colour'"):
        tracker.search_runs(["search"], filter="colour = 'red'")
    with pytest.raises(InvalidArgument, match=r"order_by clause 'metrics\.auc sideways'"):
        tracker.search_runs(["search"], order_by=["metrics.auc sideways"])
    with pytest.raises(InvalidArgument, match="max_results=0"):
        tracker.search_runs(["search"], max_results=0)


def test_unknown_ids_are_not_found(tracker: ExperimentTracker) -> None:
    with pytest.raises(NotFound, match="run 'feedface' not found"):
        tracker.get_run("feedface")
    with tracker.start_run("known") as run:
        pass
    with pytest.raises(NotFound, match="run 'feedface' not found"):
        tracker.compare_runs([run.run_id, "feedface"])
    with pytest.raises(NotFound, match="experiment 'nope' not found"):
        tracker.search_runs(["nope"])
    with pytest.raises(InvalidArgument, match="at least one run id"):
        tracker.compare_runs([])


def test_file_store_uris_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="file store is deprecated"):
        ExperimentTracker(f"file://{tmp_path}/mlruns")
    with pytest.raises(InvalidArgument, match="file store is deprecated"):
        ExperimentTracker("mlruns")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(
    request: pytest.FixtureRequest, mlflow_template: Path, tmp_path: Path
) -> Iterator[ExperimentTracker]:
    """A tracker over a fresh MLflow store in SQLite, or in a new PostgreSQL database."""
    if request.param == "sqlite":
        yield ExperimentTracker(copy_store(mlflow_template, tmp_path), str(tmp_path / "art"))
        return
    require_postgres()
    name = f"mlflow_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(_psycopg(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = f"{_psycopg(POSTGRES_URL).rsplit('/', 1)[0]}/{name}"
        yield ExperimentTracker(url, str(tmp_path / "art"))
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def test_hostile_searches_and_tags_name_the_problem_on_both_stores(
    any_store: ExperimentTracker,
) -> None:
    """A fuzz on PostgreSQL-backed MLflow (2026-12-06): a number beyond 64 bits in a filter was
    a 500 on both stores (MLflow wraps the store's error as INTERNAL_ERROR); NUL in a filter, an
    order clause or an experiment name a 500 on PostgreSQL and 200/404 on SQLite; 200 order
    clauses a 500 on SQLite; a tag "mlflow.parentRunId" set any parent, unchecked."""
    tracker = any_store
    with tracker.start_run("hostile") as run:
        run.log_params({"a": "1"})
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: tracker.search_runs([], filter="attributes.start_time > 99999999999999999999"),
         "cannot hold a value"),
        (lambda: tracker.search_runs([], filter="params.a = 'x\x00'"), "holds NUL"),
        (lambda: tracker.search_runs([], order_by=["params.`a\x00`"]), "holds NUL"),
        (lambda: tracker.search_runs(["a\x00b"]), "holds NUL"),
        (lambda: tracker.search_runs([], filter=" and ".join(["params.a = '1'"] * 31)),
         "31 clauses; at most 30"),
        (lambda: tracker.search_runs([], order_by=["params.a"] * 21), "at most 20"),
        (lambda: tracker.start_run("hostile", tags={"mlflow.parentRunId": "garbage"}),
         "MLflow's own"),
        (lambda: tracker.start_run("Default"), "keeps its artifacts in ./mlruns"),
    ]  # fmt: skip
    for call, named in cases:
        with pytest.raises(InvalidArgument, match=re.escape(named)):
            call()
    found = tracker.search_runs([], filter=" and ".join(["params.a = '1'"] * 30))
    assert [r.run_id for r in found] == [run.run_id]
