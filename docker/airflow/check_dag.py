"""Run by the Airflow virtualenv's interpreter (``make`` builds ``.venv-airflow``): load the
DAG folder with Airflow's own DagBag and print what the test checks, as JSON."""

from __future__ import annotations

import json
import sys

from airflow.dag_processing.dagbag import DagBag


def main(folder: str) -> None:
    bag = DagBag(dag_folder=folder)
    dag = bag.dags.get("modelyard_retraining")
    report = {
        "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
        "dags": sorted(bag.dags),
        "tasks": {},
        "schedule": None,
        "params": {},
    }
    if dag is not None:
        report["tasks"] = {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}
        report["schedule"] = str(dag.schedule)
        report["params"] = {k: dag.params[k] for k in dag.params}
        report["catchup"] = dag.catchup
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
