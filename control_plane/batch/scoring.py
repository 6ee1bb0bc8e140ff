"""Score one chunk of rows: the per-partition function of the worker processes and of Dask.

:class:`ChunkScorer` holds one onnxruntime session (``intra_op_num_threads`` chosen by the
caller so that processes x threads never exceed the cores) and turns an Arrow table of input
rows into the result table -- id and carry-through columns, ``label`` and one
``probability_<class>`` column per class (classifiers) or ``prediction`` (regressors), then
``model`` and ``model_version`` -- plus the table of rows it could not score, each with its
reason. A row is bad when one of the model's columns is null, or when onnxruntime refuses it
(found by scoring a refused chunk row by row). Under the ``fail`` policy a bad row raises
:class:`BadRows` naming the first reason.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.compute as pc

from control_plane.batch.models import BadRowPolicy
from control_plane.batch.schema import ModelInfo, model_info
from modelyard.errors import InvalidArgument

_NUMPY = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "BYTES": object}
_ONNX_FLOATS = {"tensor(double)": np.float64}


class BadRows(InvalidArgument):
    """Rows the model cannot score, under the ``fail`` policy."""


@dataclasses.dataclass(frozen=True)
class ScoredChunk:
    """The results of one chunk and the rows that could not be scored (or None)."""

    results: pa.Table
    errors: pa.Table | None


class ChunkScorer:
    """One onnxruntime session and the conventions to score chunks with it.

    Args:
        onnx: the model's bytes.
        model: model name written into every result row.
        version: model version written into every result row.
        keep_columns: id and carry-through columns copied to the output.
        bad_rows: what a row the model cannot score does.
        threads: onnxruntime intra-op threads of this session.
    """

    def __init__(
        self,
        onnx: bytes,
        *,
        model: str,
        version: int,
        keep_columns: Sequence[str] = (),
        bad_rows: BadRowPolicy = BadRowPolicy.FAIL,
        threads: int = 1,
    ) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            onnx, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.info: ModelInfo = model_info(self.session)
        self.model = model
        self.version = version
        self.keep_columns = tuple(dict.fromkeys(keep_columns))
        self.bad_rows = bad_rows
        self._outputs = [o.name for o in self.session.get_outputs()]
        self._dtypes = _feature_dtypes(self.info)
        """The numpy type each feature is fed as (:meth:`_feeds`)."""

    def score(self, table: pa.Table, *, where: str = "chunk") -> ScoredChunk:
        """Score ``table``; ``where`` names the chunk in error messages.

        Raises:
            BadRows: a row cannot be scored and the policy is ``fail``.
        """
        reasons = self._null_reasons(table, where)
        try:
            outputs = self._run(table, reasons)
        except (ort.capi.onnxruntime_pybind11_state.RuntimeException, ValueError) as error:
            self._refuse(where, f"the model refused the chunk: {error}")
            reasons = self._row_by_row(table, reasons)
            outputs = self._run(table, reasons)
        good = np.array([r is None for r in reasons], dtype=bool)
        results = self._results(table.filter(pa.array(good)) if not good.all() else table, outputs)
        errors = None
        if not good.all():
            bad = pa.array(~good)
            columns = {name: table.column(name).filter(bad) for name in self.keep_columns}
            columns["error"] = pa.array([r for r in reasons if r is not None], pa.string())
            errors = pa.table(columns)
        return ScoredChunk(results=results, errors=errors)

    def _refuse(self, where: str, reason: str) -> None:
        if self.bad_rows is BadRowPolicy.FAIL:
            raise BadRows(f"{where}: {reason}")

    def _null_reasons(self, table: pa.Table, where: str) -> list[str | None]:
        reasons: list[str | None] = [None] * table.num_rows
        for name in self.info.feature_names:
            column = table.column(name)
            self._overflow_reasons(name, column, where, reasons)
            if column.null_count == 0:
                continue
            self._refuse(where, f"column {name!r} has a missing value")
            for index in np.flatnonzero(pc.is_null(column).to_numpy(zero_copy_only=False)):
                reasons[index] = reasons[index] or f"missing value in column {name!r}"
        return reasons

    def _overflow_reasons(
        self, name: str, column: pa.ChunkedArray, where: str, reasons: list[str | None]
    ) -> None:
        """Rows whose finite value becomes infinite when fed as FP32 (1e308 was scored as
        infinity, the row counted good)."""
        if self._dtypes[name] is not np.float32 or not pa.types.is_float64(column.type):
            return
        values = column.to_numpy()  # NOTE: nulls are NaN: neither finite nor beyond
        beyond = np.isfinite(values) & (np.abs(values) > np.finfo(np.float32).max)
        if not beyond.any():
            return
        self._refuse(where, f"column {name!r} has a value beyond FP32's range")
        for index in np.flatnonzero(beyond):
            reasons[index] = reasons[index] or f"value beyond FP32's range in column {name!r}"

    def _row_by_row(self, table: pa.Table, reasons: list[str | None]) -> list[str | None]:
        """Find the rows onnxruntime refuses, by scoring the good rows one at a time."""
        reasons = list(reasons)
        for index, reason in enumerate(reasons):
            if reason is not None:
                continue
            try:
                self.session.run(self._outputs, self._feeds(table.slice(index, 1)))
            except (ort.capi.onnxruntime_pybind11_state.RuntimeException, ValueError) as error:
                reasons[index] = f"the model refused the row: {error}"
        return reasons

    def _run(self, table: pa.Table, reasons: list[str | None]) -> list[np.ndarray]:
        good = [r is None for r in reasons]
        if not all(good):
            table = table.filter(pa.array(good))
        if table.num_rows == 0:
            return []
        result: list[np.ndarray] = self.session.run(self._outputs, self._feeds(table))
        return result

    def _feeds(self, table: pa.Table) -> dict[str, np.ndarray]:
        info = self.info
        if info.layout == "per_column":
            return {
                name: _column(table, name, self._dtypes[name]).reshape(-1, 1)
                for name in info.feature_names
            }
        dtype = self._dtypes[info.feature_names[0]] if info.feature_names else np.float32
        matrix = np.empty((table.num_rows, len(info.feature_names)), dtype=dtype)
        for index, name in enumerate(info.feature_names):
            matrix[:, index] = _column(table, name, dtype)
        return {info.input_names[0]: matrix}

    def _results(self, table: pa.Table, outputs: list[np.ndarray]) -> pa.Table:
        columns: dict[str, pa.Array | pa.ChunkedArray] = {
            name: table.column(name) for name in self.keep_columns
        }
        n = table.num_rows
        named = dict(zip(self._outputs, outputs, strict=False)) if outputs else {}
        if self.info.task == "classification":
            label = named.get("label", np.empty(0, dtype=np.int64))
            columns["label"] = pa.array(label.reshape(-1) if n else [], _label_type(label))
            probabilities = named.get("probabilities", np.empty((0, len(self.info.class_labels))))
            for index, cls in enumerate(self.info.class_labels):
                values = probabilities[:, index] if n else np.empty(0, np.float32)
                columns[f"probability_{cls}"] = pa.array(values, pa.float32())
        else:
            values = named.get("prediction", np.empty((0, 1), np.float32)).reshape(-1)
            columns["prediction"] = pa.array(values if n else [], pa.float32())
        columns["model"] = pa.array([self.model] * n, pa.string())
        columns["model_version"] = pa.array(np.full(n, self.version, dtype=np.int64))
        return pa.table(columns)


def _label_type(label: np.ndarray) -> pa.DataType:
    return pa.string() if label.dtype == object else pa.int64()


def _dtype(kind: str, onnx_type: str | None) -> type:
    """The numpy type to feed: the graph's own element type decides for floats."""
    if onnx_type in _ONNX_FLOATS:
        return _ONNX_FLOATS[onnx_type]
    return _NUMPY.get(kind, np.float32)


