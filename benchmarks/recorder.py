"""Per-window latency recording shared by the Python load generators.

A load-generator run is one warm-up followed by ``windows`` consecutive measured windows (the
repeats of a point): connections are set up and warmed once, and each window is summarized on
its own, so the harness can keep the median window. A request belongs to the window in which it
*started* (open loop: in which it was scheduled); requests started during the warm-up are not
recorded.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass, field

from benchmarks.stats import Summary, summarize


@dataclass
class Recorder:
    """Latencies and errors per measured window.

    >>> r = Recorder(measure_from=10.0, window_s=1.0, windows=2)
    >>> r.record(9.5, 9.6, None); r.record(10.2, 10.3, None); r.record(11.5, 11.6, "UNAVAILABLE")
    >>> [(s["requests"], s["errors"]) for s in r.summaries(rows=1)]
    [(1, 0), (0, 1)]
    """

    measure_from: float
    window_s: float
    windows: int = 1
    latencies: list[list[float]] = field(init=False)
    errors: list[Counter[str]] = field(init=False)

    def __post_init__(self) -> None:
        self.latencies = [[] for _ in range(self.windows)]
        self.errors = [Counter() for _ in range(self.windows)]

    @property
    def measure_to(self) -> float:
        """End of the last measured window."""
        return self.measure_from + self.window_s * self.windows

    def record(self, started: float, ended: float, error: str | None) -> None:
        """Record one finished request in the window it started in (warm-up: ignored)."""
        offset = started - self.measure_from
        if offset < 0 or started >= self.measure_to:
            return
        index = min(int(offset // self.window_s), self.windows - 1)
        if error is None:
            self.latencies[index].append(ended - started)
        else:
            self.errors[index][error] += 1

    def summaries(self, rows: int) -> list[Summary]:
        """One summary per window, each with its ``error_codes``."""
        result = []
        for latencies, errors in zip(self.latencies, self.errors, strict=True):
            summary = summarize(latencies, sum(errors.values()), self.window_s, rows)
            summary["error_codes"] = dict(errors)
            result.append(summary)
        return result


def add_window_arguments(parser: argparse.ArgumentParser) -> None:
    """The load generators' window options: ``--duration`` (seconds a window), ``--warmup``
    (seconds before the first), ``--repeats`` (windows) and ``--server-group`` (the server's
    process group, whose CPU :class:`~benchmarks.server_cpu.WindowSampler` records per window;
    0: none).

    >>> parser = argparse.ArgumentParser()
    >>> add_window_arguments(parser)
    >>> parser.parse_args(["--repeats", "3"])
    Namespace(duration=5.0, warmup=1.0, repeats=3, server_group=0)
    """
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=1, help="measured windows")
    parser.add_argument(
        "--server-group",
        type=int,
        default=0,
        help="process group of the server: record its CPU per window",
    )
