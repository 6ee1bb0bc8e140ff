"""Detection delay and false-alarm rate of the streaming detectors on seeded synthetic streams.

``python -m benchmarks.detectors`` prints a Markdown table (the one in ``RESULTS.md``). Each
stream is ``CHANGE`` stationary values, then ``AFTER`` values from the changed distribution;
the seeds make every number reproducible. Nothing is timed: the machine's load does not matter.

- *delay*: values from the change point to the first alarm at or after it (median and 90th
  percentile over the seeds; "missed" counts streams with no alarm within ``AFTER``).
- *false alarms*: alarms before the change point, per 1,000 stationary values.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable

from control_plane.monitoring.detectors import DEFAULT_DETECTORS, StreamMonitor

CHANGE = 2000
AFTER = 1000
SEEDS = range(20)

Stream = Callable[[random.Random], tuple[list[float], list[float]]]


def _scores(mean_after: float) -> Stream:
    """A classifier's scores: Beta-like values around 0.3, then around ``mean_after``."""

    def make(rng: random.Random) -> tuple[list[float], list[float]]:
        def draw(mean: float) -> float:
            return min(1.0, max(0.0, rng.gauss(mean, 0.1)))

        return [draw(0.3) for _ in range(CHANGE)], [draw(mean_after) for _ in range(AFTER)]

    return make


def _errors(rate_after: float) -> Stream:
    """A 0/1 error stream: 10% errors, then ``rate_after``."""

    def make(rng: random.Random) -> tuple[list[float], list[float]]:
        before = [float(rng.random() < 0.1) for _ in range(CHANGE)]
        return before, [float(rng.random() < rate_after) for _ in range(AFTER)]

    return make


def _spread(scale_after: float) -> Stream:
    """Same mean, wider spread (only a shape-aware detector should see it)."""

    def make(rng: random.Random) -> tuple[list[float], list[float]]:
        before = [rng.gauss(0.5, 0.05) for _ in range(CHANGE)]
        return before, [rng.gauss(0.5, 0.05 * scale_after) for _ in range(AFTER)]

    return make


SCENARIOS: list[tuple[str, Stream]] = [
    ("no change (scores)", _scores(0.3)),
    ("score mean 0.3 -> 0.35", _scores(0.35)),
    ("score mean 0.3 -> 0.45", _scores(0.45)),
    ("error rate 10% -> 20%", _errors(0.2)),
    ("error rate 10% -> 40%", _errors(0.4)),
    ("score spread x3, same mean", _spread(3.0)),
]


def evaluate(stream: Stream) -> dict[str, tuple[list[int], int, int]]:
    """Per detector: delays, missed streams, false alarms (over every seed)."""
    results: dict[str, tuple[list[int], int, int]] = {}
    for seed in SEEDS:
        before, after = stream(random.Random(seed))
        monitor = StreamMonitor("s", DEFAULT_DETECTORS, seed=seed)
        hits = monitor.update(before + after)
        for spec in DEFAULT_DETECTORS:
            name = spec.kind.value
            delays, missed, false = results.get(name, ([], 0, 0))
            mine = [h.index for h in hits if h.detector == name]
            false += sum(1 for i in mine if i < CHANGE)
            late = [i - CHANGE for i in mine if i >= CHANGE]
            if late:
                delays.append(late[0])
            else:
                missed += 1
            results[name] = (delays, missed, false)
    return results


def table() -> str:
    """The Markdown table of every scenario and detector."""
    lines = [
        "| scenario | detector | delay median | delay p90 | missed | false alarms / 1k |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for title, stream in SCENARIOS:
        for name, (delays, missed, false) in evaluate(stream).items():
            median = f"{statistics.median(delays):.0f}" if delays else "-"
            p90 = f"{sorted(delays)[int(0.9 * (len(delays) - 1))]}" if delays else "-"
            rate = false / (len(SEEDS) * CHANGE / 1000)
            lines.append(
                f"| {title} | {name} | {median} | {p90} | {missed}/{len(SEEDS)} | {rate:.2f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
