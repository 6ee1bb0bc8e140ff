"""Run Evidently 0.7's DataDriftPreset on generated cases (inside .venv-evidently).

Usage: ``python evidently_drift.py CASES.json RESULTS.json``. Each case holds a reference and
a current column dict and the numerical/categorical column names; the result per case is
each column's verdict (test status FAIL = drift), method and score, and the dataset verdict
(the drifted-share test fails when the share reaches 0.5). Not collected by pytest: it
imports evidently, which only that venv has.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    definition = DataDefinition(
        numerical_columns=case["numerical"], categorical_columns=case["categorical"]
    )
    reference = Dataset.from_pandas(pd.DataFrame(case["reference"]), data_definition=definition)
    current = Dataset.from_pandas(pd.DataFrame(case["current"]), data_definition=definition)
    snapshot = Report([DataDriftPreset()], include_tests=True).run(current, reference).dict()
    columns: dict[str, dict[str, Any]] = {}
    for metric in snapshot["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            columns[config["column"]] = {"score": metric["value"], "method": config["method"]}
    dataset = None
    for test in snapshot["tests"]:
        name = test["name"]
        if name.startswith("Value Drift for column "):
            columns[name.removeprefix("Value Drift for column ")]["drifted"] = (
                test["status"] == "FAIL"
            )
        elif name.startswith("Share of Drifted Columns"):
            dataset = test["status"] == "FAIL"
    return {"columns": columns, "dataset_drift": dataset}


def main() -> None:
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    results = {case["id"]: run_case(case) for case in cases}
    with open(sys.argv[2], "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
