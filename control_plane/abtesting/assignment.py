"""Which variant a routing key gets: the data plane's own sticky hash, reused.

The hash (CRC-32 of the key as a fraction of 2**32) is the inference server's
``key_fraction``; the arm is the first whose cumulative weight bound exceeds the fraction,
arms in route order, zero-weight arms left out (``inference_server.routing.Router.pick``).

NOTE: the control plane must not import ``inference_server``; ``key_fraction`` moves to
``modelyard/`` with the runtime routes API (contract 3, owner ``workers``). Until then it is
imported from where it lives, so that there is still one implementation of the hash.
"""

from __future__ import annotations

import bisect
import itertools
from typing import TYPE_CHECKING

from inference_server.routing import key_fraction
from modelyard.enums import ModelVariant
from modelyard.model_repository import Route

if TYPE_CHECKING:
    from collections.abc import Sequence

    from control_plane.abtesting.models import Variant
    from modelyard.models import Scalar


def assign(variants: Sequence[Variant], key: Scalar) -> Variant:
    """The variant that answers a request carrying ``key`` (same answer as every server).

    Raises:
        ValueError: when no variant has a positive weight.

    >>> from control_plane.abtesting.models import Variant
    >>> arms = [Variant(version=1, weight=0.5, role=ModelVariant.CONTROL),
    ...         Variant(version=2, weight=0.5, role=ModelVariant.TREATMENT)]
    >>> assign(arms, "user-42") == assign(arms, "user-42")
    True
    >>> assign(arms, "user-42").version in (1, 2)
    True
    """
    arms = [v for v in variants if v.role is not ModelVariant.SHADOW and v.weight > 0]
    if not arms:
        raise ValueError("no variant has a positive weight")
    if len(arms) == 1:
        return arms[0]
    total = sum(v.weight for v in arms)
    bounds = [b / total for b in itertools.accumulate(v.weight for v in arms)]
    index = min(bisect.bisect_right(bounds, key_fraction(key)), len(arms) - 1)
    return arms[index]


def routes_of(variants: Sequence[Variant]) -> tuple[Route, ...]:
    """The ``config.json`` routes that implement ``variants`` (arms in the test's order)."""
    return tuple(Route(version=v.version, weight=v.weight, variant=v.role) for v in variants)
