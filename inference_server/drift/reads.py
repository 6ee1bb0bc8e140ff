"""The admin read of merged sketches: query parsing, per-worker handler and aggregation.

``GET /v2/models/{m}/versions/{v}/sketches?since=&until=`` (admin token when configured)
answers every worker's windows that overlap ``[since, until)``, merged
(:class:`~modelyard.sketches.SketchesAnswer`). ``since``/``until`` are ISO 8601 times (UTC
when no offset is given) or Unix seconds; both are optional.

>>> parse_range(b"since=2026-12-04T05:00:00Z&until=1796364000")
(datetime.datetime(2026, 12, 4, 5, 0, tzinfo=datetime.timezone.utc), \
datetime.datetime(2026, 12, 4, 6, 0, tzinfo=datetime.timezone.utc))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs

import msgspec

from inference_server.admin.fanout import Operation
from modelyard.errors import FailedPrecondition, InvalidArgument
from modelyard.sketches import SketchesAnswer, WindowSketches, merge_all

if TYPE_CHECKING:
    from inference_server.admin.fanout import Fanout
    from inference_server.drift.book import SketchBook


class SketchRequest(msgspec.Struct, kw_only=True, frozen=True):
    """What one worker is asked for (travels to every worker through the admin fan-out)."""

    model: str
    version: str
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def _instant(name: str, text: str) -> dt.datetime:
    try:
        when = (
            dt.datetime.fromtimestamp(float(text), dt.UTC)
            if text.replace(".", "", 1).isdigit()
            else dt.datetime.fromisoformat(text)
        )
        # NOTE: in UTC here: a time whose UTC falls past year 9999 (9999-12-31T23:59-14:00)
        # overflowed later, encoding the fan-out's message (a 500)
        return when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidArgument(
            f"{name}={text!r} is neither an ISO 8601 time nor Unix seconds within years 1-9999"
        ) from None


def parse_range(query: bytes) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``since`` and ``until`` of a query string.

    Raises:
        InvalidArgument: a value that is no time, an unknown parameter, or since >= until.
    """
    params = parse_qs(query.decode(errors="replace"), keep_blank_values=True) if query else {}
    unknown = sorted(set(params) - {"since", "until"})
    if unknown:
        raise InvalidArgument(f"unknown query parameter {unknown[0]!r}; use since and until")
    since = _instant("since", params["since"][-1]) if "since" in params else None
    until = _instant("until", params["until"][-1]) if "until" in params else None
    if since is not None and until is not None and since >= until:
        raise InvalidArgument(f"since ({since.isoformat()}) must be before until")
    return since, until


SKETCHES_READ = "sketches.read"
"""The fan-out operation: every worker answers its windows, the receiver merges them."""


def register_sketch_ops(fanout: Fanout, book: SketchBook) -> None:
    """Register :data:`SKETCHES_READ` on the admin fan-out (every worker's handler)."""

    async def read_worker(request: SketchRequest) -> WindowSketches | None:
        return await book.read(request.model, request.version, request.since, request.until)

    fanout.register(
        Operation(
            name=SKETCHES_READ,
            payload_type=SketchRequest,
            result_type=WindowSketches | None,
            handler=read_worker,
            aggregate=merge_present,
        )
    )


def merge_present(results: Sequence[WindowSketches | None]) -> WindowSketches | None:
    """Merge the workers' windows (``None`` when no worker had any)."""
    return merge_all([r for r in results if r is not None])


class _Service(Protocol):
    sketches: SketchBook | None

    def model_ready(self, name: str, version: str | None = None) -> bool:
        """Raises NotFound for a model the server does not know."""


class _Admin(Protocol):
    async def call(self, op: str, payload: object, authorization: str | bytes | None) -> Any:
        """Check the admin token, then apply ``op`` on every worker."""


async def read_sketches(
    service: _Service,
    admin: _Admin,
    target: tuple[str, str | None],
    query: bytes,
    authorization: str | bytes | None,
) -> SketchesAnswer:
    """Answer the sketch read of ``target`` = (model, version) across every worker.

    Raises:
        Unauthenticated: the admin token is configured and not presented.
        InvalidArgument: no or a malformed version, or a bad range.
        NotFound: nothing sketched for the version and the model is unknown.
        FailedPrecondition: the server runs with sketches off.
    """
    model, version = target
    if version is None or not version.isdigit():
        raise InvalidArgument("name a version: GET /v2/models/{model}/versions/{version}/sketches")
    since, until = parse_range(query)
    if service.sketches is None or not service.sketches.enabled:
        raise FailedPrecondition("this server keeps no drift sketches (server.sketches is off)")
    request = SketchRequest(model=model, version=version, since=since, until=until)
    done = await admin.call(SKETCHES_READ, request, authorization)
    merged: WindowSketches | None = done.value
    if merged is None:
        service.model_ready(model)  # an unknown model is a 404, not an empty answer
        now = dt.datetime.now(dt.UTC)
        # NOTE: an empty answer's range is the asked one, completed with now, never reversed
        start = since if since is not None else min(now, until) if until is not None else now
        end = until if until is not None else max(now, start)
        merged = WindowSketches(model=model, version=version, start=start, end=end)
    fields = msgspec.structs.asdict(merged)
    return SketchesAnswer(**fields, workers_applied=done.workers_applied)
