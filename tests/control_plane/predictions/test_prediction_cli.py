"""``modelyard predictions list|feedback|unpack`` on a local SQLite store (in-process app)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner

from modelyard.cli import main
from modelyard.prediction_log import prediction_log, record_values
from modelyard.storage import Database, upgrade
from tests.control_plane.predictions.blocks import make_block, ship
from tests.control_plane.predictions.test_prediction_service import record


async def _seed(url: str) -> None:
    database = Database(url)
    try:
        await upgrade(database)
        async with database.write() as conn:
            rows = [record_values(record(f"r{i}", variant="control")) for i in range(3)]
            await conn.execute(prediction_log.insert(), rows)
    finally:
        await database.dispose()


def test_list_and_feedback_on_the_local_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state' / 'modelyard.db'}"
    asyncio.run(_seed(url))
    runner = CliRunner(
        env={
            "MODELYARD_CONFIG_DIR": str(tmp_path / "no-config"),
            "MODELYARD_DATABASE_URL": url,
            "MODELYARD_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "MODELYARD_TRACKING_ARTIFACT_ROOT": str(tmp_path / "mlartifacts"),
            "MODELYARD_REGISTRY_MIRROR_TO_MLFLOW": "false",
            "MODELYARD_CONTROL_PLANE_ADMIN_TOKEN_FILE": str(tmp_path / "admin-token"),
        }
    )
    refused = runner.invoke(main, ["predictions", "list"])
    assert refused.exit_code == 2
    assert "needs an API token" in refused.stderr
    token = (tmp_path / "admin-token").read_text().strip()
    listed = runner.invoke(
        main, ["predictions", "list", "--model", "churn", "--limit", "2", "--token", token]
    )
    assert listed.exit_code == 0, listed.output
    page = json.loads(listed.stdout)
    assert [item["request_id"] for item in page["items"]] == ["r0", "r1"]
    rest = runner.invoke(
        main, ["predictions", "list", "--cursor", str(page["next_cursor"]), "--token", token]
    )
    assert [item["request_id"] for item in json.loads(rest.stdout)["items"]] == ["r2"]
    outcomes = tmp_path / "outcomes.json"
    outcomes.write_text(json.dumps({"outcomes": [{"request_id": "r0", "label": 1}]}))
    fed = runner.invoke(main, ["predictions", "feedback", str(outcomes), "--token", token])
    assert fed.exit_code == 0, fed.output
    assert json.loads(fed.stdout)["accepted"] == 1
    outcomes.write_text(json.dumps({"request_id": "r0"}))
    bad = runner.invoke(main, ["predictions", "feedback", str(outcomes), "--token", token])
    assert bad.exit_code == 2
    assert "none of label" in bad.stderr
    asyncio.run(_ship(url))
    unpacked = runner.invoke(main, ["predictions", "unpack", "--token", token])
    assert unpacked.exit_code == 0, unpacked.output
    assert json.loads(unpacked.stdout) == {
        "unpacked_blocks": 1,
        "pending_blocks": 0,
        "pending_records": 0,
        "dropped_blocks": 0,
    }
    shipped = runner.invoke(main, ["predictions", "list", "--model", "churn", "--token", token])
    assert [item["request_id"] for item in json.loads(shipped.stdout)["items"]][3:] == [
        "a-0",
        "a-1",
    ]


async def _ship(url: str) -> None:
    database = Database(url)
    try:
        await ship(database, make_block("a", rows=1))
    finally:
        await database.dispose()
