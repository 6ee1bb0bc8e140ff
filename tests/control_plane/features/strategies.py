"""Hypothesis strategies and builders for feature definitions and the service."""

from __future__ import annotations

import msgspec
from hypothesis import strategies as st

from control_plane.features.models import FeatureDefinition, FeatureUpdate
from control_plane.features.service import FeatureService
from control_plane.features.store import SqlFeatureStore
from modelyard.enums import FeatureDType
from modelyard.storage import Database
from modelyard.storage.audit import AuditLog

_characters = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")

texts = st.text(_characters, min_size=1, max_size=60).filter(lambda s: bool(s.strip()))
"""Any non-blank text without NUL: unicode, newlines, quotes, SQL metacharacters."""

short_texts = st.text(_characters, min_size=1, max_size=30).filter(lambda s: bool(s.strip()))

tags = st.lists(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:/=\-]{0,12}", fullmatch=True), max_size=4, unique=True
).map(tuple)

updates = st.builds(
    FeatureUpdate,
    description=texts,
    dtype=st.sampled_from(FeatureDType),
    entity=short_texts,
    owner=short_texts,
    transformation=texts,
    source=texts,
    tags=tags,
)
"""Complete definitions of a version (no name)."""

name_suffixes = st.from_regex(r"[A-Za-z0-9_.\-]{0,20}", fullmatch=True)


def definition(name: str, update: FeatureUpdate) -> FeatureDefinition:
    """The create request of ``name`` with the fields of ``update``."""
    return FeatureDefinition(name=name, **msgspec.structs.asdict(update))


def sample_update(**overrides: object) -> FeatureUpdate:
    """A fixed, complete definition of a version, with ``overrides``."""
    fields: dict[str, object] = {
        "description": "Age of the customer in whole years",
        "dtype": FeatureDType.INT64,
        "entity": "customer",
        "owner": "risk-team",
        "transformation": "date_diff('year', birth_date, now())",
        "source": "warehouse.crm.customers",
        "tags": ("demographics",),
    }
    return msgspec.convert(fields | overrides, FeatureUpdate)


def sample_definition(name: str, **overrides: object) -> FeatureDefinition:
    """A fixed, complete create request for ``name``."""
    return definition(name, sample_update(**overrides))


def build_service(database: Database) -> FeatureService:
    """The feature service as the composition root builds it."""
    return FeatureService(database, SqlFeatureStore(), AuditLog(database))
