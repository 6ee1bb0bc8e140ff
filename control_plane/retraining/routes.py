"""``/v1/retraining``: specs, triggers and runs over REST (thin: decode, delegate, encode).

Changes (a spec, a trigger, a resume) need the ``write`` permission (the app-wide guard);
reading needs a token of any role.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from control_plane.params import KeyPath, NamePath, TextQuery
from control_plane.registry.naming import check_name
from control_plane.retraining.models import RetrainingRun, RetrainingSpec, TriggerRequest
from control_plane.retraining.service import MAX_PAGE, RetrainingService
from control_plane.security.models import Principal


class RetrainingController(Controller):
    """Retraining specs per model, and runs (trigger, follow, resume)."""

    path = "/v1/retraining"
    tags = ["retraining"]

    @put("/specs/{model:str}")
    async def put_spec(
        self,
        model: NamePath,
        data: JSONBody[RetrainingSpec],
        retraining_service: NamedDependency[RetrainingService],
        principal: NamedDependency[Principal],
    ) -> RetrainingSpec:
        """Create or replace how a registered model is retrained (and its schedule)."""
        return await retraining_service.put_spec(check_name(model), data, principal)

    @get("/specs/{model:str}")
    async def get_spec(
        self, model: NamePath, retraining_service: NamedDependency[RetrainingService]
    ) -> RetrainingSpec:
        """A model's retraining spec."""
        return await retraining_service.get_spec(check_name(model))

    @post("/runs", status_code=201)
    async def trigger(
        self,
        data: JSONBody[TriggerRequest],
        retraining_service: NamedDependency[RetrainingService],
    ) -> RetrainingRun:
        """Trigger a retraining; answers the new run, or the active run it was attached to."""
        model = check_name(data.model)
        return await retraining_service.trigger(model, data.trigger_type, data.reason)

    @get("/runs")
    async def list_runs(
        self,
        retraining_service: NamedDependency[RetrainingService],
        model: TextQuery = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, QueryParameter(ge=0, le=2**62)] = 0,
    ) -> list[RetrainingRun]:
        """Runs, newest first (of one model with ``?model=``)."""
        return await retraining_service.list(model, limit=limit, offset=offset)

    @get("/runs/{run_id:str}")
    async def get_run(
        self, run_id: KeyPath, retraining_service: NamedDependency[RetrainingService]
    ) -> RetrainingRun:
        """One run with its steps, comparison and decision."""
        return await retraining_service.get(run_id)

    @post("/runs/{run_id:str}/resume", status_code=200)
    async def resume(
        self, run_id: KeyPath, retraining_service: NamedDependency[RetrainingService]
    ) -> RetrainingRun:
        """Start a failed, resumable run again from its first step."""
        return await retraining_service.resume(run_id)
