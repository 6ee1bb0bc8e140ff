"""AdaptiveQueueDelay: the queue delay steered by the core's busy share (injected clock)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from inference_server.queue_delay import (
    FLOOR_NS,
    MAX_STEP_NS,
    TARGET_SHARE,
    AdaptiveQueueDelay,
)

MS = 1_000_000
MAX_NS = 10 * MS


def _steer(delay: AdaptiveQueueDelay, start_ms: int, ms: int, share: float) -> list[int]:
    """Ask every ms for ``ms`` ms from ``start_ms`` with the core at ``share``; the delays."""
    return [delay.cap_ns(t * MS, share) for t in range(start_ms, start_ms + ms)]


def test_it_starts_at_the_configured_maximum() -> None:
    assert AdaptiveQueueDelay(MAX_NS).cap_ns(0, 0.0) == MAX_NS


def test_headroom_shortens_the_delay_to_the_floor_and_saturation_lengthens_it_to_the_max() -> None:
    delay = AdaptiveQueueDelay(MAX_NS)
    shrinking = _steer(delay, 0, 400, share=0.6)
    assert shrinking == sorted(shrinking, reverse=True)
    assert shrinking[-1] == FLOOR_NS
    growing = _steer(delay, 400, 400, share=1.0)
    assert growing == sorted(growing)
    assert growing[-1] == MAX_NS


def test_at_the_target_share_the_delay_holds() -> None:
    delay = AdaptiveQueueDelay(MAX_NS, initial_ns=3 * MS)
    assert set(_steer(delay, 0, 100, share=TARGET_SHARE)) == {3 * MS}


def test_a_pause_between_calls_counts_as_one_step_at_most() -> None:
    paused = AdaptiveQueueDelay(MAX_NS)
    paused.cap_ns(0, 0.5)
    after_pause = paused.cap_ns(10_000 * MS, 0.5)  # ten seconds without a lingering batch
    stepped = AdaptiveQueueDelay(MAX_NS)
    stepped.cap_ns(0, 0.5)
    assert after_pause == stepped.cap_ns(MAX_STEP_NS, 0.5)
    assert after_pause > FLOOR_NS


def test_no_configured_delay_stays_none() -> None:
    delay = AdaptiveQueueDelay(0)
    assert _steer(delay, 0, 50, share=1.0) == [0] * 50


@settings(max_examples=200, deadline=None)
@given(
    max_us=st.integers(min_value=1, max_value=1_000_000),
    initial_us=st.integers(min_value=0, max_value=2_000_000),
    steps=st.lists(
        st.tuples(st.integers(min_value=0, max_value=100 * MS), st.floats(0.0, 2.0)),
        max_size=60,
    ),
)
def test_the_delay_stays_between_the_floor_and_the_configured_maximum(
    max_us: int, initial_us: int, steps: list[tuple[int, float]]
) -> None:
    max_ns = max_us * 1000
    delay = AdaptiveQueueDelay(max_ns, initial_ns=initial_us * 1000)
    now = 0
    for elapsed, share in steps:
        now += elapsed
        before = delay.cap_ns(now, share)
        assert min(FLOOR_NS, max_ns) <= before <= max_ns
