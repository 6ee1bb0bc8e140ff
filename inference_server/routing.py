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
  arm through :mod:`modelyard.routing` (CRC-32 of the key as a fraction of 2**32, buckets in
  the arms' order), so one key always lands on the same arm while the weights stay the same,
  in every worker process, after restarts, and as the control plane computes it; a weight
  change moves only the keys a bucket boundary crossed. Without a key the arm is drawn at
  random. Shadow copies use a second, independent hash.
* Only ready versions take part: an arm whose version is not loaded (yet, or any more) is
  left out and its share goes to the other arms; with no ready arm the default version
  answers. A request that names a version is never routed.

A :class:`Router` is built whenever the model's version map is republished (a version or the
config changed) and replaced with it in one assignment, so a request sees one consistent
routing table. Picking an arm is one draw (or one CRC-32) and a bisect over cumulative weights.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, NamedTuple

from modelyard.enums import ModelVariant
from modelyard.routing import ROUTING_KEY, SHADOW_SALT, arm_index, cumulative_bounds, key_fraction

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from inference_server.loaded_version import LoadedVersion
    from modelyard.model_repository import Route
    from modelyard.models import Scalar

__all__ = ["ROUTING_KEY", "Arm", "Router", "key_fraction"]


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
        self._arms = [Arm(handle, variant) for handle, variant, _ in arms]
        self._bounds = cumulative_bounds([w for _, _, w in arms]) if arms else []
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
        return arms[arm_index(self._bounds, fraction)]

    def shadows(self, key: Scalar | None) -> list[LoadedVersion]:
        """The shadow versions that also score this request (usually none)."""
        if not self._shadows:
            return []
        fraction = random.random() if key is None else key_fraction(key, SHADOW_SALT)
        return [handle for handle, share in self._shadows if fraction < share]
