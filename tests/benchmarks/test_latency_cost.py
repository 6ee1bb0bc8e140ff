"""latency_cost's rates at shares of a measured capacity (the measuring itself is a benchmark)."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import pytest

from benchmarks.latency_cost import Results, main, rates_from_capacity


def test_rates_follow_the_capacity_of_each_machine() -> None:
    shares = [0.25, 0.5]
    fast, slow = rates_from_capacity(40_000.0, shares), rates_from_capacity(15_400.0, shares)
    assert fast == [10_000.0, 20_000.0]
    assert slow == [3_800.0, 7_700.0]
    assert [f / s for f, s in zip(fast, slow, strict=True)] == pytest.approx([2.6, 2.6], rel=0.02)


@pytest.mark.parametrize("share", ["0", "1", "1.5", "-0.2"])
def test_a_share_outside_zero_to_one_is_refused_before_any_server_starts(
    share: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--capacity-shares", share, "--", "off"])
    assert exited.value.code == 2
    assert "each share must be between 0 and 1" in capsys.readouterr().err


class _Server:
    """What ``measure_alternating`` uses of a started server's process: ``stop``."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def stop(self) -> None:
        self.log.append(f"stop {self.name}")


def _alternate(
    monkeypatch: pytest.MonkeyPatch,
    log: list[str],
    fail_at: int | None = None,
    variants: tuple[str, ...] = ("off", "on"),
) -> Results:
    """``measure_alternating`` over fake servers; the log shows starts, windows and stops."""
    from benchmarks import latency_cost

    def start(variant: str, label: str, args: argparse.Namespace) -> SimpleNamespace:
        log.append(f"start {variant} as {label}")
        return SimpleNamespace(name=variant, server=_Server(variant, log))

    def window(
        started: SimpleNamespace, point: tuple[str, float], args: object, repeats: int
    ) -> dict[str, float]:
        if len([line for line in log if line.startswith("window")]) == fail_at:
            raise RuntimeError("the load generator failed")
        log.append(f"window {started.name} {point[0]}")
        assert repeats == 1  # one window per point and variant in each round
        return {"p99_ms": 1.0, "window": len(log)}

    monkeypatch.setattr(latency_cost, "start", start)
    monkeypatch.setattr(latency_cost, "window", window)
    monkeypatch.setattr(latency_cost, "report", lambda *a: None)
    args = argparse.Namespace(variants=list(variants), rounds=2)
    return latency_cost.measure_alternating([("grpc", 300.0), ("http", 1800.0)], args)


def test_alternating_windows_run_back_to_back_in_abba_order_on_servers_started_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log: list[str] = []
    results = _alternate(monkeypatch, log)
    assert log == [
        "start off as latency0",  # distinct labels: their spool folders must not collide
        "start on as latency1",
        "window off grpc",
        "window on grpc",
        "window on http",
        "window off http",
        "window on grpc",
        "window off grpc",
        "window off http",
        "window on http",
        "stop off",
        "stop on",
    ]
    assert [len(runs) for runs in results] == [2, 2]


def test_alternating_stops_every_server_when_a_window_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log: list[str] = []
    with pytest.raises(RuntimeError, match="load generator failed"):
        _alternate(monkeypatch, log, fail_at=3)
    assert log[-2:] == ["stop off", "stop on"]


def _windows(results: Results) -> list[list[list[float]]]:
    """Which window each variant's figures came from, per round and point."""
    return [[[row["window"] for row in rows.values()] for rows in runs] for runs in results]


def test_a_variant_given_twice_keeps_its_own_windows_when_alternating(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log: list[str] = []
    results = _alternate(monkeypatch, log, variants=("off", "on", "off"))
    # NOTE: windows are numbered by their place in the log, after the three starts; each
    # variant has two rounds of its own windows (by name, the two offs merged into one)
    assert _windows(results) == [[[4, 9], [12, 13]], [[5, 8], [11, 14]], [[6, 7], [10, 15]]]


def test_a_variant_given_twice_keeps_its_own_rounds_on_fresh_servers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from benchmarks import latency_cost

    log: list[str] = []

    def measure(
        variant: str, points: list[tuple[str, float]], args: object
    ) -> dict[tuple[str, float], dict[str, float]]:
        log.append(variant)
        return {point: {"p99_ms": 1.0, "window": len(log)} for point in points}

    monkeypatch.setattr(latency_cost, "measure", measure)
    monkeypatch.setattr(latency_cost, "report", lambda *a: None)
    args = argparse.Namespace(variants=["off", "on", "off"], rounds=2)
    results = latency_cost.measure_rounds([("http", 1800.0)], args)
    assert log == ["off", "on", "off", "off", "on", "off"]  # reversed in the second round
    assert _windows(results) == [[[1], [6]], [[2], [5]], [[3], [4]]]
