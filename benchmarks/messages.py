"""Request and response payloads shared by the load generators and the echo servers.

Every contender receives the same Open Inference Protocol request: one tensor named ``input``,
FP32, shape ``[rows, 32]``. Over gRPC it travels as ``raw_input_contents`` (little-endian,
row-major); over HTTP as V2 JSON with flat ``data``. Payloads are serialized once per load
generator run, so the client spends its CPU on the transport, not on encoding.
"""

from __future__ import annotations

import json

import numpy as np

from inference_server.grpc._generated import grpc_service_pb2 as pb

INPUT_NAME = "input"
INFER_METHOD = "/inference.GRPCInferenceService/ModelInfer"
STREAM_METHOD = "/inference.GRPCInferenceService/ModelStreamInfer"


def is_stream_error(message: bytes) -> bool:
    """Whether a serialized ModelStreamInferResponse carries an ``error_message``.

    Proto3 omits an empty string, so a success starts with field 2 (tag 0x12) and an error
    with field 1 (tag 0x0a): no parsing needed on the hot path.

    >>> ok = pb.ModelStreamInferResponse(infer_response=pb.ModelInferResponse(id="1"))
    >>> bad = pb.ModelStreamInferResponse(error_message="boom")
    >>> is_stream_error(ok.SerializeToString()), is_stream_error(bad.SerializeToString())
    (False, True)
    """
    return message[:1] == b"\n"


def grpc_infer_request(rows: np.ndarray, model: str) -> bytes:
    """Serialize a ModelInferRequest carrying ``rows`` as a raw FP32 tensor.

    Args:
        rows: float32 array of shape [n, features].
        model: the model name.

    Returns:
        The serialized request.

    >>> data = grpc_infer_request(np.zeros((2, 3), dtype=np.float32), "m")
    >>> msg = pb.ModelInferRequest.FromString(data)
    >>> (msg.model_name, list(msg.inputs[0].shape), len(msg.raw_input_contents[0]))
    ('m', [2, 3], 24)
    """
    request = pb.ModelInferRequest(model_name=model)
    tensor = request.inputs.add(name=INPUT_NAME, datatype="FP32")
    tensor.shape.extend(rows.shape)
    request.raw_input_contents.append(np.ascontiguousarray(rows, dtype="<f4").tobytes())
    return request.SerializeToString()


def http_infer_body(rows: np.ndarray) -> bytes:
    """Encode ``rows`` as a V2 JSON inference request body.

    >>> http_infer_body(np.ones((1, 2), dtype=np.float32))
    b'{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1.0,1.0]}]}'
    """
    tensor = {
        "name": INPUT_NAME,
        "shape": list(rows.shape),
        "datatype": "FP32",
        "data": [float(v) for v in rows.ravel()],
    }
    return json.dumps({"inputs": [tensor]}, separators=(",", ":")).encode()


def predict_body(row: np.ndarray) -> bytes:
    """Encode one row for modelyard's simple ``POST /predict`` (a list of feature values)."""
    return json.dumps([float(v) for v in row.ravel()], separators=(",", ":")).encode()


def echo_response(n_rows: int, model: str) -> pb.ModelInferResponse:
    """The response the echo server returns: a label and two probabilities per row, raw."""
    response = pb.ModelInferResponse(model_name=model, model_version="1")
    label = response.outputs.add(name="label", datatype="INT64")
    label.shape.append(n_rows)
    probabilities = response.outputs.add(name="probabilities", datatype="FP32")
    probabilities.shape.extend([n_rows, 2])
    response.raw_output_contents.append(np.zeros(n_rows, dtype="<i8").tobytes())
    response.raw_output_contents.append(np.full((n_rows, 2), 0.5, dtype="<f4").tobytes())
    return response


def echo_json_response(model: str) -> bytes:
    """The V2 JSON answer of the HTTP echo: what a one-row reply of the model looks like."""
    body = {
        "model_name": model,
        "model_version": "1",
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [1], "data": [1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [1, 2], "data": [0.25, 0.75]},
        ],
    }
    return json.dumps(body, separators=(",", ":")).encode()
