"""REST access to monitoring: a thin controller over :class:`AlertService`.

==============================================  ======  ======================================
``GET /v1/monitoring/alerts``                   200     alerts, newest first (filters, paging)
``GET /v1/monitoring/alerts/{id}``              200     one alert with its feature details
``POST /v1/monitoring/alerts/{id}/acknowledge`` 200     open -> acknowledged
``POST /v1/monitoring/alerts/{id}/resolve``     200     -> resolved (final)
``GET /v1/monitoring/alerts/{id}/deliveries``   200     its notifications with every attempt
``GET /v1/monitoring/channels``                 200     channels (secrets never shown)
``POST /v1/monitoring/channels``                201     create a channel (admin)
``DELETE /v1/monitoring/channels/{name}``       204     delete a channel (admin)
``GET /v1/monitoring/dead-letters``             200     deliveries that exhausted their retries
==============================================  ======  ======================================

Errors: 404 unknown alert or channel, 409 a transition from resolved or a duplicate channel,
422 an invalid channel or filter.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from control_plane.features.routes import actor_of
from control_plane.monitoring.models import (
    Alert,
    AlertState,
    AlertType,
    Channel,
    ChannelSpec,
    Delivery,
    DeliveryState,
)
from control_plane.monitoring.service import MAX_PAGE, AlertService
from control_plane.params import IdPath, NamePath, TextQuery, VersionQuery
from control_plane.security.models import Permission

_ADMIN = {"permission": Permission.ADMIN}


class MonitoringController(Controller):
    """``/v1/monitoring``: alerts, notification channels, dead letters."""

    path = "/v1/monitoring"
    tags = ["monitoring"]

    @get("/alerts")
    async def list_alerts(
        self,
        alert_service: NamedDependency[AlertService],
        model: TextQuery = None,
        version: VersionQuery = None,
        alert_state: Annotated[AlertState | None, QueryParameter(name="state")] = None,
        alert_type: Annotated[AlertType | None, QueryParameter(name="type")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 100,
        offset: Annotated[int, QueryParameter(ge=0)] = 0,
    ) -> list[Alert]:
        """Alerts matching the filters, newest first."""
        return await alert_service.list_alerts(
            model=model,
            version=version,
            state=alert_state,
            type=alert_type,
            limit=limit,
            offset=offset,
        )

    @get("/alerts/{alert_id:int}")
    async def get_alert(
        self, alert_id: IdPath, alert_service: NamedDependency[AlertService]
    ) -> Alert:
        """One alert."""
        return await alert_service.get_alert(alert_id)

    @post("/alerts/{alert_id:int}/acknowledge", status_code=200)
    async def acknowledge(
        self,
        request: Request[Any, Any, Any],
        alert_id: IdPath,
        alert_service: NamedDependency[AlertService],
    ) -> Alert:
        """Acknowledge an open alert."""
        return await alert_service.acknowledge(alert_id, actor=actor_of(request))

    @post("/alerts/{alert_id:int}/resolve", status_code=200)
    async def resolve(
        self,
        request: Request[Any, Any, Any],
        alert_id: IdPath,
        alert_service: NamedDependency[AlertService],
    ) -> Alert:
        """Resolve an alert."""
        return await alert_service.resolve(alert_id, actor=actor_of(request))

    @get("/alerts/{alert_id:int}/deliveries")
    async def alert_deliveries(
        self, alert_id: IdPath, alert_service: NamedDependency[AlertService]
    ) -> list[Delivery]:
        """The alert's notifications, each with every attempt."""
        await alert_service.get_alert(alert_id)
        return await alert_service.deliveries(alert_id=alert_id)

    @get("/channels")
    async def list_channels(self, alert_service: NamedDependency[AlertService]) -> list[Channel]:
        """Every channel, by name."""
        return await alert_service.channels()

    @post("/channels", status_code=201, opt=_ADMIN)
    async def add_channel(
        self, alert_service: NamedDependency[AlertService], data: JSONBody[ChannelSpec]
    ) -> Channel:
        """Create a channel."""
        return await alert_service.add_channel(data)

    @delete("/channels/{name:str}", status_code=204, opt=_ADMIN)
    async def delete_channel(
        self, name: NamePath, alert_service: NamedDependency[AlertService]
    ) -> None:
        """Delete a channel."""
        await alert_service.delete_channel(name)

    @get("/dead-letters")
    async def dead_letters(
        self,
        alert_service: NamedDependency[AlertService],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 100,
    ) -> list[Delivery]:
        """Deliveries that failed every attempt, with the attempts."""
        return await alert_service.deliveries(state=DeliveryState.DEAD, limit=limit)


__all__ = ["MonitoringController"]
