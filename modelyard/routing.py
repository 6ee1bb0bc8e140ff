"""Sticky A/B assignment: the one function both planes use to put a key on an arm.

The inference server routes requests with it (:mod:`inference_server.routing`); the control
plane's A/B feature imports the very same function to know, without asking a server, which
arm a key is on.

* A routing key (user or entity id) maps to a stable fraction in [0, 1): CRC-32 of its text
  (``str(key)``, UTF-8) divided by 2**32 -- the same in every process, worker, replica and
  after restarts (no per-process hash seed).
* The arms (control / treatment, in their listed order) split [0, 1) into consecutive
  buckets proportional to their weights; a key lands in the bucket holding its fraction.
* **Weight changes move only the keys whose bucket boundary crossed them.** The buckets are
  laid out in the arms' order, so changing weights moves the cumulative boundaries; a key
  changes arm exactly when some boundary passed over its fraction (e.g. control 0.9 ->
  0.8 moves the keys in [0.8, 0.9) to treatment and no other key). Keep the arms' order when
  changing weights, or most keys move.
* Shadow arms use an independent fraction (salt ``shadow:``), so whether a key is shadowed
  does not depend on its arm.

>>> bounds = cumulative_bounds([9.0, 1.0])
>>> bounds
[0.9, 1.0]
>>> arm_index(bounds, key_fraction("user-42")) == arm_index(bounds, key_fraction("user-42"))
True
>>> [arm_index(bounds, f) for f in (0.0, 0.5, 0.899, 0.9, 0.999)]
[0, 0, 0, 1, 1]
>>> assign_arm("user-42", [1.0, 0.0]), assign_arm("user-42", [0.0, 1.0])
(0, 1)
"""

from __future__ import annotations

import bisect
import itertools
import zlib
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Sequence

    from modelyard.models import Scalar

ROUTING_KEY: Final = "routing_key"
"""The request parameter that makes arm assignment sticky."""

SHADOW_SALT: Final = b"shadow:"
"""Salt of the shadow fraction (independent of the arm's)."""

_SCALE: Final = float(2**32)


def key_fraction(key: Scalar, salt: bytes = b"") -> float:
    """A stable fraction in [0, 1) for a routing key (the same in every process).

    >>> key_fraction("user-42") == key_fraction("user-42")
    True
    >>> 0.0 <= key_fraction(7) < 1.0
    True
    """
    return zlib.crc32(salt + str(key).encode()) / _SCALE


def cumulative_bounds(weights: Sequence[float]) -> list[float]:
    """The upper bucket boundary of each arm in [0, 1] (weights >= 0, sum > 0).

    Raises:
        ValueError: no positive weight.
    """
    total = sum(weights)
    if total <= 0:
        raise ValueError("at least one arm needs a positive weight")
    return [bound / total for bound in itertools.accumulate(weights)]


def arm_index(bounds: Sequence[float], fraction: float) -> int:
    """The arm whose bucket holds ``fraction`` (bisect over the boundaries)."""
    return min(bisect.bisect_right(bounds, fraction), len(bounds) - 1)


def assign_arm(key: Scalar, weights: Sequence[float]) -> int:
    """The index of the arm a routing key lands on under ``weights`` (arms in listed order).

    Raises:
        ValueError: no positive weight.
    """
    return arm_index(cumulative_bounds(weights), key_fraction(key))
