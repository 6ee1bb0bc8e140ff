"""A synchronous HTTP client of the control plane's tracking API, for ``--url`` commands.

It has the same read methods as the local :class:`ExperimentTracker`, so a command picks one
and never cares which. An error answer becomes the domain error of its code, carrying the
server's message, so the CLI prints the same one line either way.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
import msgspec

from control_plane.tracking.models import Experiment, Run, RunComparison
from modelyard.errors import ErrorCode, ModelyardError

T = TypeVar("T")


class RemoteError(ModelyardError):
    """An error answered by a remote control plane, with the code it answered."""

    def __init__(self, message: str, code: ErrorCode) -> None:
        super().__init__(message)
        self.code = code


def decoded(response: httpx.Response, shape: type[T]) -> T:
    """The body of a successful answer as ``shape``.

    Raises:
        RemoteError: the server answered an error (its message and code).
    """
    if response.is_success:
        return msgspec.json.decode(response.content, type=shape)
    try:
        body: Any = response.json()
        message, code = str(body["error"]), ErrorCode(body["code"])
    except (ValueError, KeyError, TypeError):
        message, code = f"HTTP {response.status_code}: {response.text[:200]}", ErrorCode.INTERNAL
    raise RemoteError(message, code)


class RemoteTracking:
    """Read experiments and runs from a control plane.

    Args:
        base_url: the control plane's base URL, e.g. ``http://127.0.0.1:8080``.
        timeout_s: per-request timeout.
    """

    def __init__(self, base_url: str, timeout_s: float = 30.0) -> None:
        self._client = httpx.Client(base_url=base_url, timeout=timeout_s)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def list_experiments(self) -> list[Experiment]:
        """Every active experiment."""
        return decoded(self._client.get("/v1/experiments"), list[Experiment])

    def search_runs(
        self,
        experiments: list[str],
        *,
        filter: str = "",
        order_by: list[str],
        max_results: int = 100,
    ) -> list[Run]:
        """Runs matching ``filter`` (see ``ExperimentTracker.search_runs``)."""
        params: dict[str, Any] = {
            "experiment": experiments,
            "filter": filter,
            "order_by": order_by,
            "max_results": max_results,
        }
        return decoded(self._client.get("/v1/runs", params=params), list[Run])

    def get_run(self, run_id: str) -> Run:
        """One run."""
        return decoded(self._client.get(f"/v1/runs/{run_id}"), Run)

    def compare_runs(self, run_ids: list[str]) -> RunComparison:
        """Runs side by side."""
        response = self._client.get("/v1/runs/compare", params={"run_id": run_ids})
        return decoded(response, RunComparison)
