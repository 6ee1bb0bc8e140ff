"""Properties 11-15 and 37-41 of the model registry, each on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control_plane.registry.card_rules import minimal_card_data
from control_plane.registry.models import ReviewDecision
from control_plane.registry.service import RegistryService
from modelyard.enums import CardStatus, ModelStage
from modelyard.errors import FailedPrecondition, InvalidArgument, NotFound
from modelyard.models import DatasetRef, FeatureRef, ModelCard, ModelLineage
from tests.conftest import SyncDatabase
from tests.control_plane.registry.helpers import (
    ADMIN,
    APPROVER,
    DEVELOPER,
    approved_version,
    card,
    make_registry,
    registration,
)

PROPERTY = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None, max_examples=15
)
STAGES = st.sampled_from(list(ModelStage))
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=30)
WORDS = TEXT.filter(lambda s: s.strip() != "")


@pytest.fixture
def registry(sync_database: SyncDatabase, tmp_path: Path) -> RegistryService:
    return make_registry(sync_database.database, tmp_path)


async def _try_transition(
    registry: RegistryService, name: str, version: int, stage: ModelStage
) -> bool:
    try:
        await registry.stages.transition(name, version, stage, ADMIN)
    except FailedPrecondition:
        return False
    return True


@PROPERTY
@given(counts=st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=3))
def test_property_11_unique_versions_on_registration(
    sync_database: SyncDatabase, registry: RegistryService, counts: list[int]
) -> None:
    names = [sync_database.unique("m") for _ in counts]

    async def scenario() -> None:
        for round_ in range(max(counts)):
            for name, count in zip(names, counts, strict=True):
                if round_ < count:
                    await registry.register(name, registration(), DEVELOPER)
        for name, count in zip(names, counts, strict=True):
            versions = [m.version for m in await registry.list_versions(name=name)]
            assert versions == list(range(1, count + 1))

    sync_database.run(scenario())


@PROPERTY
@given(targets=st.lists(STAGES, min_size=1, max_size=8))
def test_property_12_transitions_preserve_version_numbers(
    sync_database: SyncDatabase, registry: RegistryService, targets: list[ModelStage]
) -> None:
    name = sync_database.unique("m")

    async def scenario() -> None:
        first = await approved_version(registry, name)
        second = await approved_version(registry, name)
        for i, stage in enumerate(targets):
            version = (first, second)[i % 2]
            before = await registry.get(name, version)
            moved = await _try_transition(registry, name, version, stage)
            after = await registry.get(name, version)
            assert after.version == version
            assert after.onnx_sha256 == before.onnx_sha256
            assert after.stage is (stage if moved else before.stage)
        assert [m.version for m in await registry.list_versions(name=name)] == [first, second]

    sync_database.run(scenario())


@PROPERTY
@given(promotions=st.lists(st.integers(min_value=0, max_value=2), min_size=0, max_size=5))
def test_property_13_production_queries_filter_correctly(
    sync_database: SyncDatabase, registry: RegistryService, promotions: list[int]
) -> None:
    name = sync_database.unique("m")
    other = sync_database.unique("o")

    async def scenario() -> None:
        versions = [await approved_version(registry, name) for _ in range(3)]
        await approved_version(registry, other)
        for index in promotions:
            version = versions[index]
            current = (await registry.get(name, version)).stage
            if current is ModelStage.PRODUCTION:
                continue
            if current is not ModelStage.STAGING:
                await registry.stages.transition(name, version, ModelStage.STAGING, DEVELOPER)
            await registry.stages.transition(name, version, ModelStage.PRODUCTION, APPROVER)
        production = await registry.list_versions(name=name, stage=ModelStage.PRODUCTION)
        if not promotions:
            assert production == []
            with pytest.raises(NotFound):
                await registry.production(name)
            return
        expected = versions[promotions[-1]]
        assert [m.version for m in production] == [expected]
        assert (await registry.production(name)).version == expected
        all_production = await registry.list_versions(stage=ModelStage.PRODUCTION)
        assert all(m.stage is ModelStage.PRODUCTION for m in all_production)
        assert other not in {m.name for m in all_production}

    sync_database.run(scenario())


FEATURE_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
LINEAGES = st.builds(
    ModelLineage,
    mlflow_run_id=st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
    training_dataset=st.builds(
        DatasetRef,
        uri=st.from_regex(r"s3://[a-z]{3,8}/[a-z0-9/]{1,20}\.parquet", fullmatch=True),
        sha256=st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
    ),
    features=st.lists(
        st.builds(FeatureRef, name=FEATURE_NAMES, version=st.integers(1, 5)),
        max_size=4,
        unique_by=lambda f: (f.name, f.version),
    ).map(tuple),
    parent_version=st.none() | st.integers(1, 10),
    code_version=st.from_regex(r"[0-9a-f]{40}", fullmatch=True),
    hyperparameters=st.dictionaries(
        st.from_regex(r"[a-z_]{1,8}", fullmatch=True),
        st.integers(-100, 100) | st.booleans() | st.text(max_size=5),
        max_size=4,
    ),
)


@PROPERTY
@given(lineage_=LINEAGES, blank=st.sampled_from(["none", "mlflow_run_id", "code_version"]))
def test_property_14_lineage_completeness(
    sync_database: SyncDatabase, registry: RegistryService, lineage_: ModelLineage, blank: str
) -> None:
    name = sync_database.unique("m")
    fidelity = {"max_abs_diff": 1e-7}

    async def scenario() -> None:
        if blank != "none":
            incomplete = msgspec.structs.replace(lineage_, **{blank: " "})
            with pytest.raises(InvalidArgument, match=blank):
                await registry.register(name, registration(lineage=incomplete), DEVELOPER)
            return
        model = await registry.register(
            name, registration(lineage=lineage_, fidelity=fidelity), DEVELOPER
        )
        stored = await registry.lineage(name, model.version)
        assert stored == msgspec.structs.replace(lineage_, fidelity=lineage_.fidelity | fidelity)
        for feature in lineage_.features:
            usage = await registry.versions_using_feature(feature.name, feature.version)
            assert (name, model.version) in {(m.name, m.version) for m in usage.models}

    sync_database.run(scenario())


PATHS: dict[ModelStage, list[ModelStage]] = {
    ModelStage.NONE: [],
    ModelStage.STAGING: [ModelStage.STAGING],
    ModelStage.PRODUCTION: [ModelStage.STAGING, ModelStage.PRODUCTION],
    ModelStage.ARCHIVED: [ModelStage.ARCHIVED],
}


@PROPERTY
@given(stages=st.lists(STAGES, min_size=1, max_size=5))
def test_property_15_query_by_version_or_stage(
    sync_database: SyncDatabase, registry: RegistryService, stages: list[ModelStage]
) -> None:
    name = sync_database.unique("m")

    async def scenario() -> None:
        expected: dict[int, ModelStage] = {}
        for stage in stages:
            version = await approved_version(registry, name)
            for step in PATHS[stage]:
                await registry.stages.transition(name, version, step, ADMIN)
            if stage is ModelStage.PRODUCTION:
                expected = {
                    v: ModelStage.ARCHIVED if s is ModelStage.PRODUCTION else s
                    for v, s in expected.items()
                }
            expected[version] = stage
        for version, stage in expected.items():
            model = await registry.get(name, version)
            assert (model.version, model.stage) == (version, stage)
        for stage in ModelStage:
            found = [m.version for m in await registry.list_versions(name=name, stage=stage)]
            assert found == sorted(v for v, s in expected.items() if s is stage)
        assert (await registry.latest(name)).version == len(stages)
        with pytest.raises(NotFound):
            await registry.get(name, len(stages) + 1)

    sync_database.run(scenario())


@PROPERTY
@given(with_card=st.booleans())
def test_property_37_registration_requires_a_model_card(
    sync_database: SyncDatabase, registry: RegistryService, with_card: bool
) -> None:
    name = sync_database.unique("m")

    async def scenario() -> None:
        if with_card:
            model = await registry.register(name, registration(), DEVELOPER)
            assert model.card == card()
            assert model.card_status is CardStatus.DRAFT
            return
        with pytest.raises(InvalidArgument, match="model card is required"):
            await registry.register(name, registration(card=None), DEVELOPER)
        assert await registry.list_versions(name=name) == []
        assert name not in {s.name for s in await registry.summaries()}

    sync_database.run(scenario())


BREAKAGES: dict[str, tuple[Any, ...] | dict[str, Any]] = {
    "model_details.license": ("model_details", "license", ""),
    "model_details.owners": ("model_details", "owners", []),
    "intended_uses": {"intended_uses": []},
    "out_of_scope_uses": {"out_of_scope_uses": [" "]},
    "training_data": {"training_data": {"name": "t"}},
    "evaluation_data.name": {"evaluation_data": {"name": " ", "uri": "s3://x"}},
    "metrics": {"metrics": []},
    "limitations": {"limitations": []},
    "ethical_considerations": {"ethical_considerations": [{"name": "bias", "mitigation": ""}]},
}


def _broken_card(keys: list[str]) -> ModelCard:
    data = minimal_card_data()
    for key in keys:
        breakage = BREAKAGES[key]
        if isinstance(breakage, tuple):
            section, field, value = breakage
            data[section] = data[section] | {field: value}
        else:
            data |= breakage
    return msgspec.convert(data, ModelCard)


@PROPERTY
@given(broken=st.lists(st.sampled_from(sorted(BREAKAGES)), unique=True, max_size=3))
def test_property_38_card_completeness(
    sync_database: SyncDatabase, registry: RegistryService, broken: list[str]
) -> None:
    name = sync_database.unique("m")
    candidate = _broken_card(broken)

    async def scenario() -> None:
        if not broken:
            await registry.register(name, registration(card=candidate), DEVELOPER)
            return
        with pytest.raises(InvalidArgument) as raised:
            await registry.register(name, registration(card=candidate), DEVELOPER)
        for key in broken:
            assert key in str(raised.value)
        first = await approved_version(registry, name)
        with pytest.raises(InvalidArgument):
            await registry.cards.edit(name, first, candidate, DEVELOPER)
        assert len(await registry.card_history(name, first)) == 1

    sync_database.run(scenario())


CARDS = st.builds(
    lambda overview, uses, limits, value: card(
        model_details=minimal_card_data()["model_details"] | {"overview": overview},
        intended_uses=uses,
        limitations=limits,
        metrics=[{"type": "accuracy", "value": value, "slice": "region=eu"}],
    ),
    WORDS,
    st.lists(WORDS, min_size=1, max_size=3),
    st.lists(WORDS, min_size=1, max_size=3),
    st.floats(0, 1),
)


@PROPERTY
@given(first=CARDS, second=CARDS)
def test_property_39_queries_return_cards(
    sync_database: SyncDatabase, registry: RegistryService, first: ModelCard, second: ModelCard
) -> None:
    name = sync_database.unique("m")

    async def scenario() -> None:
        v1 = (await registry.register(name, registration(card=first), DEVELOPER)).version
        v2 = (await registry.register(name, registration(card=second), DEVELOPER)).version
        assert (await registry.get(name, v1)).card == first
        assert (await registry.get(name, v2)).card == second
        assert [m.card for m in await registry.list_versions(name=name)] == [first, second]
        assert (await registry.latest(name)).card == second
        assert (await registry.cards.current(name, v1)).card == first

    sync_database.run(scenario())


@PROPERTY
@given(edits=st.lists(CARDS, min_size=0, max_size=4), approve_at=st.integers(0, 4))
def test_property_40_card_versioning_consistency(
    sync_database: SyncDatabase,
    registry: RegistryService,
    edits: list[ModelCard],
    approve_at: int,
) -> None:
    name = sync_database.unique("m")

    async def scenario() -> None:
        version = (await registry.register(name, registration(), DEVELOPER)).version
        contents = [card()]
        for i, edited in enumerate(edits):
            if i == approve_at:
                await registry.cards.submit(name, version, DEVELOPER)
                await registry.cards.review(name, version, ReviewDecision.APPROVED, APPROVER)
            revision = await registry.cards.edit(name, version, edited, DEVELOPER, "edit")
            assert revision.revision == i + 2
            assert revision.status is CardStatus.DRAFT
            contents.append(edited)
        history = await registry.card_history(name, version)
        assert [r.revision for r in history] == list(range(1, len(contents) + 1))
        assert [r.card for r in history] == contents
        model = await registry.get(name, version)
        assert (model.card, model.card_revision) == (contents[-1], len(contents))
        assert model.card_status is CardStatus.DRAFT
        approved = [r for r in history if r.status is CardStatus.APPROVED]
        assert len(approved) == (1 if approve_at < len(edits) else 0)
        for revision in approved:
            assert revision.reviews[-1].card_sha256 == revision.card_sha256

    sync_database.run(scenario())


@PROPERTY
@given(path=st.lists(st.sampled_from(["submit", "approve", "reject", "edit"]), max_size=5))
def test_property_41_production_requires_an_approved_card(
    sync_database: SyncDatabase, registry: RegistryService, path: list[str]
) -> None:
    name = sync_database.unique("m")

    async def step(version: int, action: str) -> None:
        cards = registry.cards
        try:
            if action == "submit":
                await cards.submit(name, version, DEVELOPER)
            elif action == "edit":
                await cards.edit(name, version, card(tradeoffs=["speed"]), DEVELOPER)
            else:
                decision = ReviewDecision(action + "d" if action == "approve" else "rejected")
                await cards.review(name, version, decision, APPROVER)
        except FailedPrecondition:
            pass

    async def scenario() -> None:
        version = (await registry.register(name, registration(), DEVELOPER)).version
        await registry.stages.transition(name, version, ModelStage.STAGING, DEVELOPER)
        for action in path:
            await step(version, action)
        status = (await registry.get(name, version)).card_status
        if status is CardStatus.APPROVED:
            moved = await registry.stages.transition(name, version, ModelStage.PRODUCTION, APPROVER)
            assert moved.stage is ModelStage.PRODUCTION
            return
        with pytest.raises(FailedPrecondition, match="not approved"):
            await registry.stages.transition(name, version, ModelStage.PRODUCTION, APPROVER)
        assert (await registry.get(name, version)).stage is ModelStage.STAGING

    sync_database.run(scenario())
