"""Runtime A/B routes: read and set a model's arms and weights on every worker.

* ``routes.get`` -- every worker's routes of the model; they must agree (workers polling
  the repository may briefly differ: that answers UNAVAILABLE, retry).
* ``routes.set`` -- ``prepare`` (once, in the serial section) validates the routes against
  the receiving worker's ready versions and persists them atomically to the model's
  ``config.json`` (:func:`modelyard.model_repository.write_model_routes`): restarts, workers
  started later and poll-mode servers read the same routes. Then every worker validates
  them against its own ready versions and swaps its router; from the next request on, every
  worker routes by the new weights (property 21). No model is reloaded.

Rules (:func:`check_routes`): at most :data:`MAX_ROUTES` routes; weights finite and >= 0
(shadow weights <= 1, a fraction of requests) with a finite sum; every version ready; each
version at most once among the control/treatment arms and at most once among the shadows
(every shadow scores each request again: 20,000 of one version were accepted before and made
each request run 20,000 times); and some arm with a positive weight unless there are only
shadow arms; ``[]`` stops routing (the default version answers everything). A request that
names a version is never routed.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING

import msgspec

from inference_server.admin.fanout import Operation, Prepared
from modelyard.enums import ModelVariant
from modelyard.errors import InvalidArgument, NotFound, Unavailable
from modelyard.model_repository import Route, model_directory, write_model_routes

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from inference_server.admin.fanout import Fanout
    from inference_server.model_manager import ModelManager

GET, SET = "routes.get", "routes.set"

MAX_ROUTES = 64
"""Most routes (arms and shadows) a model may have."""


class RoutesQuery(msgspec.Struct, kw_only=True, frozen=True):
    """Which model's routes."""

    model: str


class RoutesUpdate(msgspec.Struct, kw_only=True, frozen=True):
    """New routes of a model (the ``config.json`` ``routes`` shape)."""

    model: str
    routes: tuple[Route, ...]


class ModelRoutes(msgspec.Struct, kw_only=True, frozen=True):
    """A model's routes as served."""

    model: str
    routes: tuple[Route, ...]


def check_routes(model: str, routes: Sequence[Route], ready: Collection[int]) -> None:
    """Refuse routes the router could not serve as meant.

    >>> check_routes("m", [Route(version=1, weight=1.0)], ready={1})
    >>> check_routes("m", [Route(version=2, weight=1.0)], ready={1})
    Traceback (most recent call last):
    ...
    modelyard.errors.InvalidArgument: routes of model 'm': version 2 is not loaded (ready: [1])

    Raises:
        InvalidArgument: the first rule broken (module docstring), naming the arm.
    """
    if len(routes) > MAX_ROUTES:
        raise InvalidArgument(f"routes of model {model!r}: {len(routes)} > {MAX_ROUTES} routes")
    arms = [r for r in routes if r.variant is not ModelVariant.SHADOW]
    seen: dict[bool, set[int]] = {True: set(), False: set()}
    for route in routes:
        problem = _problem(route, ready)
        is_arm = route.variant is not ModelVariant.SHADOW
        if problem is None and route.version in seen[is_arm]:
            problem = f"version {route.version} is listed in two {'arms' if is_arm else 'shadows'}"
        if problem is not None:
            raise InvalidArgument(f"routes of model {model!r}: {problem}")
        seen[is_arm].add(route.version)
    if not math.isfinite(sum(r.weight for r in arms)):
        # NOTE: two weights of 1e308 each: the cumulative bounds became [0, nan] and every
        # request went to the last arm
        raise InvalidArgument(f"routes of model {model!r}: the arms' weights sum past a float")
    if arms and not any(r.weight > 0 for r in arms):
        raise InvalidArgument(f"routes of model {model!r}: no control/treatment arm has weight > 0")


def _problem(route: Route, ready: Collection[int]) -> str | None:
    if not math.isfinite(route.weight) or route.weight < 0:
        return f"weight {route.weight} of version {route.version} is not a finite number >= 0"
    if route.variant is ModelVariant.SHADOW and route.weight > 1:
        return f"shadow weight {route.weight} of version {route.version} is not in [0, 1]"
    if route.version not in ready:
        return f"version {route.version} is not loaded (ready: {sorted(ready)})"
    return None


def _agreed(results: list[ModelRoutes]) -> ModelRoutes:
    if any(r != results[0] for r in results):
        raise Unavailable(f"workers route {results[0].model!r} differently (converging); retry")
    return results[0]


def register_route_ops(fanout: Fanout, manager: ModelManager) -> None:
    """Register ``routes.get`` and ``routes.set`` on ``fanout``."""

    async def read(query: RoutesQuery) -> ModelRoutes:
        return ModelRoutes(model=query.model, routes=manager.slot(query.model).config.routes)

    async def prepare(update: RoutesUpdate) -> Prepared[RoutesUpdate]:
        check_routes(update.model, update.routes, manager.slot(update.model).ready)
        model_dir = model_directory(manager.repository, update.model)
        if not await asyncio.to_thread(model_dir.is_dir):
            # NOTE: loaded, but its folder is gone: writing config.json would recreate it
            raise NotFound("model folder", update.model)
        await asyncio.to_thread(write_model_routes, model_dir, update.routes)
        return Prepared(update)

    async def apply(update: RoutesUpdate) -> ModelRoutes:
        check_routes(update.model, update.routes, manager.slot(update.model).ready)
        manager.set_routes(update.model, update.routes)
        return ModelRoutes(model=update.model, routes=update.routes)

    fanout.register(Operation(GET, RoutesQuery, ModelRoutes, read, _agreed))
    fanout.register(Operation(SET, RoutesUpdate, ModelRoutes, apply, _agreed, prepare))
