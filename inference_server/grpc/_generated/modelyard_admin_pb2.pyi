from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Route(_message.Message):
    __slots__ = ("version", "weight", "variant")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    version: int
    weight: float
    variant: str
    def __init__(self, version: _Optional[int] = ..., weight: _Optional[float] = ..., variant: _Optional[str] = ...) -> None: ...

class GetRoutesRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class SetRoutesRequest(_message.Message):
    __slots__ = ("model", "routes")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    model: str
    routes: _containers.RepeatedCompositeFieldContainer[Route]
    def __init__(self, model: _Optional[str] = ..., routes: _Optional[_Iterable[_Union[Route, _Mapping]]] = ...) -> None: ...

class RoutesResponse(_message.Message):
    __slots__ = ("model", "routes", "workers_applied")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    WORKERS_APPLIED_FIELD_NUMBER: _ClassVar[int]
    model: str
    routes: _containers.RepeatedCompositeFieldContainer[Route]
    workers_applied: int
    def __init__(self, model: _Optional[str] = ..., routes: _Optional[_Iterable[_Union[Route, _Mapping]]] = ..., workers_applied: _Optional[int] = ...) -> None: ...
