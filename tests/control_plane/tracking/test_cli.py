"""``modelyard experiments`` against the local store and against a control plane."""

from __future__ import annotations

import asyncio
import json

from click.testing import CliRunner, Result

from control_plane.server import ControlPlaneServer
from control_plane.tracking.tracker import ExperimentTracker
from modelyard.cli import main


def invoke(uri: str, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"MODELYARD_TRACKING_URI": uri})


def test_list_search_get_compare_on_the_local_store(tracker: ExperimentTracker) -> None:
    with tracker.start_run("churn", run_name="a") as first:
        first.log_params({"lr": 0.1})
        first.log_metrics({"auc": 0.8})
    with tracker.start_run("churn", run_name="b") as second:
        second.log_metrics({"auc": 0.9, "loss": 0.3})
    uri = tracker.tracking_uri
    assert "churn" in invoke(uri, "experiments", "list").output
    searched = invoke(uri, "experiments", "search", "-e", "churn", "--order-by", "metrics.auc DESC")
    assert searched.exit_code == 0, searched.output
    assert [line.split("\t")[1] for line in searched.output.splitlines()] == ["b", "a"]
    got = json.loads(invoke(uri, "experiments", "get", first.run_id).output)
    assert got["params"] == {"lr": "0.1"}
    compared = invoke(uri, "experiments", "compare", first.run_id, second.run_id).output
    assert compared.splitlines() == [
        "name\ta\tb",
        "params.lr\t0.1\t-",
        "metrics.auc\t0.8\t0.9",
        "metrics.loss\t-\t0.3",
    ]


def test_bad_input_is_one_line_and_exit_2(tracker: ExperimentTracker) -> None:
    tracker.experiment_id("churn")
    uri = tracker.tracking_uri
    bad = invoke(uri, "experiments", "search", "--filter", "metrics.auc >")
    assert bad.exit_code == 2
    assert bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("error: invalid filter 'metrics.auc >'")
    unknown = invoke(uri, "experiments", "get", "feedface")
    assert (unknown.exit_code, unknown.stderr) == (2, "error: run 'feedface' not found\n")


async def test_commands_work_against_a_control_plane(control_plane: ControlPlaneServer) -> None:
    assert control_plane.services is not None
    with control_plane.services.tracker.start_run("remote", run_name="r") as run:
        run.log_metrics({"auc": 0.5})
    url = control_plane.url
    # The CLI is synchronous and the server shares this loop: run the CLI on a thread.
    searched = await asyncio.to_thread(
        invoke, "sqlite:///unused.db", "experiments", "search", "--url", url, "-e", "remote"
    )
    assert searched.exit_code == 0, searched.output
    assert run.run_id in searched.output
    unknown = await asyncio.to_thread(
        invoke, "sqlite:///unused.db", "experiments", "compare", "--url", url, run.run_id, "zz"
    )
    assert (unknown.exit_code, unknown.stderr) == (2, "error: run 'zz' not found\n")
    bad = await asyncio.to_thread(
        invoke, "sqlite:///unused.db", "experiments", "search", "--url", url, "--filter", "x >"
    )
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: invalid filter 'x >'")
