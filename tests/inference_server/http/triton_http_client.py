"""Drive a running server with tritonclient.http, in the clients venv (``.venv-clients``).

Usage: ``triton_http_client.py PORT``. Prints one JSON object with what the client saw; the
test in ``test_tritonclient.py`` checks it. tritonclient is imported inside ``main`` so pytest's
doctest collection (in our venv, without tritonclient) can import this module.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

X = np.random.default_rng(11).normal(size=(5, 4)).astype(np.float32)


def main(port: int) -> dict[str, Any]:
    """Exercise health, metadata, infer (binary and JSON), repository; return the findings."""
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    client = httpclient.InferenceServerClient(f"127.0.0.1:{port}")
    seen: dict[str, Any] = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready("clf"),
        "version_ready": client.is_model_ready("clf", "2"),
        "server_metadata": client.get_server_metadata(),
        "model_metadata": client.get_model_metadata("clf"),
        "model_config": client.get_model_config("clf"),
    }
    binary_in = httpclient.InferInput("input", list(X.shape), "FP32")
    binary_in.set_data_from_numpy(X)  # binary_data=True: the binary tensor extension
    result = client.infer("clf", [binary_in], request_id="b1")  # outputs: binary by default
    seen["binary"] = {
        "version": result.get_response()["model_version"],
        "id": result.get_response()["id"],
        "probabilities": result.as_numpy("probabilities").tolist(),
        "label": result.as_numpy("label").tolist(),
    }
    json_in = httpclient.InferInput("input", list(X.shape), "FP32")
    json_in.set_data_from_numpy(X, binary_data=False)
    outputs = [
        httpclient.InferRequestedOutput("probabilities", binary_data=False),
        httpclient.InferRequestedOutput("label", binary_data=True),
    ]
    result = client.infer("clf", [json_in], model_version="2", outputs=outputs)
    seen["json"] = {
        "version": result.get_response()["model_version"],
        "probabilities": result.as_numpy("probabilities").tolist(),
        "label": result.as_numpy("label").tolist(),
    }
    one = httpclient.InferInput("input", [1, 4], "FP32")
    one.set_data_from_numpy(X[:1])
    seen["single_row"] = client.infer("clf", [one]).as_numpy("probabilities").tolist()
    seen["compressed"] = [
        client.infer("clf", [one], request_compression_algorithm=algorithm)
        .as_numpy("probabilities")
        .tolist()
        for algorithm in ("gzip", "deflate")
    ]
    try:
        client.infer("nope", [one])
    except InferenceServerException as exc:
        seen["unknown_model_error"] = [exc.status(), exc.message()]
    seen["index"] = client.get_model_repository_index()
    client.unload_model("clf")
    seen["ready_after_unload"] = client.is_model_ready("clf")
    client.load_model("clf")
    seen["ready_after_load"] = client.is_model_ready("clf")
    seen["statistics"] = client.get_inference_statistics("clf")
    client.close()
    return seen


if __name__ == "__main__":
    json.dump(main(int(sys.argv[1])), sys.stdout)
