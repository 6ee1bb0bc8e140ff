"""Core data models: JSON encode/decode round-trips (hypothesis) and input strictness."""

from __future__ import annotations

import datetime as dt
import enum
import types
from collections.abc import Callable
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard import models
from modelyard.enums import AlertType, ModelStage, ModelVariant, TriggerType
from modelyard.models import (
    DriftReport,
    Feature,
    FeatureRef,
    ModelCard,
    ModelLineage,
    Prediction,
    RegisteredModel,
    TensorSpec,
)

aware_datetimes = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,20}", fullmatch=True)


def _field_strategy(field_type: Any) -> st.SearchStrategy[Any]:
    """Values of one field, honouring msgspec constraints carried in ``Annotated``."""
    if get_origin(field_type) in (Union, types.UnionType):  # an optional constrained field
        return st.one_of(*(_field_strategy(arg) for arg in get_args(field_type)))
    if get_origin(field_type) is Annotated:
        base, *metas = get_args(field_type)
        meta = next(m for m in metas if isinstance(m, msgspec.Meta))
        if meta.pattern is not None:
            return names
        if meta.ge is not None and base is float:  # NOTE: FiniteFloat, a float within bounds
            return st.floats(min_value=meta.ge, max_value=meta.le, allow_nan=False)
        if meta.ge is not None:
            return st.integers(min_value=int(meta.ge), max_value=int(min(10**9, meta.le or 10**9)))
        return _field_strategy(base)
    return st.from_type(field_type)


def structs(struct_type: type[msgspec.Struct]) -> st.SearchStrategy[Any]:
    """Every field drawn explicitly (hypothesis cannot read msgspec defaults)."""
    fields = {f.name: _field_strategy(f.type) for f in msgspec.structs.fields(struct_type)}
    return st.builds(struct_type, **fields)


st.register_type_strategy(dt.datetime, aware_datetimes)
st.register_type_strategy(float, finite_floats)


def _deferred(struct: type[msgspec.Struct]) -> Callable[[], st.SearchStrategy[Any]]:
    """A zero-argument strategy factory for ``struct`` (bound now, built when first drawn)."""

    def build() -> st.SearchStrategy[Any]:
        return structs(struct)

    return build


for _struct in vars(models).values():
    if (
        isinstance(_struct, type)
        and issubclass(_struct, msgspec.Struct)
        and _struct.__module__ == models.__name__
    ):
        st.register_type_strategy(_struct, st.deferred(_deferred(_struct)))

ROUND_TRIP_TYPES = [
    Feature,
    FeatureRef,
    ModelCard,
    ModelLineage,
    RegisteredModel,
    Prediction,
    DriftReport,
    TensorSpec,
]


@pytest.mark.parametrize("struct_type", ROUND_TRIP_TYPES, ids=lambda t: t.__name__)
@given(data=st.data())
def test_json_round_trip(struct_type: type, data: st.DataObject) -> None:
    value = data.draw(structs(struct_type))
    encoded = msgspec.json.encode(value)
    assert msgspec.json.decode(encoded, type=struct_type) == value


@pytest.mark.parametrize("enum_type", [ModelStage, AlertType, TriggerType, ModelVariant])
def test_enums_encode_as_their_values(enum_type: type[enum.Enum]) -> None:
    for member in enum_type:
        assert msgspec.json.decode(msgspec.json.encode(member), type=enum_type) is member


def test_model_stage_values_match_the_lifecycle() -> None:
    assert [s.value for s in ModelStage] == ["None", "Staging", "Production", "Archived"]


def test_input_shapes_reject_unknown_fields() -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown field `verison`"):
        msgspec.json.decode(b'{"name": "age", "verison": 1}', type=FeatureRef)


@pytest.mark.parametrize(
    "bad_name", ["../x", "a/b", "", "x" * 200, "a b", ".hidden", "churn\n", "a\x00"]
)
def test_names_cannot_escape_a_folder(bad_name: str) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"name": bad_name, "version": 1}, FeatureRef)


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("code_version", "x" * 129, "code_version"),
        ("mlflow_run_id", "run\u0000", "mlflow_run_id"),
        ("training_dataset", {"uri": "u", "sha256": "a" * 65}, "training_dataset.sha256"),
        ("training_dataset", {"uri": "u\u0000", "sha256": "a"}, "training_dataset.uri"),
    ],
)
def test_lineage_text_fits_its_columns_on_both_databases(
    field: str, value: object, named: str
) -> None:
    """PostgreSQL's VARCHAR and TEXT refused these (a generic 422 there, stored on SQLite)."""
    lineage: dict[str, object] = {
        "mlflow_run_id": "r",
        "training_dataset": {"uri": "file:///d.csv", "sha256": "ab" * 32},
        "features": [],
        "code_version": "0" * 40,
    }
    msgspec.json.decode(msgspec.json.encode(lineage), type=models.ModelLineage)
    with pytest.raises(msgspec.ValidationError, match=named):
        msgspec.json.decode(
            msgspec.json.encode({**lineage, field: value}), type=models.ModelLineage
        )
