"""The naive contender: FastAPI on uvicorn calling native LightGBM ``predict`` per request.

This is what a straightforward implementation of "serve the model over HTTP" looks like:
pydantic parses the V2 JSON body, numpy builds the row, the LightGBM booster predicts (one
thread), and the answer goes back as V2 JSON.

Run: ``python -m benchmarks.naive --model-file reference.txt --port-file FILE``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

from benchmarks.httpserve import serve_asgi


class InputTensor(BaseModel):
    """One V2 input tensor with flat data."""

    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class InferenceRequest(BaseModel):
    """The V2 inference request body."""

    inputs: list[InputTensor]


def make_app(model_file: Path, model_name: str) -> FastAPI:
    """Build the FastAPI app around a native LightGBM booster."""
    import lightgbm as lgb

    booster = lgb.Booster(model_file=str(model_file))
    app = FastAPI()

    @app.get("/v2/health/ready")
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    @app.post("/v2/models/{model}/infer")
    async def infer(model: str, request: InferenceRequest) -> dict[str, Any]:
        tensor = request.inputs[0]
        rows = np.asarray(tensor.data, dtype=np.float32).reshape(tensor.shape)
        p = np.asarray(booster.predict(rows, num_threads=1), dtype=np.float64)
        probabilities = np.stack([1.0 - p, p], axis=1)
        return {
            "model_name": model_name,
            "model_version": "1",
            "outputs": [
                {
                    "name": "label",
                    "datatype": "INT64",
                    "shape": [len(p)],
                    "data": (p > 0.5).astype(int).tolist(),
                },
                {
                    "name": "probabilities",
                    "datatype": "FP32",
                    "shape": [len(p), 2],
                    "data": probabilities.ravel().tolist(),
                },
            ],
        }

    return app


def main() -> None:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-file", type=Path, required=True)
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--model", default="reference")
    args = parser.parse_args()
    serve_asgi(make_app(args.model_file, args.model), args.port_file)


if __name__ == "__main__":
    main()
