"""``modelyard models ...`` and ``modelyard tokens ...`` end to end on a local SQLite store, and
``--url`` against a running control plane."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import joblib
import msgspec
import numpy as np
import pandas as pd
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

from control_plane.server import ControlPlaneServer
from modelyard.cli import main
from tests.control_plane.features.test_feature_cli import CREATE_AGE
from tests.control_plane.registry.helpers import (
    admin_token_of,
    card,
    conversion,
    lineage,
    with_lineage_features,
)


def _files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "model.onnx").write_bytes(conversion().onnx)
    (tmp_path / "card.json").write_bytes(msgspec.json.encode(card()))
    (tmp_path / "lineage.json").write_bytes(msgspec.json.encode(lineage()))
    return {
        k: str(tmp_path / f)
        for k, f in [("onnx", "model.onnx"), ("card", "card.json"), ("lineage", "lineage.json")]
    }


def _converted(tmp_path: Path) -> Path:
    """`modelyard convert` of a tiny LogisticRegression, as a user would run it."""
    rng = np.random.default_rng(3)
    sample = pd.DataFrame(rng.normal(size=(40, 4)), columns=["a", "b", "c", "d"])
    model = LogisticRegression().fit(sample, (sample["a"] > 0).astype(int))
    joblib.dump(model, tmp_path / "lr.joblib")
    sample.to_csv(tmp_path / "sample.csv", index=False)
    result = CliRunner().invoke(
        main,
        [
            "convert",
            "--model",
            str(tmp_path / "lr.joblib"),
            "--sample",
            str(tmp_path / "sample.csv"),
            "--output",
            str(tmp_path / "converted"),
        ],
    )
    assert result.exit_code == 0, result.output
    return tmp_path / "converted"


def _environment(tmp_path: Path) -> dict[str, str]:
    return {
        "MODELYARD_CONFIG_DIR": str(tmp_path / "no-config"),
        "MODELYARD_DATABASE_URL": f"sqlite:///{tmp_path / 'state' / 'modelyard.db'}",
        "MODELYARD_REGISTRY_ARTIFACT_STORE": str(tmp_path / "artifacts"),
        "MODELYARD_REGISTRY_MODEL_REPOSITORY": str(tmp_path / "repository"),
        "MODELYARD_REGISTRY_MIRROR_TO_MLFLOW": "false",
        "MODELYARD_CONTROL_PLANE_ADMIN_TOKEN_FILE": str(tmp_path / "admin-token"),
    }


def test_models_commands_on_the_local_store(tmp_path: Path) -> None:
    runner = CliRunner(env=_environment(tmp_path))
    files = _files(tmp_path)

    def run(*args: str, code: int = 0) -> object:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return json.loads(result.stdout) if code == 0 and result.stdout.strip() else result

    first = runner.invoke(main, ["tokens", "whoami"])
    assert first.exit_code == 2
    assert "admin token written to" in first.stderr
    assert "needs an API token" in first.stderr
    admin = (tmp_path / "admin-token").read_text().strip()
    run("features", "create", *CREATE_AGE, "--token", admin)  # the lineage names age v1
    dev = run("tokens", "create", "dev", "--role", "developer", "--token", admin)["token"]  # type: ignore[index]
    ann = run("tokens", "create", "ann", "--role", "approver", "--token", admin)["token"]  # type: ignore[index]

    convert_dir = _converted(tmp_path)
    from_conversion = run(
        "models",
        "register",
        "churn-lr",
        "--conversion",
        str(convert_dir),
        "--card",
        files["card"],
        "--lineage",
        files["lineage"],
        "--token",
        dev,
    )
    assert from_conversion["lineage"]["fidelity"]["label_agreement"] == 1.0  # type: ignore[index]
    stored = from_conversion["lineage"]["fidelity"]  # type: ignore[index]
    assert stored["input_precision_bits"] in (32.0, 64.0)
    assert {"input_max_abs_diff", "graph_max_abs_diff"} <= set(stored)
    assert from_conversion["signature"]["feature_names"] == ["a", "b", "c", "d"]  # type: ignore[index]
    model = run(
        "models",
        "register",
        "churn",
        "--onnx",
        files["onnx"],
        "--card",
        files["card"],
        "--lineage",
        files["lineage"],
        "--token",
        dev,
    )
    assert model["version"] == 1  # type: ignore[index]
    run("models", "card", "churn", "1", "--submit", "--token", dev)
    refused = run("models", "approve", "churn", "1", "--token", dev, code=2)
    assert "lacks the 'review' permission" in refused.stderr  # type: ignore[attr-defined]
    run("models", "approve", "churn", "1", "--reason", "looks good", "--token", ann)
    run("models", "transition", "churn", "1", "Staging", "--token", dev)
    run("models", "transition", "churn", "1", "Production", "--token", ann)

    assert run("models", "get", "churn", "--stage", "Production")["version"] == 1  # type: ignore[index]
    assert run("models", "list") == [
        {"name": "churn", "latest_version": 1, "production_version": 1},
        {"name": "churn-lr", "latest_version": 1, "production_version": None},
    ]
    assert run("models", "lineage", "churn", "1")["mlflow_run_id"] == "run-1"  # type: ignore[index]
    usage = run("models", "lineage", "--feature", "age", "--feature-version", "1")
    assert usage["models"] == [  # type: ignore[index]
        {"name": "churn", "version": 1, "stage": "Production"},
        {"name": "churn-lr", "version": 1, "stage": "None"},
    ]
    history = run("models", "card", "churn", "1", "--history")
    assert [r["status"] for r in history] == ["approved"]  # type: ignore[attr-defined]
    assert (tmp_path / "repository" / "churn" / "1" / "model.onnx").is_file()


async def test_models_commands_against_a_running_control_plane(
    control_plane: ControlPlaneServer, tmp_path: Path
) -> None:
    await with_lineage_features(control_plane)
    files = _files(tmp_path)
    admin = admin_token_of(control_plane)
    runner = CliRunner(env={"MODELYARD_CONFIG_DIR": str(tmp_path / "no-config")})
    url = ["--url", control_plane.url]
    register = ["models", "register", "churn", "--onnx", files["onnx"], "--card", files["card"]]
    register += ["--lineage", files["lineage"], *url, "--token", admin]
    # The server runs on this event loop: the (blocking) command runs in a thread.
    result = await asyncio.to_thread(runner.invoke, main, register)
    assert result.exit_code == 0, result.output
    anonymous = await asyncio.to_thread(runner.invoke, main, register[:-2])
    assert anonymous.exit_code == 2
    assert anonymous.stderr.startswith("error: this operation needs an API token")
    listed = await asyncio.to_thread(
        runner.invoke, main, ["models", "list", "--name", "churn", *url]
    )
    assert [m["version"] for m in json.loads(listed.stdout)] == [1]
