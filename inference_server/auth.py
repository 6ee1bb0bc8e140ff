"""Bearer tokens of the inference server: the one check every admin (and guarded) call uses.

Two optional secrets, both from the settings (``server.admin_token`` /
``MODELYARD_SERVER_ADMIN_TOKEN`` and ``server.inference_token`` /
``MODELYARD_SERVER_INFERENCE_TOKEN``):

* **admin token**: when set, every admin call -- repository load/unload, route reads and
  changes, prediction-log flush, sketch reads, and every operation registered on the admin
  fan-out -- needs ``Authorization: Bearer <token>`` (HTTP header, or the gRPC metadata key
  ``authorization`` with the same value). Unset: admin calls are open (a server on loopback
  in development), as before.
* **inference token**: when set, inference calls (OIP infer on both protocols, ``/predict``,
  ``/predict/batch``) need it too; unset (the default), inference stays open. Health,
  readiness and metadata stay open either way, so probes and load balancers need no secret.

The comparison is constant-time (:func:`hmac.compare_digest` over the UTF-8 bytes), so the
answer time does not reveal how much of a guess was right. A missing or wrong token raises
:class:`~modelyard.errors.Unauthenticated`, which the transports turn into 401 (with
``www-authenticate: Bearer``) and UNAUTHENTICATED. This module is the only token check of the
data plane: new admin endpoints call :meth:`BearerAuth.check_admin`, never a copy of it.

>>> auth = BearerAuth(admin_token="s3cret")
>>> auth.check_admin(b"Bearer s3cret")
>>> try:
...     auth.check_admin("Bearer guess")
... except Unauthenticated as exc:
...     print(exc)
invalid bearer token for an admin call
>>> BearerAuth().check_admin(None)  # no token configured: open
"""

from __future__ import annotations

import hmac
from typing import Final

from modelyard.errors import Unauthenticated

AUTHORIZATION: Final = "authorization"
"""The HTTP header (lower-cased) and gRPC metadata key that carry the token."""

_SCHEME: Final = b"bearer "


def _presented(value: str | bytes | None) -> bytes | None:
    """The token of an ``Authorization: Bearer <token>`` value; None if absent or no bearer."""
    if value is None:
        return None
    raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    if raw[: len(_SCHEME)].lower() != _SCHEME:
        return None
    return raw[len(_SCHEME) :].strip()


def _check(expected: bytes, value: str | bytes | None, what: str) -> None:
    token = _presented(value)
    if token is None:
        raise Unauthenticated(f"{what} needs 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(token, expected):
        raise Unauthenticated(f"invalid bearer token for {what}")


class BearerAuth:
    """The configured tokens and their constant-time checks (see the module docstring)."""

    __slots__ = ("_admin", "_inference")

    def __init__(self, admin_token: str = "", inference_token: str = "") -> None:
        self._admin = admin_token.encode() if admin_token else None
        self._inference = inference_token.encode() if inference_token else None

    @property
    def admin_protected(self) -> bool:
        """Whether admin calls need a token."""
        return self._admin is not None

    @property
    def inference_protected(self) -> bool:
        """Whether inference calls need a token (adapters skip the check entirely if not)."""
        return self._inference is not None

    def check_admin(self, authorization: str | bytes | None) -> None:
        """Accept an admin call carrying this ``Authorization`` value.

        Raises:
            Unauthenticated: an admin token is configured and the value does not carry it.
        """
        if self._admin is not None:
            _check(self._admin, authorization, "an admin call")

    def check_inference(self, authorization: str | bytes | None) -> None:
        """Accept an inference call carrying this ``Authorization`` value.

        Raises:
            Unauthenticated: an inference token is configured and the value does not carry it.
        """
        if self._inference is not None:
            _check(self._inference, authorization, "inference")
