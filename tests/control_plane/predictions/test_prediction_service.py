"""The prediction log's store and service on both backends (records inserted as a server would)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.exc import IntegrityError

from control_plane.predictions.models import Outcome
from control_plane.predictions.service import PredictionService
from control_plane.predictions.store import SqlPredictionStore
from modelyard.errors import InvalidArgument
from modelyard.prediction_log import PredictionRecord, prediction_log, record_values
from modelyard.storage import Database

T0 = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)


def record(request_id: str, row: int = 0, **overrides: object) -> PredictionRecord:
    values: dict[str, object] = {
        "request_id": request_id,
        "row_index": row,
        "created_at": T0,
        "model": "churn",
        "version": 1,
        "variant": "none",
        "protocol": "grpc",
        "latency_ms": 1.25,
        "inputs": {"age": 42, "plan": "gold"},
        "outputs": {"label": 1, "probabilities": [0.25, 0.75]},
    }
    values.update(overrides)
    return PredictionRecord(**values)  # type: ignore[arg-type]


async def insert(database: Database, *records: PredictionRecord) -> None:
    async with database.write() as conn:
        await conn.execute(prediction_log.insert(), [record_values(r) for r in records])


@pytest.fixture
def service(database: Database) -> PredictionService:
    return PredictionService(database, SqlPredictionStore())


async def test_records_round_trip_with_every_field(
    database: Database, service: PredictionService
) -> None:
    written = record("r1", routing_key="user-7", variant="treatment", worker=3)
    await insert(database, written)
    page = await service.list_predictions(model="churn")
    assert len(page.items) == 1
    got = page.items[0]
    assert got.id is not None
    assert got == PredictionRecord(**{**record_values(written), "id": got.id})
    assert page.next_cursor is None


async def test_listing_filters_and_pages_by_cursor(
    database: Database, service: PredictionService
) -> None:
    await insert(
        database,
        *[
            record(
                f"r{i}",
                version=1 + i % 2,
                variant="control" if i % 2 == 0 else "treatment",
                created_at=T0 + dt.timedelta(minutes=i),
            )
            for i in range(10)
        ],
        record("other", model="fraud"),
    )
    treatment = await service.list_predictions(model="churn", variant="treatment", limit=1000)
    assert [r.request_id for r in treatment.items] == ["r1", "r3", "r5", "r7", "r9"]
    v1 = await service.list_predictions(model="churn", version=1)
    assert {r.version for r in v1.items} == {1}
    window = await service.list_predictions(
        since=T0 + dt.timedelta(minutes=2), until=T0 + dt.timedelta(minutes=5)
    )
    assert [r.request_id for r in window.items] == ["r2", "r3", "r4"]
    seen, cursor = [], None
    while True:
        page = await service.list_predictions(model="churn", limit=3, cursor=cursor)
        seen += [r.request_id for r in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"r{i}" for i in range(10)]


async def test_a_replayed_record_is_refused_by_the_unique_key(database: Database) -> None:
    await insert(database, record("r1"))
    with pytest.raises(IntegrityError):
        await insert(database, record("r1"))
    # The same request on another version, or as a shadow copy, is another record.
    await insert(database, record("r1", version=2), record("r1", shadow=True, variant="shadow"))


async def test_feedback_last_write_wins_and_counts(
    database: Database, service: PredictionService
) -> None:
    await insert(database, record("r1"), record("r2", row=0), record("r2", row=1))
    first = await service.record_feedback(
        [
            Outcome(request_id="r1", label=0),
            Outcome(request_id="r2", row_index=1, conversion=True, value=3.5),
            Outcome(request_id="late", value=1.0),
        ]
    )
    assert (first.accepted, first.replaced, first.repeated_in_batch, first.unmatched) == (
        3,
        0,
        0,
        1,
    )
    second = await service.record_feedback(
        [Outcome(request_id="r1", label=0), Outcome(request_id="r1", label=1)]
    )
    assert (second.accepted, second.replaced, second.repeated_in_batch, second.unmatched) == (
        1,
        1,
        1,
        0,
    )
    labelled = {
        (item.record.request_id, item.record.row_index): item.outcome
        for item in await service.labelled("churn")
    }
    assert labelled[("r1", 0)] is not None
    assert labelled[("r1", 0)].label == 1
    assert labelled[("r1", 0)].writes == 2
    assert labelled[("r2", 0)] is None
    assert labelled[("r2", 1)] is not None
    assert (labelled[("r2", 1)].conversion, labelled[("r2", 1)].value) == (True, 3.5)
    # An outcome that came before its record joins once the record is shipped.
    await insert(database, record("late"))
    late = [i for i in await service.labelled("churn") if i.record.request_id == "late"]
    assert late[0].outcome is not None
    assert late[0].outcome.value == 1.0


async def test_labelled_filters_variant_and_leaves_out_shadows(
    database: Database, service: PredictionService
) -> None:
    await insert(
        database,
        record("a", variant="control"),
        record("b", variant="treatment", version=2),
        record("b", variant="shadow", version=3, shadow=True),
    )
    await service.record_feedback([Outcome(request_id="b", conversion=True)])
    treatment = await service.labelled("churn", variant="treatment")
    assert [(i.record.request_id, i.record.version) for i in treatment] == [("b", 2)]
    assert await service.labelled("churn", variant="shadow") == []
    shadows = await service.labelled("churn", variant="shadow", include_shadow=True)
    assert [i.outcome is not None for i in shadows] == [True]
    every = [item async for item in service.iter_labelled("churn")]
    assert len(every) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "limit"),
        ({"variant": "blue"}, "variant"),
        ({"version": 1}, "needs the model"),
        ({"since": T0, "until": T0}, "before until"),
        ({"cursor": -1}, "cursor"),
    ],
)
async def test_bad_queries_are_named(
    service: PredictionService, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        await service.list_predictions(**kwargs)  # type: ignore[arg-type]


async def test_an_outcome_without_a_value_is_refused(service: PredictionService) -> None:
    with pytest.raises(InvalidArgument, match="none of label, conversion, value"):
        await service.record_feedback([Outcome(request_id="r1")])