def _feature_dtypes(info: ModelInfo) -> dict[str, type]:
    """The numpy type each feature is fed as: per column by its kind and its input's ONNX
    type; one matrix by the graph's input type (a double-precision graph takes float64 as it
    is, never rounded through FP32)."""
    if info.layout == "per_column":
        onnx_types = dict(zip(info.input_names, info.input_types, strict=False))
        return {
            name: _dtype(kind, onnx_types.get(name))
            for name, kind in zip(info.feature_names, info.feature_types, strict=True)
        }
    dtype = _ONNX_FLOATS.get(info.input_types[0], np.float32) if info.input_types else np.float32
    return dict.fromkeys(info.feature_names, dtype)


def _column(table: pa.Table, name: str, dtype: type) -> np.ndarray:
    column = table.column(name)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    values = column.to_numpy()
    return np.asarray(values, dtype=dtype)


@functools.cache
def cached_scorer(
    onnx: bytes, model: str, version: int, keep_columns: tuple[str, ...], bad_rows: str
) -> ChunkScorer:
    """One scorer per process and model (Dask workers score many partitions with it)."""
    return ChunkScorer(
        onnx,
        model=model,
        version=version,
        keep_columns=keep_columns,
        bad_rows=BadRowPolicy(bad_rows),
        threads=1,
    )


__all__ = ["BadRows", "ChunkScorer", "ScoredChunk", "cached_scorer"]
