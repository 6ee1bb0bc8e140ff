"""Drive an FP64 model with tritonclient (run in the tritonclient virtualenv).

Usage: ``python tritonclient_fp64_check.py CASE.json``; CASE holds the gRPC/HTTP URLs, the
model name, float64 rows and the probabilities the native model gives for them. Both clients
send FP64 tensors (gRPC raw, HTTP binary and JSON); exits non-zero on the first mismatch.
Only the standard library is imported at module level (pytest's doctest collection imports
this file in the server's virtualenv, which has no tritonclient).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def check(module: Any, url: str, case: dict[str, Any], *, binary: bool) -> None:
    """Metadata says FP64; an FP64 request answers the native probabilities."""
    import numpy as np

    client = module.InferenceServerClient(url)
    name = case["model"]
    http = module.__name__.endswith("http")
    meta = (
        client.get_model_metadata(name) if http else client.get_model_metadata(name, as_json=True)
    )
    assert meta["inputs"][0]["datatype"] == "FP64", meta
    x = np.array(case["x"], dtype=np.float64)
    expected = np.array(case["probabilities"])
    tensor = module.InferInput("input", list(x.shape), "FP64")
    if http:
        tensor.set_data_from_numpy(x, binary_data=binary)
    else:
        tensor.set_data_from_numpy(x)
    result = client.infer(name, [tensor])
    got = result.as_numpy("probabilities").astype(np.float64)
    assert np.abs(got - expected).max() <= 1e-5, (got, expected)


def main() -> None:
    """Run the checks of CASE.json (argv[1])."""
    import tritonclient.grpc as grpc_client
    import tritonclient.http as http_client

    case = json.loads(Path(sys.argv[1]).read_text())
    check(grpc_client, case["grpc_url"], case, binary=True)
    check(http_client, case["http_url"], case, binary=True)
    check(http_client, case["http_url"], case, binary=False)
    print("ok")


if __name__ == "__main__":
    main()
