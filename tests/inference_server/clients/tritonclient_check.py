"""Drive a running modelyard server with tritonclient (run in the tritonclient virtualenv).

Usage: ``python tritonclient_check.py CASE.json``; CASE holds the gRPC/HTTP URLs, the input
rows and the probabilities the model must answer. Exits non-zero with a message on the first
mismatch. Only the standard library is imported at module level, so pytest's doctest
collection can import this file in the server's virtualenv without tritonclient.
"""

from __future__ import annotations

import json
import queue
import sys
from typing import Any


def check_grpc(url: str, case: dict[str, Any]) -> None:
    """Health, metadata, config, raw inference (single and batch), errors, stream, control."""
    import numpy as np
    import tritonclient.grpc as tc
    from tritonclient.utils import InferenceServerException

    client = tc.InferenceServerClient(url)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("clf")
    meta = client.get_model_metadata("clf", as_json=True)
    assert meta["versions"] == ["1"], meta
    config = client.get_model_config("clf", as_json=True)["config"]
    assert int(config["max_batch_size"]) == 64, config
    x = np.array(case["x"], dtype=np.float32)
    expected = np.array(case["probabilities"], dtype=np.float32)
    for rows in (1, len(x)):
        inp = tc.InferInput("input", [rows, x.shape[1]], "FP32")
        inp.set_data_from_numpy(x[:rows])
        outputs = [tc.InferRequestedOutput("probabilities"), tc.InferRequestedOutput("label")]
        result = client.infer("clf", [inp], outputs=outputs, request_id=f"r{rows}")
        np.testing.assert_allclose(result.as_numpy("probabilities"), expected[:rows], rtol=1e-5)
        assert result.as_numpy("label").shape == (rows,)
        response = result.get_response(as_json=True)
        assert response["id"] == f"r{rows}", response
        assert response["model_version"] == "1", response
    bad = tc.InferInput("input", [1, 3], "FP32")
    bad.set_data_from_numpy(np.zeros((1, 3), np.float32))
    error = None
    try:
        client.infer("clf", [bad])
    except InferenceServerException as exc:
        error = exc
    assert error is not None, "a wrong feature count was accepted"
    assert "INVALID_ARGUMENT" in str(error.status()), error
    assert "features" in error.message(), error
    check_stream(client, tc, x, expected)
    index = client.get_model_repository_index(as_json=True)
    assert index["models"][0]["state"] == "READY", index
    stats = client.get_inference_statistics("clf", as_json=True)
    assert int(stats["model_stats"][0]["inference_count"]) >= 1 + len(x), stats
    client.unload_model("clf")
    assert not client.is_model_ready("clf") if _known(client) else True
    client.load_model("clf")
    assert client.is_model_ready("clf")


def _known(client: Any) -> bool:
    try:
        client.is_model_ready("clf")
    except Exception:  # an unloaded model may be reported as unknown
        return False
    return True


def check_stream(client: Any, tc: Any, x: Any, expected: Any) -> None:
    """Send every row on one bidirectional stream; answers come back with their ids."""
    import numpy as np

    answers: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client.start_stream(callback=lambda result, error: answers.put((result, error)))
    for i in range(len(x)):
        inp = tc.InferInput("input", [1, x.shape[1]], "FP32")
        inp.set_data_from_numpy(x[i : i + 1])
        client.async_stream_infer("clf", [inp], request_id=str(i))
    got = {}
    for _ in range(len(x)):
        result, error = answers.get(timeout=30)
        assert error is None, error
        got[result.get_response().id] = result.as_numpy("probabilities")
    client.stop_stream()
    for i in range(len(x)):
        np.testing.assert_allclose(got[str(i)], expected[i : i + 1], rtol=1e-5)


def check_http(url: str, case: dict[str, Any]) -> None:
    """Health, metadata and binary-tensor inference over HTTP."""
    import numpy as np
    import tritonclient.http as tc

    client = tc.InferenceServerClient(url)
    assert client.is_server_live()
    assert client.is_model_ready("clf")
    x = np.array(case["x"], dtype=np.float32)
    inp = tc.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=True)
    result = client.infer("clf", [inp], outputs=[tc.InferRequestedOutput("probabilities")])
    np.testing.assert_allclose(result.as_numpy("probabilities"), case["probabilities"], rtol=1e-5)


def main() -> int:
    """Run the checks named in the case file."""
    case = json.loads(open(sys.argv[1]).read())  # noqa: SIM115 - a tiny script
    check_grpc(case["grpc_url"], case)
    if case.get("http_url"):
        check_http(case["http_url"], case)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
