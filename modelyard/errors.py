"""Domain errors shared by every plane, with transport-neutral codes.

Every error raised on purpose by modelyard code derives from :class:`ModelyardError` and
carries an :class:`ErrorCode`. Transports translate the code in one table each (HTTP status
in the REST adapters, gRPC status in the gRPC adapter); tests assert that every table covers
every code. Domain errors never import a transport framework.

>>> err = NotFound("model", "churn", version="3")
>>> err.code is ErrorCode.NOT_FOUND, str(err)
(True, "model 'churn' version 3 not found")
"""

from __future__ import annotations

import enum


class ErrorCode(enum.Enum):
    """Transport-neutral error codes, named after the gRPC status codes they map to."""

    INVALID_ARGUMENT = "invalid_argument"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    FAILED_PRECONDITION = "failed_precondition"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    UNAVAILABLE = "unavailable"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    INTERNAL = "internal"


class ModelyardError(Exception):
    """Base of every deliberate modelyard error.

    Attributes:
        code: the transport-neutral code the transports translate.
        message: one sentence naming the entity and the problem.
    """

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidArgument(ModelyardError):
    """The caller sent something malformed or out of range."""

    code = ErrorCode.INVALID_ARGUMENT


class NotFound(ModelyardError):
    """A named entity does not exist."""

    code = ErrorCode.NOT_FOUND

    def __init__(self, kind: str, name: str, *, version: str | int | None = None) -> None:
        suffix = f" version {version}" if version is not None else ""
        super().__init__(f"{kind} {name!r}{suffix} not found")
        self.kind = kind
        self.name = name
        self.version = version


class AlreadyExists(ModelyardError):
    """Creating an entity that exists already."""

    code = ErrorCode.ALREADY_EXISTS


class FailedPrecondition(ModelyardError):
    """The request is well formed but the system is not in a state that allows it."""

    code = ErrorCode.FAILED_PRECONDITION


class Unauthenticated(ModelyardError):
    """No valid credentials were presented."""

    code = ErrorCode.UNAUTHENTICATED


class PermissionDenied(ModelyardError):
    """Valid credentials without the role the operation needs."""

    code = ErrorCode.PERMISSION_DENIED


class ResourceExhausted(ModelyardError):
    """A bounded resource (a queue, a size limit) is full; retrying later may succeed."""

    code = ErrorCode.RESOURCE_EXHAUSTED


class Unavailable(ModelyardError):
    """A state that clears by itself (loading, draining); the caller should retry."""

    code = ErrorCode.UNAVAILABLE


DRAINING = "server is shutting down; retry on another replica"
"""The :class:`Unavailable` message of a request refused because the server is draining (the
same words on HTTP and gRPC, whichever layer refuses)."""


class DeadlineExceeded(ModelyardError):
    """The operation did not finish within its time budget."""

    code = ErrorCode.DEADLINE_EXCEEDED


class ConfigurationError(ModelyardError):
    """A setting is missing or invalid; the message names the key and the value."""

    code = ErrorCode.INVALID_ARGUMENT
