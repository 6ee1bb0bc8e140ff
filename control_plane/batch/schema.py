"""What a model expects of its input, read from its ONNX metadata, and the check of a table.

The converters stamp every model with its input layout, feature names and types, task and
classes (``docs/model-conventions.md``); a batch job checks each input file's schema against
them before scoring a row, and names every missing or mistyped column at once.

>>> info = ModelInfo(layout="matrix", feature_names=("a", "b"), feature_types=("FP32", "FP32"),
...     task="classification", class_labels=("0", "1"), input_names=("input",))
>>> schema_problems(info, pa.schema([("a", pa.float64()), ("b", pa.string())]), ())
["column 'b' is string, the model expects FP32"]
>>> schema_problems(info, pa.schema([("a", pa.int32())]), ("id",))
["missing column 'b'", "missing column 'id'"]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import msgspec
import onnxruntime as ort
import pyarrow as pa

from modelyard.errors import InvalidArgument


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """The input and output conventions of one converted model.

    Attributes:
        layout: ``matrix`` (one FP32 ``input``) or ``per_column`` (one input per column).
        feature_names: the columns the model reads, in its order.
        feature_types: their OIP types (``FP32``, ``INT64``, ``BYTES``).
        task: ``classification`` or ``regression``.
        class_labels: probability-column order (classifiers).
        input_names: the graph's input names.
        input_types: the graph's input element types (``tensor(float)``, ``tensor(double)``,
            ...): double-precision graphs take float64 (``docs/model-conventions.md``).
    """

    layout: str
    feature_names: tuple[str, ...]
    feature_types: tuple[str, ...]
    task: str
    class_labels: tuple[str, ...]
    input_names: tuple[str, ...]
    input_types: tuple[str, ...] = ()


def model_info(session: ort.InferenceSession) -> ModelInfo:
    """The conventions of the model loaded in ``session``.

    Raises:
        InvalidArgument: the model lacks the converters' metadata (feature names).
    """
    props = session.get_modelmeta().custom_metadata_map
    try:
        names = tuple(str(n) for n in msgspec.json.decode(props["modelyard.feature_names"]))
        types = tuple(str(t) for t in msgspec.json.decode(props["modelyard.feature_types"]))
        classes = tuple(
            str(c) for c in msgspec.json.decode(props.get("modelyard.class_labels", "[]"))
        )
    except (KeyError, msgspec.DecodeError):
        raise InvalidArgument(
            "the model carries no feature metadata (convert it with modelyard convert)"
        ) from None
    return ModelInfo(
        layout=props.get("modelyard.input_layout", "matrix"),
        feature_names=names,
        feature_types=types,
        task=props.get("modelyard.task", "classification"),
        class_labels=classes,
        input_names=tuple(i.name for i in session.get_inputs()),
        input_types=tuple(str(i.type) for i in session.get_inputs()),
    )


def _fits(datatype: str, arrow_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if datatype == "BYTES":
        return bool(pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type))
    if datatype == "INT64":
        return bool(pa.types.is_integer(arrow_type) or pa.types.is_boolean(arrow_type))
    return bool(
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_boolean(arrow_type)
        or pa.types.is_null(arrow_type)
    )


def schema_problems(info: ModelInfo, schema: pa.Schema, extra: Sequence[str]) -> list[str]:
    """Every way ``schema`` does not fit the model (missing, repeated and mistyped columns)."""
    problems: list[str] = []
    for name, datatype in zip(info.feature_names, info.feature_types, strict=True):
        index = schema.get_field_index(name)
        if index < 0 and len(schema.get_all_field_indices(name)) > 1:
            # NOTE: get_field_index answers -1 for a repeated name too ("missing" misled)
            problems.append(f"column {name!r} appears more than once")
        elif index < 0:
            problems.append(f"missing column {name!r}")
        elif not _fits(datatype, schema.field(index).type):
            problems.append(
                f"column {name!r} is {schema.field(index).type}, the model expects {datatype}"
            )
    problems += [
        f"column {name!r} appears more than once"
        if len(schema.get_all_field_indices(name)) > 1
        else f"missing column {name!r}"
        for name in extra
        if name not in info.feature_names and schema.get_field_index(name) < 0
    ]
    return problems


def result_columns(info: ModelInfo) -> set[str]:
    """The columns the job writes beside the kept ones (:class:`~control_plane.batch.scoring.
    ChunkScorer`; ``error`` in errors files): a kept column of one of these names would be
    overwritten."""
    if info.task == "classification":
        names = {"label", *(f"probability_{cls}" for cls in info.class_labels)}
    else:
        names = {"prediction"}
    return names | {"model", "model_version", "error"}


def check_schema(info: ModelInfo, schema: pa.Schema, extra: Sequence[str], source: str) -> None:
    """Refuse ``schema`` when it does not fit the model.

    Raises:
        InvalidArgument: naming the file and every missing or mistyped column.
    """
    problems = schema_problems(info, schema, extra)
    if problems:
        raise InvalidArgument(f"input {source} does not fit the model: {'; '.join(problems)}")


__all__ = [
    "ModelInfo",
    "check_schema",
    "model_info",
    "result_columns",
    "schema_problems",
]
