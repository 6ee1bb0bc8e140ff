"""Request and response shapes of the feature store, and the rule for a complete definition.

A feature definition is *complete* when every required field is present and not blank. The
required fields are the ones a caller supplies:

========================  ==============================================================
``name``                  unique name (letters, digits, ``_ . -``); with the version, the
                          stable key ``(name, version)`` lineage refers to. Not in the body
                          of an update (the name is in the path).
``description``           what the feature means.
``dtype``                 logical value type (:class:`~modelyard.enums.FeatureDType`).
``entity``                the entity the feature describes (``customer``).
``owner``                 who answers for the definition.
``transformation``        the expression or code reference that computes it.
``source``                the dataset or table it is computed from.
========================  ==============================================================

``tags`` is optional (default: none). ``id``, ``version``, ``created_at`` and ``created_by`` are
assigned by the store, never by the caller. A definition missing required fields is rejected
with one :class:`~modelyard.errors.InvalidArgument` that names *every* missing field, so a
client fixes its payload in one round trip (msgspec alone stops at the first one).

Input shapes forbid unknown fields; decoders are built once.

>>> missing_required({"name": "age", "dtype": "int64", "owner": " "}, CREATE_REQUIRED)
['description', 'entity', 'owner', 'transformation', 'source']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import msgspec

from modelyard.enums import FeatureDType
from modelyard.errors import InvalidArgument
from modelyard.models import NO_NUL, Feature, InputStruct, Name

ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NO_NUL)]
"""An entity or owner: non-empty, at most 200 characters, no NUL (PostgreSQL refuses it)."""

LongText = Annotated[str, msgspec.Meta(min_length=1, max_length=100_000, pattern=NO_NUL)]
"""A description, transformation or source: non-empty, at most 100 000 characters, no NUL."""

Tag = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/=\-]{0,63}\Z")]
"""A tag: letters, digits and ``_ . : / = -``, at most 64 characters."""

Tags = Annotated[tuple[Tag, ...], msgspec.Meta(max_length=50)]

CREATE_REQUIRED = (
    "name",
    "description",
    "dtype",
    "entity",
    "owner",
    "transformation",
    "source",
)
"""Fields a new definition must carry (present and not blank)."""

UPDATE_REQUIRED = CREATE_REQUIRED[1:]
"""Fields a new version must carry: all of :data:`CREATE_REQUIRED` but the name (in the path)."""


class FeatureUpdate(InputStruct, kw_only=True):
    """The body of ``PUT /v1/features/{name}``: the complete definition of the next version."""

    description: LongText
    dtype: FeatureDType
    entity: ShortText
    owner: ShortText
    transformation: LongText
    source: LongText
    tags: Tags = ()


class FeatureDefinition(FeatureUpdate, kw_only=True):
    """The body of ``POST /v1/features``: the first version of a new feature."""

    name: Name


class FeatureQuery(msgspec.Struct, kw_only=True, frozen=True):
    """Filters and page of a listing; filters combine with AND and apply to the latest version.

    Attributes:
        entity: only features describing this entity.
        tag: only features carrying this tag.
        owner: only features owned by this owner.
        prefix: only names starting with this (case-sensitive).
        include_deprecated: list deprecated features too.
        limit: page size (1..1000).
        offset: features to skip (ordered by name, bytewise).
    """

    entity: str | None = None
    tag: str | None = None
    owner: str | None = None
    prefix: str | None = None
    include_deprecated: bool = False
    limit: int = 100
    offset: int = 0


class FeaturePage(msgspec.Struct, kw_only=True, frozen=True):
    """One page of a listing, ordered by name.

    Attributes:
        items: the latest version of each listed feature.
        total: features matching the filters, across all pages.
        limit: the page size asked for.
        offset: where this page starts.
    """

    items: list[Feature]
    total: int
    limit: int
    offset: int


DefinitionT = TypeVar("DefinitionT", FeatureDefinition, FeatureUpdate)

_json_decoder = msgspec.json.Decoder()


def missing_required(raw: Mapping[str, Any], required: tuple[str, ...]) -> list[str]:
    """The required fields absent from ``raw`` or blank (empty or whitespace), in order."""
    return [
        field
        for field in required
        if raw.get(field) is None or (isinstance(raw[field], str) and not raw[field].strip())
    ]


def _required_of(shape: type[FeatureDefinition] | type[FeatureUpdate]) -> tuple[str, ...]:
    return CREATE_REQUIRED if shape is FeatureDefinition else UPDATE_REQUIRED


def definition_from_mapping(raw: object, shape: type[DefinitionT]) -> DefinitionT:
    """Validate a decoded JSON value as a definition of ``shape``.

    Raises:
        InvalidArgument: not an object, required fields missing or blank (all named), unknown
            fields, or a value of the wrong type or out of range.
    """
    if not isinstance(raw, Mapping):
        raise InvalidArgument(f"feature definition must be a JSON object, got {_kind(raw)}")
    required = _required_of(shape)
    missing = missing_required(raw, required)
    if missing:
        raise InvalidArgument(
            f"feature definition is missing required fields: {', '.join(missing)} "
            f"(required: {', '.join(required)})"
        )
    try:
        definition = msgspec.convert(raw, shape)
    except msgspec.ValidationError as error:
        raise InvalidArgument(f"invalid feature definition: {error}") from None
    duplicates = sorted({tag for tag in definition.tags if definition.tags.count(tag) > 1})
    if duplicates:
        raise InvalidArgument(f"feature definition repeats tags: {', '.join(duplicates)}")
    return definition


def decode_definition(body: bytes, shape: type[DefinitionT]) -> DefinitionT:
    """Decode a JSON request body into a validated definition of ``shape``.

    Raises:
        InvalidArgument: the body is not JSON, or :func:`definition_from_mapping` refuses it.
    """
    try:
        raw = _json_decoder.decode(body)
    except msgspec.DecodeError as error:
        raise InvalidArgument(f"request body is not valid JSON: {error}") from None
    return definition_from_mapping(raw, shape)


def validated(definition: DefinitionT) -> DefinitionT:
    """Re-check a definition built in Python (constructors skip msgspec's constraints).

    Raises:
        InvalidArgument: as :func:`definition_from_mapping`.
    """
    return definition_from_mapping(msgspec.to_builtins(definition), type(definition))


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    return "null" if value is None else f"a {type(value).__name__}"


__all__ = [
    "CREATE_REQUIRED",
    "UPDATE_REQUIRED",
    "FeatureDefinition",
    "FeaturePage",
    "FeatureQuery",
    "FeatureUpdate",
    "decode_definition",
    "definition_from_mapping",
    "missing_required",
    "validated",
]
