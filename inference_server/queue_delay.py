"""How long a batch may wait for more rows on a saturated core: sized by the load (issue 21).

Lingering pays for itself only by the session runs it saves: while the batcher waits, the
core admits requests instead of starting a run, whose fixed cost (the hand-off to the session
thread, the GIL hand-over, cold caches) comes once per batch. How many runs must be saved
depends on how much of the core the arrivals already take, which the core's smoothed busy
share (:class:`~inference_server.saturation.SaturationDetector`) tells: a share above
``TARGET_SHARE`` (0.9) means the runs still crowd out admission, so wait longer; below, the
core has headroom the extra runs fit in, so wait less. The delay therefore follows the
arrival rate: a steady open-loop rate the core keeps up with at small batches gets a short
wait; a rate it keeps up with only at large batches, and every saturated closed loop (whose
share stays near 1 whatever the batch), keep the full ``max_queue_delay_us``.

Design:
* An integral controller on the delay's logarithm: ``d ln(delay)/dt = (share - target) /
  GAIN_NS`` (``GAIN_NS`` 8 ms: 0.1 above the target doubles the delay every 55 ms), between a
  floor of ``FLOOR_NS`` (0.1 ms) and the configured ``max_queue_delay_us``. The logarithm
  makes a step a fixed fraction at any size, from 0.1 ms to 10 ms in 100-200 ms.
* It starts at the maximum (the rule before it, and the right one for a closed loop) and
  moves only while the batcher lingers (under load on a saturated core): that is the only
  time the delay acts on the share.
* The share lags by its smoothing (20 ms); one call integrates at most ``MAX_STEP_NS``
  (20 ms), so a pause in the batcher's calls does not turn into one large jump.
* Arrival gaps are not the input: a saturated closed loop admits requests only as fast as it
  answers them, so its gaps look sparse whatever the batch, and a rule on them cut c=64
  batches once (:mod:`inference_server.batcher`).

>>> delay = AdaptiveQueueDelay(10_000_000)  # max_queue_delay_us = 10,000
>>> ms = 1_000_000
>>> delay.cap_ns(0, 0.6)  # the first call starts the clock
10000000
>>> [round(delay.cap_ns(t * 20 * ms, 0.7) / ms, 2) for t in range(1, 6)]  # headroom: shorter
[6.07, 3.68, 2.23, 1.35, 0.82]
>>> [round(delay.cap_ns(100 * ms + t * 20 * ms, 1.0) / ms, 2) for t in range(1, 4)]
[1.05, 1.35, 1.74]
>>> max(delay.cap_ns(10**9 + t * 20 * ms, 1.0) for t in range(20))  # never above the max
10000000
"""

from __future__ import annotations

import math

TARGET_SHARE = 0.9
"""The busy share of the core the delay steers to: below it the runs fit in idle time."""

GAIN_NS = 8_000_000
"""Share-ns per e-fold of the delay: 0.2 off the target moves it by e every 40 ms."""

FLOOR_NS = 100_000
"""The shortest delay (0.1 ms): below it lingering is the same as none."""

MAX_STEP_NS = 20_000_000
"""The longest time one call integrates (the share's smoothing time)."""


class AdaptiveQueueDelay:
    """The queue delay of one batcher on a saturated core (see the module docstring).

    Args:
        max_ns: the configured ``max_queue_delay_us`` in ns, the ceiling and the start.
        target: the busy share steered to.
        initial_ns: the delay to start from (the maximum by default; tests start lower).
    """

    __slots__ = ("_at", "_log_floor", "_log_max", "_max", "_target", "_value")

    def __init__(
        self, max_ns: int, *, target: float = TARGET_SHARE, initial_ns: int | None = None
    ) -> None:
        self._max = max_ns
        self._log_max = math.log(max(max_ns, 1))
        self._log_floor = min(math.log(FLOOR_NS), self._log_max)
        self._target = target
        start = max_ns if initial_ns is None else initial_ns
        self._value = min(max(math.log(max(start, 1)), self._log_floor), self._log_max)
        self._at: int | None = None

    def cap_ns(self, now_ns: int, share: float) -> int:
        """The delay for a batch decided at ``now_ns`` on a core at busy ``share``."""
        if self._max <= 0:
            return 0  # no delay configured: nothing to adapt
        if self._at is not None:
            step = min(now_ns - self._at, MAX_STEP_NS) * (share - self._target) / GAIN_NS
            self._value = min(max(self._value + step, self._log_floor), self._log_max)
        self._at = now_ns
        return min(round(math.exp(self._value)), self._max)
