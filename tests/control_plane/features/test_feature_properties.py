"""Properties 1-5 of the feature store (issue 5), each on SQLite and PostgreSQL.

Hypothesis runs every example against one database per backend, so each example works under
a fresh name prefix and never assumes an empty store.
"""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control_plane.features.models import (
    CREATE_REQUIRED,
    FeatureDefinition,
    FeatureUpdate,
    decode_definition,
)
from modelyard.errors import InvalidArgument, NotFound
from modelyard.models import Feature, FeatureRef
from tests.conftest import SyncDatabase
from tests.control_plane.features.strategies import (
    build_service,
    definition,
    name_suffixes,
    updates,
)

property_settings = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None, max_examples=25
)

_encoder = msgspec.json.Encoder()


def write_versions(
    db: SyncDatabase, name: str, first: FeatureUpdate, later: list[FeatureUpdate]
) -> list[Feature]:
    """Create ``name`` from ``first``, then update it with each of ``later``; what was written."""
    service = build_service(db.database)
    written = [db.run(service.create_feature(definition(name, first), actor="alice"))]
    for number, update in enumerate(later, start=2):
        written.append(db.run(service.update_feature(name, update, actor=f"editor-{number}")))
    return written


@property_settings
@given(batch=st.lists(st.tuples(name_suffixes, updates), min_size=1, max_size=5))
def test_property_1_creation_assigns_unique_ids_and_version_1(
    sync_database: SyncDatabase, batch: list[tuple[str, FeatureUpdate]]
) -> None:
    service = build_service(sync_database.database)
    prefix = sync_database.unique("p1")
    created = [
        sync_database.run(
            service.create_feature(definition(f"{prefix}-{i}{suffix}", update), actor="alice")
        )
        for i, (suffix, update) in enumerate(batch)
    ]
    assert [feature.version for feature in created] == [1] * len(batch)
    assert all(len(feature.id) == 32 and int(feature.id, 16) >= 0 for feature in created)
    everything = sync_database.run(service.list_features(include_deprecated=True, limit=1000))
    assert everything.total == len(everything.items)
    all_ids = [feature.id for feature in everything.items]
    assert len(set(all_ids)) == len(all_ids), "ids are unique across the whole store"
    assert {feature.id for feature in created} <= set(all_ids)
    for feature in created:
        assert sync_database.run(service.get_feature(feature.name)) == feature


@property_settings
@given(first=updates, later=st.lists(updates, max_size=4))
def test_property_2_queries_return_the_latest_version_by_default(
    sync_database: SyncDatabase, first: FeatureUpdate, later: list[FeatureUpdate]
) -> None:
    service = build_service(sync_database.database)
    name = sync_database.unique("p2")
    written = write_versions(sync_database, name, first, later)
    latest = written[-1]
    assert latest.version == len(later) + 1
    assert sync_database.run(service.get_feature(name)) == latest
    listed = sync_database.run(service.list_features(prefix=name))
    assert listed.items == [latest]
    assert sync_database.run(service.list_features(entity=latest.entity, prefix=name)).items == [
        latest
    ]


@property_settings
@given(first=updates, later=st.lists(updates, min_size=1, max_size=4))
def test_property_3_updates_preserve_version_history(
    sync_database: SyncDatabase, first: FeatureUpdate, later: list[FeatureUpdate]
) -> None:
    service = build_service(sync_database.database)
    name = sync_database.unique("p3")
    written = write_versions(sync_database, name, first, [])
    for update in later:
        written.append(sync_database.run(service.update_feature(name, update, actor="bob")))
        history = sync_database.run(service.get_history(name))
        assert history == written, "every earlier version is kept unchanged, in order"
    assert [feature.version for feature in written] == list(range(1, len(later) + 2))
    assert len({feature.id for feature in written}) == 1, "one feature, one id"
    created_at = [feature.created_at for feature in written]
    assert created_at == sorted(created_at)


@property_settings
@given(first=updates, later=st.lists(updates, max_size=4), data=st.data())
def test_property_4_version_retrieval_is_exact(
    sync_database: SyncDatabase,
    first: FeatureUpdate,
    later: list[FeatureUpdate],
    data: st.DataObject,
) -> None:
    service = build_service(sync_database.database)
    name = sync_database.unique("p4")
    written = write_versions(sync_database, name, first, later)
    sent = [first, *later]
    order = data.draw(st.permutations(range(1, len(written) + 1)), label="versions")
    for version in order:
        stored = sync_database.run(service.get_feature(name, version))
        assert stored == written[version - 1]
        sent_fields = msgspec.structs.asdict(sent[version - 1])
        assert {key: getattr(stored, key) for key in sent_fields} == sent_fields
        assert msgspec.json.decode(_encoder.encode(stored), type=Feature) == stored
    refs = [FeatureRef(name=name, version=version) for version in order]
    resolved = sync_database.run(service.resolve(refs))
    assert resolved == [written[version - 1] for version in order]
    with pytest.raises(NotFound, match=f"version {len(written) + 1} not found"):
        sync_database.run(service.get_feature(name, len(written) + 1))


@property_settings
@given(
    update=updates,
    removed=st.sets(st.sampled_from(CREATE_REQUIRED)),
    how=st.sampled_from([None, "", "   ", "\t\n"]),
)
def test_property_5_feature_metadata_is_complete(
    sync_database: SyncDatabase, update: FeatureUpdate, removed: set[str], how: str | None
) -> None:
    service = build_service(sync_database.database)
    name = sync_database.unique("p5")
    complete = definition(name, update)
    raw = msgspec.to_builtins(complete)
    for field in removed:
        if how is None:
            del raw[field]
        else:
            raw[field] = how
    if removed:
        with pytest.raises(InvalidArgument) as refused:
            decode_definition(_encoder.encode(raw), FeatureDefinition)
        named = str(refused.value).split(": ", 1)[1].split(" (required", 1)[0].split(", ")
        assert set(named) == removed, "every missing field is named, no other"
        if how is not None:
            # NOTE: constructors skip msgspec's checks; the service must catch blanks itself.
            blank = msgspec.structs.replace(complete, **dict.fromkeys(removed, how))
            with pytest.raises(InvalidArgument, match="missing required fields"):
                sync_database.run(service.create_feature(blank, actor="alice"))
        if "name" not in removed:
            with pytest.raises(NotFound):
                sync_database.run(service.get_feature(name))
        return
    before = dt.datetime.now(dt.UTC)
    created = sync_database.run(service.create_feature(complete, actor="alice"))
    after = dt.datetime.now(dt.UTC)
    for stored in (created, sync_database.run(service.get_feature(name))):
        for field in (*CREATE_REQUIRED, "tags"):
            assert getattr(stored, field) == getattr(complete, field), field
        assert len(stored.id) == 32
        assert stored.version == 1
        assert stored.created_by == "alice"
        assert stored.created_at.tzinfo is not None
        assert before <= stored.created_at <= after
