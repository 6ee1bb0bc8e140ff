"""Shaping a converter's raw graph into the modelyard convention, and stamping it.

:func:`apply_convention` renames the outputs to ``label``/``probabilities`` (classifiers; the
label is recomputed as the class of the largest probability, as ``predict`` does) or
``prediction`` (regressors, reshaped to ``[-1, 1]``), declares a symbolic batch dimension on
every input and output, and clears names that vary between runs. :func:`stamp` writes the
``metadata_props`` (sorted), adds the content hash and serializes deterministically, so the
same model and sample always give the same bytes. :func:`signature_of` reads the
:class:`~modelyard.models.ModelSignature` back from a graph.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from converters.kinds import CLASSIFICATION, TARGET_OPSET
from modelyard.errors import ModelyardError
from modelyard.models import ModelSignature, TensorSpec

if TYPE_CHECKING:
    from converters.kinds import ModelFacts

BATCH = "N"
CONTENT_HASH_KEY = "modelyard.content_hash"
_OIP: dict[int, str] = {
    TensorProto.FLOAT: "FP32",
    TensorProto.DOUBLE: "FP64",
    TensorProto.INT64: "INT64",
    TensorProto.INT32: "INT32",
    TensorProto.STRING: "BYTES",
    TensorProto.BOOL: "BOOL",
}


def apply_convention(
    model: onnx.ModelProto, facts: ModelFacts, input_names: tuple[str, ...]
) -> None:
    """Rename and reshape the inputs and outputs in place.

    Args:
        model: the converter's graph.
        facts: the model's task and classes.
        input_names: the input names, in the graph's input order (converters may respell
            them, e.g. skl2onnx turns spaces into ``_``; the convention keeps column names).

    Raises:
        ModelyardError: the converter produced an unexpected number of outputs or a ZipMap.
    """
    graph = model.graph
    if not any(o.domain in ("", "ai.onnx") for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("", TARGET_OPSET))
    if any(node.op_type == "ZipMap" for node in graph.node):
        raise ModelyardError("the converter produced a ZipMap despite zipmap=False")
    _float_outputs(graph)
    outputs = [o.name for o in graph.output]
    if facts.task == CLASSIFICATION:
        _expect(outputs, 2)
        _rename(graph, outputs[0], "converter_label")
        _rename(graph, outputs[1], "probabilities")
        _label_from_probabilities(graph, facts.class_labels)
    else:
        _expect(outputs, 1)
        _reshape_prediction(graph, outputs[0])
    if len(graph.input) != len(input_names):
        raise ModelyardError(f"the converter produced {len(graph.input)} inputs")
    for tensor, name in zip(list(graph.input), input_names, strict=True):
        _rename(graph, tensor.name, name)
    for tensor in graph.input:
        dims = tensor.type.tensor_type.shape.dim
        dims[0].ClearField("dim_value")
        dims[0].dim_param = BATCH
    graph.name = "modelyard"
    graph.doc_string = ""
    model.doc_string = ""
    del graph.value_info[:]


def _float_outputs(graph: onnx.GraphProto) -> None:
    """Cast DOUBLE scores to FP32: the outputs' rounding (<= 6e-8 relative) is within every
    tolerance, and one output type for every graph keeps clients simple."""
    for value in graph.output:
        tensor = value.type.tensor_type
        if tensor.elem_type != TensorProto.DOUBLE:
            continue
        inner = f"{value.name}__fp64"
        for node in graph.node:
            node.output[:] = [inner if name == value.name else name for name in node.output]
            node.input[:] = [inner if name == value.name else name for name in node.input]
        graph.node.append(helper.make_node("Cast", [inner], [value.name], to=TensorProto.FLOAT))
        tensor.elem_type = TensorProto.FLOAT


def stamp(model: onnx.ModelProto, metadata: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """Write the metadata and the content hash, then serialize deterministically.

    The content hash is the SHA-256 of the model serialized with every other metadata entry
    and without ``modelyard.content_hash`` itself.

    Args:
        model: the finished graph (its metadata_props are replaced).
        metadata: ``modelyard.*`` entries to write.

    Returns:
        The serialized model and the metadata as written (with the content hash).
    """
    model.producer_name = "modelyard.converters"
    # onnxmltools fills opset_import from a set: its order follows the string hash seed.
    opsets = sorted((o.domain, o.version) for o in model.opset_import)
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(domain, version) for domain, version in opsets)
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, dict(sorted(metadata.items())))
    unhashed = model.SerializeToString(deterministic=True)
    written = {**metadata, CONTENT_HASH_KEY: "sha256:" + hashlib.sha256(unhashed).hexdigest()}
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, dict(sorted(written.items())))
    return model.SerializeToString(deterministic=True), written


def signature_of(model: onnx.ModelProto, feature_names: tuple[str, ...]) -> ModelSignature:
    """The inputs and outputs of a graph in Open Inference Protocol terms.

    Args:
        model: a graph.
        feature_names: the column order of the model.

    Returns:
        Names, datatypes and shapes (``-1`` for symbolic dimensions).
    """
    return ModelSignature(
        inputs=tuple(_spec(v) for v in model.graph.input),
        outputs=tuple(_spec(v) for v in model.graph.output),
        feature_names=feature_names,
    )


def _spec(value: onnx.ValueInfoProto) -> TensorSpec:
    tensor = value.type.tensor_type
    shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
    return TensorSpec(name=value.name, datatype=_OIP.get(tensor.elem_type, "FP32"), shape=shape)


def _expect(outputs: list[str], count: int) -> None:
    if len(outputs) != count:
        raise ModelyardError(f"the converter produced outputs {outputs}, expected {count}")


def _rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    if old == new:
        return
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in [*graph.input, *graph.output]:
        if value.name == old:
            value.name = new


def _label_from_probabilities(graph: onnx.GraphProto, classes: tuple[str | int, ...]) -> None:
    """Make ``label`` the class of the largest probability (the first one on a tie).

    This is what ``predict`` does in scikit-learn, LightGBM and XGBoost; the converters'
    own label outputs can disagree with their probabilities (skl2onnx's binary
    HistGradientBoosting with a leaf-only tree labels every row 0 at p = 0.525).
    """
    strings = any(isinstance(c, str) for c in classes)
    values = (
        np.array([str(c) for c in classes], dtype=object)
        if strings
        else np.array(classes, dtype=np.int64)
    )
    graph.initializer.append(numpy_helper.from_array(values, "class_labels"))
    graph.node.extend(
        [
            helper.make_node(
                "ArgMax", ["probabilities"], ["label_index"], name="argmax", axis=1, keepdims=0
            ),
            helper.make_node(
                "Gather", ["class_labels", "label_index"], ["label"], name="to_label", axis=0
            ),
        ]
    )
    probabilities = next(o for o in graph.output if o.name == "probabilities")
    _set_shape(probabilities, [BATCH, len(classes)])
    del graph.output[:]
    label_type = TensorProto.STRING if strings else TensorProto.INT64
    graph.output.extend(
        [helper.make_tensor_value_info("label", label_type, [BATCH]), probabilities]
    )


def _reshape_prediction(graph: onnx.GraphProto, raw: str) -> None:
    """Route the regressor output through ``Reshape(-1, 1)`` into an FP32 ``prediction``."""
    internal = "raw_prediction"
    _rename(graph, raw, internal)
    graph.initializer.append(
        numpy_helper.from_array(np.array([-1, 1], dtype=np.int64), "prediction_shape")
    )
    graph.node.append(
        helper.make_node(
            "Reshape", [internal, "prediction_shape"], ["prediction"], name="to_prediction"
        )
    )
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("prediction", TensorProto.FLOAT, [BATCH, 1]))


def _set_shape(value: onnx.ValueInfoProto, dims: list[str | int]) -> None:
    shape = value.type.tensor_type.shape
    del shape.dim[:]
    for dim in dims:
        entry = shape.dim.add()
        if isinstance(dim, str):
            entry.dim_param = dim
        else:
            entry.dim_value = dim
