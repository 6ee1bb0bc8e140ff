"""A/B test material: a service over a real registry, a real HTTP receiver for route pushes,
and observations held in memory (the prediction-log adapter has its own tests)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import msgspec
import numpy as np

from control_plane.abtesting.analysis import Observation
from control_plane.abtesting.models import Metric, MetricKind, TestDefinition, Variant
from control_plane.abtesting.servers import RoutePusher
from control_plane.abtesting.service import ABTestService
from control_plane.abtesting.store import SqlABTestStore
from control_plane.registry.service import RegistryService
from modelyard.enums import ModelStage, ModelVariant
from modelyard.storage.audit import AuditLog
from modelyard.storage.database import Database
from tests.control_plane.registry.helpers import (
    APPROVER,
    DEVELOPER,
    approved_version,
    make_registry,
)


class MemorySource:
    """Observations of every model/version/variant; answers exactly what was asked."""

    def __init__(self) -> None:
        self.records: list[tuple[str, Observation]] = []

    def add(self, model: str, observations: Sequence[Observation]) -> None:
        self.records += [(model, o) for o in observations]

    async def observations(
        self,
        model: str,
        version: int,
        variant: ModelVariant,
        since: dt.datetime,
        until: dt.datetime | None,
    ) -> list[Observation]:
        return [
            o
            for m, o in self.records
            if m == model
            and o.version == version
            and o.variant is variant
            and o.created_at >= since
            and (until is None or o.created_at < until)
        ]


def observations(
    version: int,
    variant: ModelVariant,
    n: int,
    rate: float,
    *,
    seed: int,
    start: dt.datetime | None = None,
) -> list[Observation]:
    """``n`` requests of one variant converting with probability ``rate``."""
    rng = np.random.default_rng(seed)
    start = start or dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    converted = rng.random(n) < rate
    latency = rng.gamma(2.0, 2.0, n)
    return [
        Observation(
            request_id=f"{version}-{seed}-{i}",
            version=version,
            variant=variant,
            created_at=start + dt.timedelta(milliseconds=i),
            latency_ms=float(latency[i]),
            converted=bool(converted[i]),
        )
        for i in range(n)
    ]


class RouteReceiver:
    """A real HTTP server that answers every request 200 with ``workers_applied`` and keeps
    the requests it got (method, path, authorization, body)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, bytes]] = []
        self._server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        lines = head.split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((method, path, headers.get("authorization", ""), body))
        answer = b'{"workers_applied": 2}'
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(answer)}\r\nconnection: close\r\n\r\n".encode()
            + answer
        )
        await writer.drain()
        writer.close()


def build_service(
    database: Database, root: Path, servers: Sequence[str], source: MemorySource | None
) -> tuple[ABTestService, RegistryService]:
    registry = make_registry(database, root)
    service = ABTestService(
        database=database,
        store=SqlABTestStore(),
        audit_log=AuditLog(database),
        registry=registry,
        pusher=RoutePusher(servers, admin_token="s3cret"),
        source=source,
    )
    return service, registry


async def control_and_treatment(registry: RegistryService, name: str) -> tuple[int, int]:
    """Version 1 in Production, version 2 in Staging (both with approved cards)."""
    v1 = await approved_version(registry, name)
    v2 = await approved_version(registry, name)
    await registry.stages.transition(name, v1, ModelStage.STAGING, DEVELOPER)
    await registry.stages.transition(name, v1, ModelStage.PRODUCTION, APPROVER)
    await registry.stages.transition(name, v2, ModelStage.STAGING, DEVELOPER)
    return v1, v2


def definition(model: str, control: int, treatment: int, **overrides: object) -> TestDefinition:
    base = TestDefinition(
        model=model,
        variants=(
            Variant(version=control, weight=0.5, role=ModelVariant.CONTROL),
            Variant(version=treatment, weight=0.5, role=ModelVariant.TREATMENT),
        ),
        primary_metric=Metric(name="conversion", kind=MetricKind.CONVERSION),
        guardrail_metrics=(
            Metric(name="latency", kind=MetricKind.LATENCY_MS, higher_is_better=False),
        ),
        minimum_sample_size=500,
    )
    return msgspec.structs.replace(base, **overrides)
