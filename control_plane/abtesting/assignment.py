"""Which variant a routing key gets: :func:`modelyard.routing.assign_arm`, the very function
the inference server routes with (one implementation, shared through ``modelyard``).

The server's router leaves zero-weight arms out before it lays out the buckets; so does
:func:`assign`, so both give every key the same variant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.enums import ModelVariant
from modelyard.model_repository import Route
from modelyard.routing import assign_arm

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
    return arms[assign_arm(key, [v.weight for v in arms])]


def routes_of(variants: Sequence[Variant]) -> tuple[Route, ...]:
    """The ``config.json`` routes that implement ``variants`` (arms in the test's order)."""
    return tuple(Route(version=v.version, weight=v.weight, variant=v.role) for v in variants)
