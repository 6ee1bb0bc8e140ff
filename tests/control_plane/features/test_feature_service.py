"""The feature service contract on both backends: listing, deprecation, lineage, errors."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from control_plane.features.models import FeatureDefinition, FeatureUpdate, decode_definition
from control_plane.features.service import FeatureService
from modelyard.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from modelyard.models import FeatureRef
from modelyard.storage import Database
from modelyard.storage.audit import AuditLog
from tests.control_plane.features.strategies import sample_definition, sample_update


async def names(features: FeatureService, **filters: Any) -> list[str]:
    page = await features.list_features(**filters)
    return [feature.name for feature in page.items]


async def test_listing_filters_combine_and_apply_to_the_latest_version(
    features: FeatureService,
) -> None:
    await features.create_feature(sample_definition("age", tags=("pii", "demographics")), actor="a")
    await features.create_feature(sample_definition("income", owner="finance"), actor="a")
    await features.create_feature(sample_definition("store_size", entity="store"), actor="a")
    await features.create_feature(sample_definition("storeXsize", entity="store"), actor="a")
    assert await names(features, entity="customer") == ["age", "income"]
    assert await names(features, owner="finance") == ["income"]
    assert await names(features, tag="pii") == ["age"]
    tagged = await names(features, tag="demographics", owner="risk-team")
    assert tagged == ["age", "storeXsize", "store_size"], "bytewise order: X < _"
    assert await names(features, prefix="store_") == ["store_size"], "_ is literal"
    assert await names(features, prefix="Store") == [], "prefix is case-sensitive"
    await features.update_feature("age", sample_update(entity="household", tags=()), actor="b")
    assert await names(features, entity="customer") == ["income"]
    assert await names(features, entity="household") == ["age"]
    assert await names(features, tag="pii") == [], "tags of old versions do not match"


async def test_listing_pages_in_bytewise_name_order(features: FeatureService) -> None:
    created = ["b", "B", "a_b", "a", "A.1", "aa", "a-b"]
    for name in created:
        await features.create_feature(sample_definition(name), actor="a")
    expected = sorted(created)
    pages = [await features.list_features(limit=3, offset=offset) for offset in (0, 3, 6)]
    assert [f.name for page in pages for f in page.items] == expected
    assert [page.total for page in pages] == [7, 7, 7]
    assert (await features.list_features(offset=10)).items == []
    with pytest.raises(InvalidArgument, match="limit"):
        await features.list_features(limit=0)
    with pytest.raises(InvalidArgument, match="offset"):
        await features.list_features(offset=-1)


async def test_deprecation_hides_from_listings_but_keeps_versions_readable(
    features: FeatureService, database: Database
) -> None:
    first = await features.create_feature(sample_definition("churn_score"), actor="a")
    second = await features.update_feature("churn_score", sample_update(owner="ml"), actor="b")
    deprecated = await features.deprecate_feature("churn_score", actor="c", reason="replaced")
    assert deprecated.deprecated
    assert deprecated.version == 2
    assert await names(features) == []
    assert await names(features, include_deprecated=True) == ["churn_score"]
    assert (await features.get_feature("churn_score", 1)).description == first.description
    assert [f.deprecated for f in await features.get_history("churn_score")] == [True, True]
    refs = [FeatureRef(name="churn_score", version=1), FeatureRef(name="churn_score", version=2)]
    resolved = await features.resolve(refs)
    assert [(f.version, f.owner) for f in resolved] == [(1, first.owner), (2, second.owner)]
    again = await features.deprecate_feature("churn_score", actor="c")
    assert again == deprecated, "deprecating twice changes nothing"
    with pytest.raises(FailedPrecondition, match="deprecated"):
        await features.update_feature("churn_score", sample_update(), actor="b")
    with pytest.raises(AlreadyExists, match="churn_score"):
        await features.create_feature(sample_definition("churn_score"), actor="a")


async def test_changes_are_audited(features: FeatureService, database: Database) -> None:
    await features.create_feature(sample_definition("visits"), actor="alice")
    await features.update_feature("visits", sample_update(), actor="bob")
    await features.deprecate_feature("visits", actor="carol", reason="unused")
    log = AuditLog(database)
    events = await log.list(entity_kind="feature")
    assert [(e.actor, e.action, e.entity, e.to_state) for e in events] == [
        ("alice", "create", "visits/1", "active"),
        ("bob", "update", "visits/2", None),
        ("carol", "deprecate", "visits/2", "deprecated"),
    ]
    assert events[-1].reason == "unused"


async def test_resolve_keeps_order_and_names_the_missing_pair(features: FeatureService) -> None:
    await features.create_feature(sample_definition("x1"), actor="a")
    await features.create_feature(sample_definition("x2"), actor="a")
    await features.update_feature("x2", sample_update(), actor="a")
    refs = [FeatureRef(name=n, version=v) for n, v in [("x2", 2), ("x1", 1), ("x2", 1)]]
    assert [(f.name, f.version) for f in await features.resolve(refs)] == [
        ("x2", 2),
        ("x1", 1),
        ("x2", 1),
    ]
    assert await features.resolve([]) == []
    with pytest.raises(NotFound, match="feature 'x1' version 2 not found"):
        await features.resolve([*refs, FeatureRef(name="x1", version=2)])
    with pytest.raises(NotFound, match="feature 'nope' version 1 not found"):
        await features.resolve([FeatureRef(name="nope", version=1)])


async def test_resolving_thousands_of_pairs_names_the_first_missing_one(
    features: FeatureService,
) -> None:
    """One IN list of 8,000 pairs passed PostgreSQL's max_stack_depth: a registration naming
    that many lineage features was a 500 instead of 'not found'."""
    await features.create_feature(sample_definition("x1"), actor="a")
    refs = [FeatureRef(name="x1", version=v) for v in range(1, 8001)]
    assert [(f.name, f.version) for f in await features.resolve(refs[:1] * 3)] == [("x1", 1)] * 3
    with pytest.raises(NotFound, match="feature 'x1' version 2 not found"):
        await features.resolve(refs)


async def test_unknown_features_and_versions_are_named(features: FeatureService) -> None:
    with pytest.raises(NotFound, match=r"^feature 'ghost' not found$"):
        await features.get_feature("ghost")
    with pytest.raises(NotFound, match=r"^feature 'ghost' not found$"):
        await features.get_feature("ghost", 3)
    with pytest.raises(NotFound, match="ghost"):
        await features.get_history("ghost")
    with pytest.raises(NotFound, match="ghost"):
        await features.update_feature("ghost", sample_update(), actor="a")
    with pytest.raises(NotFound, match="ghost"):
        await features.deprecate_feature("ghost", actor="a")
    await features.create_feature(sample_definition("real"), actor="a")
    with pytest.raises(NotFound, match=r"^feature 'real' version 2 not found$"):
        await features.get_feature("real", 2)


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"owner": " "}, "missing required fields: owner"),
        ({"entity": "", "source": ""}, "missing required fields: entity, source"),
        ({"description": "nul \x00 byte"}, "description"),
        ({"tags": ("a", "a")}, "repeats tags: a"),
        ({"tags": ("no spaces",)}, "tags"),
        ({"entity": "e" * 201}, "entity"),
    ],
)
async def test_definitions_built_in_python_are_validated(
    features: FeatureService, overrides: dict[str, object], problem: str
) -> None:
    bad = msgspec.structs.replace(sample_definition("checked"), **overrides)
    with pytest.raises(InvalidArgument, match=problem):
        await features.create_feature(bad, actor="a")
    await features.create_feature(sample_definition("checked"), actor="a")
    bad_update = msgspec.structs.replace(sample_update(), **overrides)
    with pytest.raises(InvalidArgument, match=problem):
        await features.update_feature("checked", bad_update, actor="a")
    with pytest.raises(InvalidArgument, match="actor"):
        await features.update_feature("checked", sample_update(), actor=" ")
    assert len(await features.get_history("checked")) == 1


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{", "not valid JSON"),
        (b"[]", "must be a JSON object, got an array"),
        (b"null", "must be a JSON object, got null"),
        (b'{"name": "a"}', "missing required fields: description, dtype, entity, owner"),
        (
            b'{"name": "a/b", "description": "d", "dtype": "int64", "entity": "e", '
            b'"owner": "o", "transformation": "t", "source": "s"}',
            "name",
        ),
        (
            b'{"name": "a", "description": "d", "dtype": "int128", "entity": "e", '
            b'"owner": "o", "transformation": "t", "source": "s"}',
            "dtype",
        ),
        (
            b'{"name": "a", "description": "d", "dtype": "int64", "entity": "e", '
            b'"owner": "o", "transformation": "t", "source": "s", "colour": 1}',
            "unknown field `colour`",
        ),
    ],
)
def test_decoding_names_the_problem(body: bytes, problem: str) -> None:
    with pytest.raises(InvalidArgument, match=problem):
        decode_definition(body, FeatureDefinition)


def test_an_update_body_carries_no_name() -> None:
    body = msgspec.json.encode(sample_definition("a"))
    with pytest.raises(InvalidArgument, match="unknown field `name`"):
        decode_definition(body, FeatureUpdate)
    assert decode_definition(msgspec.json.encode(sample_update()), FeatureUpdate) == sample_update()
