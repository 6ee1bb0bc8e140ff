"""``benchmarks/results/`` keeps the latest run of each benchmark kind under a fixed name only.

The folder is in git: a file not in :data:`benchmarks.results_files.ALLOWED` there fails the
first test, so the folder cannot grow again. The others check that every writer's default
output is its kind's fixed name, that a writer refuses another name inside the folder, and
that the load test's log is written (and replaced) by the code, not by hand.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
import pytest

from benchmarks import batch_bench, observation_cpu, open_loop_batching, stream_vs_unary
from benchmarks.cli import loadtest, plots, run
from benchmarks.loadtest import LoadTest, run_loadtest, tee
from benchmarks.options import Options
from benchmarks.report import write_run
from benchmarks.results_files import ALLOWED, LATEST, PLOTS, RESULTS_DIR, latest

ROOT = Path(__file__).resolve().parents[2]


def test_results_folder_holds_only_the_fixed_latest_names() -> None:
    assert RESULTS_DIR == ROOT / "benchmarks" / "results"
    extra = sorted(p.name for p in RESULTS_DIR.iterdir() if p.name not in ALLOWED)
    assert extra == [], (
        f"benchmarks/results/ holds {extra}: only {sorted(ALLOWED)} are allowed (one fixed "
        "file per benchmark kind, see benchmarks/results_files.py); cite older runs in "
        "RESULTS.md with `git show <commit>:<path>`, keep other copies in benchmarks/.work/"
    )


def test_the_plots_in_the_results_folder_are_ignored_by_git() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "benchmarks/results/*.png" in ignored
    assert all(name.endswith(".png") for name in PLOTS)
    assert not set(PLOTS) & set(LATEST.values())


def _default(command: click.Command, name: str) -> object:
    return next(p.default for p in command.params if p.name == name)


def test_every_writer_defaults_to_its_kinds_fixed_file() -> None:
    assert batch_bench.parse_args([]).out == latest("batch") == RESULTS_DIR / "batch-latest.json"
    assert open_loop_batching.parse_args([]).out == RESULTS_DIR / "open-loop-batching-latest.json"
    assert stream_vs_unary.parse_args([]).json == RESULTS_DIR / "stream-vs-unary-latest.json"
    assert _default(loadtest, "log") == RESULTS_DIR / "loadtest-latest.log"
    assert Options().results_dir == _default(run, "results_dir") == RESULTS_DIR
    assert _default(plots, "run_file") == RESULTS_DIR / "latest.json"
    assert _default(plots, "out") == RESULTS_DIR
    assert observation_cpu.parse_args([]).out is None


@pytest.mark.parametrize(
    ("parse", "flag"),
    [
        (batch_bench.parse_args, "--out"),
        (open_loop_batching.parse_args, "--out"),
        (stream_vs_unary.parse_args, "--json"),
        (observation_cpu.parse_args, "--out"),
    ],
)
def test_a_writer_refuses_another_name_in_the_results_folder_and_accepts_one_outside(
    parse: Callable[[list[str]], object], flag: str, tmp_path: Path
) -> None:
    for path in (RESULTS_DIR / "run-20261204T0838Z.json", RESULTS_DIR / "old" / "latest.json"):
        with pytest.raises(SystemExit, match="one file per benchmark kind"):
            parse([flag, str(path)])
    archive = tmp_path / "run-1.json"
    assert getattr(parse([flag, str(archive)]), flag.lstrip("-")) == archive


def test_the_harness_refuses_a_folder_below_the_results_folder(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"harness writes only latest\.json there"):
        write_run({}, RESULTS_DIR / "runs", tmp_path / "RESULTS.md")
    assert not (RESULTS_DIR / "runs").exists()


def test_the_load_test_command_refuses_another_log_name_in_the_results_folder() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "loadtest", "--log", str(RESULTS_DIR / "lt.log")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode != 0
    assert "loadtest writes only loadtest-latest.log there" in done.stderr
    assert not (RESULTS_DIR / "lt.log").exists()


def test_tee_copies_stdout_and_stderr_to_the_log_and_returns_the_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = "import sys; print('out', flush=True); print('err', file=sys.stderr); sys.exit(3)"
    with (tmp_path / "log").open("w") as log:
        assert tee([sys.executable, "-c", script], log) == 3
    assert (tmp_path / "log").read_text() == "out\nerr\n"
    assert capsys.readouterr().out == "out\nerr\n"


def test_the_load_test_log_is_replaced_by_each_run(tmp_path: Path) -> None:
    log = tmp_path / "sub" / "loadtest-latest.log"
    assert run_loadtest(LoadTest(protocols=(), log=log, command="first")) == 0
    assert run_loadtest(LoadTest(protocols=(), log=log, command="second")) == 0
    assert log.read_text() == "$ second\nloadtest: SLA passed\n"
