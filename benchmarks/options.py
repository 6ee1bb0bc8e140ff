"""The knobs of one benchmark run (all settable from the command line)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.results_files import RESULTS_DIR


@dataclass
class Options:
    """Knobs of one run (all settable from the command line)."""

    duration: float = 5.0
    warmup: float = 1.0
    repeats: int = 3
    rounds: int = 3
    only: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    open_loop: bool = True
    search_steps: int = 3
    open_duration: float = 3.0
    sla_p99_ms: float = 10.0
    perf_analyzer: bool = True
    work_dir: Path = Path("benchmarks/.work")
    results_dir: Path = RESULTS_DIR
    results_md: Path = Path("benchmarks/RESULTS.md")
    run_id: str = ""
    resume: bool = False
    command: str = ""
    modelyard_python: str = ""
