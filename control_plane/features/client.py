"""An HTTP client of the feature store's REST API, shaped like :class:`FeatureService`.

The CLI talks to either this client (``--url``) or the service over the local store through
the :class:`FeatureApi` protocol, so each command is written once. Error bodies
(``{"error", "code"}``) come back as :class:`RemoteError` carrying the server's code, so the
CLI prints the server's message and exits 2 just as it does for a local domain error.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import quote

import httpx
import msgspec

from control_plane.features.models import FeatureDefinition, FeaturePage
from modelyard.errors import ErrorCode, ModelyardError, Unavailable
from modelyard.models import Feature


class FeatureApi(Protocol):
    """What the CLI needs of the feature store, locally or remotely."""

    async def create_feature(self, definition: FeatureDefinition, *, actor: str) -> Feature:
        """Create a feature (version 1)."""
        ...

    async def get_feature(self, name: str, version: int | None = None) -> Feature:
        """The latest version, or exactly ``version``."""
        ...

    async def get_history(self, name: str) -> list[Feature]:
        """Every version, oldest first."""
        ...

    async def list_features(
        self,
        *,
        entity: str | None = None,
        tag: str | None = None,
        owner: str | None = None,
        prefix: str | None = None,
        include_deprecated: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> FeaturePage:
        """One page of the latest versions matching the filters."""
        ...


class RemoteError(ModelyardError):
    """An error answered by the control plane, with the code it sent."""

    def __init__(self, message: str, code: ErrorCode) -> None:
        super().__init__(message)
        self.code = code


_ERROR_BODY = msgspec.json.Decoder(dict[str, str])
_FEATURE = msgspec.json.Decoder(Feature)
_HISTORY = msgspec.json.Decoder(list[Feature])
_PAGE = msgspec.json.Decoder(FeaturePage)
_ENCODER = msgspec.json.Encoder()


class FeatureClient:
    """The feature store of a running control plane.

    Args:
        base_url: the control plane's base URL (``http://127.0.0.1:8000``).
        timeout: seconds per request.
        token: API token sent as ``Authorization: Bearer`` (changes need one).
    """

    def __init__(self, base_url: str, *, timeout: float = 30.0, token: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, headers=headers)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    async def create_feature(self, definition: FeatureDefinition, *, actor: str) -> Feature:
        """Create a feature; ``actor`` is ignored (the server records who is authenticated)."""
        del actor
        body = _ENCODER.encode(definition)
        headers = {"content-type": "application/json"}
        response = await self._request("POST", "/v1/features", content=body, headers=headers)
        return _FEATURE.decode(response.content)

    async def get_feature(self, name: str, version: int | None = None) -> Feature:
        params = {} if version is None else {"version": version}
        response = await self._request("GET", f"/v1/features/{quote(name, safe='')}", params=params)
        return _FEATURE.decode(response.content)

    async def get_history(self, name: str) -> list[Feature]:
        response = await self._request("GET", f"/v1/features/{quote(name, safe='')}/versions")
        return _HISTORY.decode(response.content)

    async def list_features(
        self,
        *,
        entity: str | None = None,
        tag: str | None = None,
        owner: str | None = None,
        prefix: str | None = None,
        include_deprecated: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> FeaturePage:
        filters = {"entity": entity, "tag": tag, "owner": owner, "prefix": prefix}
        params: dict[str, Any] = {key: value for key, value in filters.items() if value is not None}
        params |= {"include_deprecated": include_deprecated, "limit": limit, "offset": offset}
        response = await self._request("GET", "/v1/features", params=params)
        return _PAGE.decode(response.content)

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request; a failure becomes a domain error carrying the server's message.

        Raises:
            Unavailable: the control plane cannot be reached.
            RemoteError: it answered with an error status.
        """
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise Unavailable(f"control plane at {self.base_url} is unreachable: {error}") from None
        if response.is_success:
            return response
        raise _remote_error(response)


def _remote_error(response: httpx.Response) -> RemoteError:
    """The error an error response stands for (its JSON body, else its status line)."""
    try:
        body = _ERROR_BODY.decode(response.content)
    except msgspec.DecodeError:
        body = {}
    message = body.get("error") or f"HTTP {response.status_code}: {response.text[:200]}"
    codes = {code.value: code for code in ErrorCode}
    return RemoteError(message, codes.get(body.get("code", ""), ErrorCode.INTERNAL))


__all__ = ["FeatureApi", "FeatureClient", "RemoteError"]
