"""Properties 6-10 of issue 6 on a real MLflow SQLite store (one store per test).

Each hypothesis example works in an experiment of its own, so examples never see each
other's runs.
"""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control_plane.tracking.tracker import ExperimentTracker

PROPERTY_SETTINGS = settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

names = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
param_values = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=40),
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
metric_values = st.floats(allow_nan=False, allow_infinity=False, width=64)


def fresh_experiment() -> str:
    return f"exp-{uuid.uuid4().hex[:12]}"


@PROPERTY_SETTINGS
@given(shape=st.lists(st.integers(0, 2), min_size=1, max_size=6))
def test_property_6_runs_have_unique_ids(tracker: ExperimentTracker, shape: list[int]) -> None:
    """Every started run, top-level or nested, gets an id no other run has."""
    experiment = fresh_experiment()
    ids: list[str] = []
    for children in shape:
        with tracker.start_run(experiment) as parent:
            ids.append(parent.run_id)
            for _ in range(children):
                with parent.start_child() as child:
                    ids.append(child.run_id)
    assert len(set(ids)) == len(ids)
    found = tracker.search_runs([experiment], max_results=1000)
    assert sorted(run.run_id for run in found) == sorted(ids)
    assert all(tracker.get_run(run_id).run_id == run_id for run_id in ids)


@PROPERTY_SETTINGS
@given(
    params=st.dictionaries(names, param_values, max_size=30),
    batches=st.integers(1, 3),
)
def test_property_7_every_logged_param_is_stored(
    tracker: ExperimentTracker, params: dict[str, object], batches: int
) -> None:
    """All params logged (in one call or several) come back, each with its exact value."""
    items = list(params.items())
    with tracker.start_run(fresh_experiment()) as run:
        for index in range(batches):
            run.log_params(dict(items[index::batches]))
    expected = {key: str(value) for key, value in params.items()}
    assert tracker.get_run(run.run_id).params == expected
    (found,) = tracker.search_runs([run.experiment])
    assert found.params == expected


@PROPERTY_SETTINGS
@given(series=st.dictionaries(names, st.lists(metric_values, min_size=1, max_size=5), max_size=8))
def test_property_8_every_logged_metric_is_stored(
    tracker: ExperimentTracker, series: dict[str, list[float]]
) -> None:
    """Every metric keeps every step's value; the run shows the value of the last step."""
    with tracker.start_run(fresh_experiment()) as run:
        for step in range(max((len(values) for values in series.values()), default=0)):
            run.log_metrics(
                {key: values[step] for key, values in series.items() if step < len(values)},
                step=step,
            )
    got = tracker.get_run(run.run_id)
    assert got.metrics == {key: values[-1] for key, values in series.items()}
    for key, values in series.items():
        history = tracker.metric_history(run.run_id, key)
        assert [(point.step, point.value) for point in history] == list(enumerate(values))


run_rows = st.lists(
    st.tuples(metric_values, st.from_regex(r"[A-Za-z0-9]{1,8}", fullmatch=True)),
    min_size=1,
    max_size=8,
)


@PROPERTY_SETTINGS
@given(rows=run_rows, descending=st.booleans())
def test_property_9_search_results_are_sorted(
    tracker: ExperimentTracker, rows: list[tuple[float, str]], descending: bool
) -> None:
    """order_by on a metric, a param and an attribute returns the runs in that order."""
    experiment = fresh_experiment()
    for index, (value, label) in enumerate(rows):
        with tracker.start_run(experiment, start_time_ms=1_000_000 + 7919 * index) as run:
            run.log_metrics({"score": value})
            run.log_params({"label": label})
    with tracker.start_run(experiment, start_time_ms=1) as missing:
        pass
    direction = "DESC" if descending else "ASC"

    def search(clause: str) -> list[str]:
        return [r.run_id for r in tracker.search_runs([experiment], order_by=[clause])]

    by_metric = [tracker.get_run(run_id) for run_id in search(f"metrics.score {direction}")]
    scores = [run.metrics["score"] for run in by_metric[:-1]]
    assert scores == sorted(scores, reverse=descending)
    assert by_metric[-1].run_id == missing.run_id  # runs without the metric come last
    by_param = [tracker.get_run(run_id) for run_id in search(f"params.label {direction}")]
    labels = [run.params["label"] for run in by_param if "label" in run.params]
    assert labels == sorted(labels, reverse=descending)
    by_start = [tracker.get_run(run_id) for run_id in search(f"attributes.start_time {direction}")]
    starts = [run.start_time_ms for run in by_start]
    assert starts == sorted(starts, reverse=descending)
    assert len(search("metrics.score DESC")) == len(rows) + 1


@PROPERTY_SETTINGS
@given(
    runs=st.lists(
        st.tuples(
            st.dictionaries(names, st.from_regex(r"[a-z0-9.]{0,6}", fullmatch=True), max_size=4),
            st.dictionaries(names, metric_values, max_size=4),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_property_10_comparison_includes_all_data(
    tracker: ExperimentTracker, runs: list[tuple[dict[str, str], dict[str, float]]]
) -> None:
    """Every param and metric of every run appears, None exactly where a run lacks it."""
    experiment = fresh_experiment()
    run_ids = []
    for params, metrics in runs:
        with tracker.start_run(experiment) as run:
            run.log_params(params)
            run.log_metrics(metrics)
        run_ids.append(run.run_id)
    comparison = tracker.compare_runs(run_ids)
    assert comparison.run_ids == run_ids
    assert set(comparison.params) == {key for params, _ in runs for key in params}
    assert set(comparison.metrics) == {key for _, metrics in runs for key in metrics}
    for column, (params, metrics) in enumerate(runs):
        for key, cells in comparison.params.items():
            assert cells[column] == params.get(key)
        for key, values in comparison.metrics.items():
            assert values[column] == metrics.get(key)
