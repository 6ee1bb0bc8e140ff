"""The report turns a run into tables with ratios measured in the same run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.report import write_run


def _point(endpoint: str, protocol: str, c: int, rate: float, rows: int = 1) -> dict[str, Any]:
    median = {
        "throughput": rate,
        "rows_per_s": rate * rows,
        "p50_ms": 1.0,
        "p99_ms": 2.0,
        "errors": 0,
        "requests": int(rate),
        "tool": "grpc.aio client",
        "mean_ms": 1.0,
    }
    return {
        "endpoint": endpoint,
        "protocol": protocol,
        "mode": "closed",
        "concurrency": c,
        "rows": rows,
        "median": median,
        "repeat_throughputs": [rate],
    }


def _contender(name: str, points: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "family": name.split("-")[0],
        "status": "ok",
        "points": points,
        "open_loop": [],
        **extra,
    }


def _run() -> dict[str, Any]:
    machine = {
        "cpu": "cpu",
        "cpus": 2,
        "memory_gib": 1.0,
        "kernel": "k",
        "python": "3.11",
        "load_average": [0.1, 0.1, 0.1],
    }
    return {
        "run_id": "RUN",
        "command": "python -m benchmarks run",
        "started_utc": "now",
        "elapsed_s": 1.0,
        "machine": {"before": machine, "after": machine},
        "versions": {"grpcio": "1"},
        "options": {"sla_p99_ms": 10.0, "warmup": 1, "duration": 5, "repeats": 3},
        "notes": [],
        "contenders": [
            _contender("limit", [_point("onnxruntime", "in-process", 1, 40_000.0)]),
            _contender("echo-grpc", [_point("gRPC", "grpc", 64, 4_000.0)]),
            _contender("mlserver-default", [_point("gRPC", "grpc", 64, 500.0)]),
            _contender(
                "modelyard",
                [_point("gRPC", "grpc", 64, 3_800.0)],
                memory=[{"pid": 1, "cmd": "x", "peak_rss_mib": 120.0, "rss_mib": 100.0}],
            ),
            {
                "name": "mlserver-tuned",
                "status": "unavailable",
                "reason": "no venv",
                "points": [],
                "open_loop": [],
            },
        ],
    }


def test_report_writes_ratios_against_the_same_run(tmp_path: Path) -> None:
    results_md = tmp_path / "RESULTS.md"
    path = write_run(_run(), tmp_path / "results", results_md)

    assert path.exists()
    text = results_md.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| modelyard | gRPC | 3,800"))
    cells = [cell.strip() for cell in row.split("|")]
    assert cells[4:8] == ["0.10x", "7.60x", "—", "0.95x"]  # limit, MLServer, tuned, echo
    assert "- mlserver-tuned: unavailable — no venv" in text
    assert "| modelyard | 120.0 (`x`) |" in text
    assert (tmp_path / "results" / "latest-grpc.png").exists()


def _round(k: int, modelyard_rate: float, load: float) -> dict[str, Any]:
    return {
        "round": k,
        "load_before": [load, load, load],
        "load_after": [load + 1, load, load],
        "contenders": [
            _contender("echo-grpc", [_point("gRPC", "grpc", 64, 4_000.0)]),
            _contender("modelyard", [_point("gRPC", "grpc", 64, modelyard_rate)]),
        ],
    }


def test_report_gives_median_and_spread_of_ratios_over_rounds_and_each_rounds_load(
    tmp_path: Path,
) -> None:
    from benchmarks.rounds import representative

    run = _run()
    run["rounds"] = [_round(1, 3_600.0, 2.0), _round(2, 4_400.0, 3.0), _round(3, 2_000.0, 4.0)]
    run["contenders"] = representative(run["rounds"])
    results_md = tmp_path / "RESULTS.md"
    write_run(run, tmp_path / "results", results_md)

    text = results_md.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| modelyard | gRPC | 64 |"))
    cells = [cell.strip() for cell in row.split("|")]
    assert cells[4:7] == ["0.90x", "0.50-1.10", "0.90, 1.10, 0.50"]
    # recorded before the harness measured the server's CPU: dashes, no CPU table, no note
    assert (cells[7], cells[9]) == ("—", "—")
    assert "### Server CPU per point" not in text
    assert "starved point" not in text
    assert "round 1: [2.0, 2.0, 2.0] → [3.0, 2.0, 2.0]" in text
    assert "round 3: [4.0, 4.0, 4.0] → [5.0, 4.0, 4.0]" in text
    # the contender tables show the median round (3,600 req/s), not the last
    assert "| modelyard | gRPC | grpc.aio client | — | — | 3,600 (1.0/2.0) |" in text


def test_results_keep_only_the_latest_run_and_plots_are_regenerated_from_it(
    tmp_path: Path,
) -> None:
    import json
    import subprocess
    import sys

    results = tmp_path / "results"
    first, second = _run(), _run()
    second["run_id"] = "RUN2"
    write_run(first, results, tmp_path / "RESULTS.md")
    write_run(second, results, tmp_path / "RESULTS.md")

    assert sorted(p.name for p in results.glob("*.json")) == ["latest.json"]
    assert json.loads((results / "latest.json").read_text())["run_id"] == "RUN2"
    for png in results.glob("*.png"):
        png.unlink()
    out = tmp_path / "plots"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "plots", "--run", str(results / "latest.json"),
         "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "latest-grpc.png").stat().st_size > 0


def _with_cpu(
    point: dict[str, Any], per_cpu: float, share: float, others: float = 0.02, wait: float = 0.05
) -> dict[str, Any]:
    point["median"] |= {
        "server_cpu_s": round(point["median"]["requests"] / per_cpu, 3),
        "server_cpu_share": share,
        "others_cpu_share": others,
        "server_wait_share": wait,
        "requests_per_cpu_s": per_cpu,
    }
    return point | {"load_before": [1.5, 1.0, 0.5], "load_after": [2.5, 1.2, 0.6]}


def _cpu_round(k: int, rate: float, per_cpu: float, share: float) -> dict[str, Any]:
    def at(name: str, rate: float, per_cpu: float, share: float, **kw: float) -> dict[str, Any]:
        return _contender(name, [_with_cpu(_point("gRPC", "grpc", 64, rate), per_cpu, share, **kw)])

    starved = {"others": 0.45, "wait": 0.6} if k == 2 else {}
    return {
        "round": k,
        "load_before": [1.0, 1.0, 1.0],
        "load_after": [2.0, 1.0, 1.0],
        "contenders": [
            at("echo-grpc", 4_000.0, 10_000.0, 0.98),
            at("modelyard-unobserved", 2_000.0, 5_000.0, 0.97),
            at("modelyard-observed", rate, per_cpu, share, **starved),
        ],
    }


def test_report_gives_requests_per_cpu_second_ratios_core_shares_and_starved_points(
    tmp_path: Path,
) -> None:
    from benchmarks.rounds import representative

    run = _run()
    run["rounds"] = [
        _cpu_round(1, 1_800.0, 4_500.0, 0.96),
        _cpu_round(2, 1_100.0, 4_000.0, 0.55),  # starved: throughput falls, per CPU-s holds
        _cpu_round(3, 1_700.0, 4_250.0, 0.97),
    ]
    run["contenders"] = representative(run["rounds"])
    results_md = tmp_path / "RESULTS.md"
    write_run(run, tmp_path / "results", results_md)
    text = results_md.read_text()

    def cells(prefix: str) -> list[str]:
        row = next(line for line in text.splitlines() if line.startswith(prefix))
        return [cell.strip() for cell in row.split("|")]

    echo_row = cells("| modelyard-observed | gRPC | 64 |")
    assert echo_row[4:8] == ["0.42x", "0.28-0.45", "0.45, 0.28, 0.42", "0.42x (0.40-0.45)"]
    assert echo_row[9] == "0.96/0.98, 0.55/0.98, 0.97/0.98"
    pair = cells("| modelyard-observed | modelyard-unobserved | gRPC | c=64 |")
    assert pair[5:7] == ["0.85x (0.55-0.90)", "0.85x (0.80-0.90)"]
    assert pair[9] == "0.96/0.97, 0.55/0.97, 0.97/0.97"
    # the representative round (median c=64 throughput: round 3) in the per-point table
    point = cells("| modelyard-observed | gRPC | c=64 | 1,700 |")
    assert point[5:10] == ["0.97", "0.02", "0.05", "4,250", "1.50 → 2.50"]
    assert "round 2 modelyard-observed gRPC c=64 (server 0.55, others 0.45, waiting 0.60)" in text
    assert "round 1 modelyard-observed" not in text
