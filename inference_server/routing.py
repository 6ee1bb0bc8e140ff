"""A/B routing of requests that name no version: weighted arms, sticky keys, shadow copies.

A model's ``config.json`` may list ``routes`` (:class:`modelyard.model_repository.Route`):

* **control / treatment arms** split the requests that name no version in proportion to
  their weights (``[{"version": 1, "weight": 0.9}, {"version": 2, "weight": 0.1,
  "variant": "treatment"}]`` sends one request in ten to version 2). Every response names the
  version that computed it.
* **shadow arms** also score a copy of ``weight`` (0..1) of those requests, off the request
  path; their answer is never returned and their failures never reach the caller (they show
  in the shadow version's statistics and failure metrics).
* **Sticky assignment**: a request parameter ``routing_key`` (a user or entity id) picks the
  arm through a stable hash (CRC-32 of the key, as a fraction of 2**32), so one key always lands
  on the same arm while the weights stay the same, in every worker process and after restarts.
  Without a key the arm is drawn at random. Shadow copies use a second, independent hash.
* Only ready versions take part: an arm whose version is not loaded (yet, or any more) is
  left out and its share goes to the other arms; with no ready arm the default version
  answers. A request that names a version is never routed.

A :class:`Router` is built whenever the model's version map is republished (a version or the
config changed) and replaced with it in one assignment, so a request sees one consistent
routing table. Picking an arm is one draw (or one CRC-32) and a bisect over cumulative weights.
"""

from __future__ import annotations

import bisect
import itertools
import random
import zlib
from typing import TYPE_CHECKING, NamedTuple

from modelyard.enums import ModelVariant

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from inference_server.loaded_version import LoadedVersion
    from modelyard.model_repository import Route
    from modelyard.models import Scalar

ROUTING_KEY = "routing_key"
"""The request parameter that makes arm assignment sticky."""

_SCALE = float(2**32)


def key_fraction(key: Scalar, salt: bytes = b"") -> float:
    """A stable fraction in [0, 1) for a routing key (the same in every process).

    >>> key_fraction("user-42") == key_fraction("user-42")
    True
    >>> 0.0 <= key_fraction(7) < 1.0
    True
    """
    return zlib.crc32(salt + str(key).encode()) / _SCALE


class Arm(NamedTuple):
    """A routed version and its role in the test."""

    handle: LoadedVersion
    variant: ModelVariant


class Router:
    """The routing table of one model (see the module docstring)."""

    def __init__(
        self,
        arms: Sequence[tuple[LoadedVersion, ModelVariant, float]],
        shadows: Sequence[tuple[LoadedVersion, float]],
    ) -> None:
        total = sum(weight for _, _, weight in arms)
        self._arms = [Arm(handle, variant) for handle, variant, _ in arms]
        self._bounds = [bound / total for bound in itertools.accumulate(w for _, _, w in arms)]
        self._shadows = list(shadows)

    @classmethod
    def build(cls, routes: Sequence[Route], ready: Mapping[int, LoadedVersion]) -> Router | None:
        """The router over the ready versions among ``routes``; None when nothing routes."""
        arms = [
            (ready[r.version], r.variant, r.weight)
            for r in routes
            if r.variant is not ModelVariant.SHADOW and r.weight > 0 and r.version in ready
        ]
        shadows = [
            (ready[r.version], min(r.weight, 1.0))
            for r in routes
            if r.variant is ModelVariant.SHADOW and r.weight > 0 and r.version in ready
        ]
        if not arms and not shadows:
            return None
        return cls(arms, shadows)

    def pick(self, key: Scalar | None) -> Arm | None:
        """The arm that answers a request with this routing key (None: the default version)."""
        arms = self._arms
        if not arms:
            return None
        if len(arms) == 1:
            return arms[0]
        fraction = random.random() if key is None else key_fraction(key)
        return arms[min(bisect.bisect_right(self._bounds, fraction), len(arms) - 1)]

    def shadows(self, key: Scalar | None) -> list[LoadedVersion]:
        """The shadow versions that also score this request (usually none)."""
        if not self._shadows:
            return []
        fraction = random.random() if key is None else key_fraction(key, b"shadow:")
        return [handle for handle, share in self._shadows if fraction < share]
