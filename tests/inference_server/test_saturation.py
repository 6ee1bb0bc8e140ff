"""SaturationDetector: the batcher's load signal, on injected clocks (no timing involved)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from inference_server.background import BackgroundCpu
from inference_server.saturation import (
    SATURATED_OFF,
    SATURATED_ON,
    SaturationDetector,
)

MS = 1_000_000


class CpuClock:
    """A busy clock (ns the core was busy) that the test advances by hand; counts its reads."""

    def __init__(self) -> None:
        self.ns = 0
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        return self.ns


def _run(
    detector: SaturationDetector, clock: CpuClock, start_ms: int, ms: int, share: float
) -> int:
    """Burn ``share`` of the core for ``ms`` ms from ``start_ms``, asking every ms; the end."""
    for t in range(start_ms + 1, start_ms + ms + 1):
        clock.ns += int(share * MS)
        detector.saturated(t * MS)
    return start_ms + ms


def test_a_core_kept_busy_is_saturated_and_idle_time_ends_it() -> None:
    clock = CpuClock()
    detector = SaturationDetector(busy_clock=clock, tau_ns=5 * MS)
    assert not detector.saturated(0)
    t = _run(detector, clock, 0, 100, share=1.0)
    assert detector.saturated_now
    assert detector.share > 0.99
    _run(detector, clock, t, 100, share=0.3)
    assert not detector.saturated_now
    assert abs(detector.share - 0.3) < 0.01


def test_between_the_thresholds_the_verdict_holds_either_way() -> None:
    between = (SATURATED_ON + SATURATED_OFF) / 2
    clock = CpuClock()
    idle = SaturationDetector(busy_clock=clock, tau_ns=5 * MS)
    idle.saturated(0)
    _run(idle, clock, 0, 200, share=between)
    assert not idle.saturated_now  # was never saturated: lingering does not start

    clock = CpuClock()
    busy = SaturationDetector(busy_clock=clock, tau_ns=5 * MS)
    busy.saturated(0)
    t = _run(busy, clock, 0, 100, share=1.0)
    _run(busy, clock, t, 200, share=between)
    # lingering lowered the share (fewer session runs) but the load still needs it: it stays
    assert busy.saturated_now


def test_one_busy_millisecond_does_not_flip_the_verdict() -> None:
    clock = CpuClock()
    detector = SaturationDetector(busy_clock=clock, tau_ns=20 * MS)
    detector.saturated(0)
    t = _run(detector, clock, 0, 100, share=0.2)
    t = _run(detector, clock, t, 1, share=1.0)
    assert not detector.saturated_now
    t = _run(detector, clock, t, 100, share=1.0)
    assert detector.saturated_now


def test_the_busy_clock_is_read_at_most_once_per_sample_interval() -> None:
    clock = CpuClock()
    detector = SaturationDetector(busy_clock=clock, sample_ns=MS)
    for us in range(0, 10_000, 10):  # asked every 10 us for 10 ms
        detector.saturated(us * 1000)
    assert clock.reads == 10  # the first call, then one per ms


def test_a_long_silence_counts_as_idle_at_once() -> None:
    clock = CpuClock()
    detector = SaturationDetector(busy_clock=clock, tau_ns=20 * MS)
    detector.saturated(0)
    t = _run(detector, clock, 0, 200, share=1.0)
    assert detector.saturated_now
    # nobody asked for a second (no requests): the first question after it sees idle time
    assert not detector.saturated((t + 1000) * MS)


def test_a_saturated_verdict_below_the_entry_threshold_is_dropped_at_the_recheck() -> None:
    between = (SATURATED_ON + SATURATED_OFF) / 2
    clock = CpuClock()
    detector = SaturationDetector(busy_clock=clock, tau_ns=5 * MS, recheck_ns=1000 * MS)
    detector.saturated(0)
    t = _run(detector, clock, 0, 100, share=1.0)
    assert detector.saturated_now
    # lingering that gathers nothing keeps the share between the thresholds (RESULTS.md, "The
    # batcher's two modes"): the verdict holds until the recheck, one second after it began
    t = _run(detector, clock, t, 800, share=between)
    assert detector.saturated_now
    _run(detector, clock, t, 200, share=between)
    assert not detector.saturated_now


def test_a_share_above_the_entry_threshold_stays_saturated_across_rechecks() -> None:
    clock = CpuClock()
    detector = SaturationDetector(busy_clock=clock, tau_ns=5 * MS, recheck_ns=100 * MS)
    detector.saturated(0)
    t = _run(detector, clock, 0, 50, share=1.0)
    for _ in range(10):  # a closed loop at saturation: every recheck finds it busy
        t = _run(detector, clock, t, 50, share=0.97)
        assert detector.saturated_now


def test_an_assumed_saturated_verdict_holds_until_the_first_recheck() -> None:
    between = (SATURATED_ON + SATURATED_OFF) / 2
    clock = CpuClock()
    detector = SaturationDetector(
        busy_clock=clock, tau_ns=5 * MS, saturated=True, recheck_ns=1000 * MS
    )
    detector.share = between
    assert detector.saturated(0)
    t = _run(detector, clock, 0, 900, share=between)
    assert detector.saturated_now  # as one that just became saturated
    _run(detector, clock, t, 200, share=between)
    assert not detector.saturated_now


def _with_passes(
    detector: SaturationDetector, serving: CpuClock, passes: CpuClock, share: float, ms: int
) -> None:
    """``share`` of the core busy serving for ``ms`` ms, and every 100 ms a 20 ms background
    pass that takes the rest of it (the busy clock counts both; ``passes`` only the pass)."""
    for t in range(1, ms + 1):
        serving.ns += int(share * MS)
        if t % 100 < 20:
            passes.ns += int((1.0 - share) * MS)
        detector.saturated(t * MS)


def _detector(serving: CpuClock, passes: CpuClock, **options: Any) -> SaturationDetector:
    """A detector whose core is busy with both clocks and whose background is ``passes``."""
    return SaturationDetector(
        busy_clock=lambda: serving.ns + passes.ns, background_clock=lambda: passes.ns, **options
    )


@pytest.mark.parametrize("counted", [True, False])
def test_background_passes_are_not_load(counted: bool) -> None:
    # counted as load, the passes' bursts take the 20 ms average over 0.9 and the batcher
    # would linger on a core with 15 % idle time (RESULTS.md, "Background passes are not load")
    serving, passes = CpuClock(), CpuClock()
    if counted:  # NOTE: an injected busy clock and no background clock: all of it is load
        detector = SaturationDetector(busy_clock=lambda: serving.ns + passes.ns)
    else:
        detector = _detector(serving, passes)  # NOTE: the defaults: tau 20 ms, recheck 1 s
    detector.saturated(0)
    _with_passes(detector, serving, passes, 0.85, 1000)
    assert detector.saturated_now is counted


def test_a_saturated_worker_stays_saturated_through_background_passes() -> None:
    # a closed loop at saturation: the passes take their share of the core in bursts, and a
    # recheck that falls into one must not end the verdict (the whole core is still busy)
    serving, passes = CpuClock(), CpuClock()
    detector = _detector(serving, passes, recheck_ns=50 * MS)
    detector.saturated(0)
    dips = []
    for start in range(0, 2000, 100):
        for t in range(start + 1, start + 101):
            serving.ns += int((0.7 if t % 100 < 20 else 1.0) * MS)
            passes.ns += int((0.3 if t % 100 < 20 else 0.0) * MS)
            detector.saturated(t * MS)
            if t > 100:
                assert detector.saturated_now
                dips.append(detector.serving)
    assert min(dips) < SATURATED_ON  # the serving share alone would have ended it


def test_background_cpu_keeps_an_ended_threads_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # a thread's clock fails once it has ended: its last reading stays in the sum, which never
    # goes back, and a new thread that gets its id starts from zero on top of it
    readings = {"alive": True, "ns": 0}

    def clock_gettime_ns(clock: int) -> int:
        if not readings["alive"]:
            raise OSError(22, "Invalid argument")
        return int(readings["ns"])

    monkeypatch.setattr(time, "pthread_getcpuclockid", lambda ident: 7)
    monkeypatch.setattr(time, "clock_gettime_ns", clock_gettime_ns)
    cpu = BackgroundCpu()
    cpu.register_current()
    readings["ns"] = 5 * MS
    assert cpu() == 5 * MS
    readings["alive"] = False
    assert cpu() == cpu() == 5 * MS
    readings["alive"], readings["ns"] = True, 2 * MS
    cpu.register_current()  # NOTE: the same id again (this thread's)
    assert cpu() == 7 * MS
