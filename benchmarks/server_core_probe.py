"""A small gRPC probe the server-core engineer uses while developing (not the harness).

Starts either modelyard's server (``python -m inference_server``) or a bare grpc.aio echo
server (parses the request, answers a prebuilt response of the model's shape) pinned to CPU 0,
and drives it from this process pinned to CPU 1 with a closed-loop asyncio grpc.aio client on
uvloop: ``c`` coroutines each send a pre-serialized raw single-row ModelInferRequest and await
the answer. Prints req/s, p50 and p99 per target, and the ratio server/echo.

Run: ``python benchmarks/server_core_probe.py --onnx MODEL.onnx --rows ROWS.npy -c 64 -d 5``
(``--batching off`` to switch the micro-batcher off; ``--rows-per-request 512`` for big ones).
The lead's harness (branch ``bench``) is the measurement of record.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference_server.grpc._generated import grpc_service_pb2 as pb  # noqa: E402

METHOD = "/inference.GRPCInferenceService/ModelInfer"


def _request(rows: np.ndarray) -> bytes:
    tensor = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=rows.shape)
    msg = pb.ModelInferRequest(
        model_name="reference", inputs=[tensor], raw_input_contents=[rows.tobytes()]
    )
    return msg.SerializeToString()


async def _echo(port_file: Path) -> None:
    cache: dict[int, pb.ModelInferResponse] = {}

    async def infer(data: bytes, context: object) -> pb.ModelInferResponse:
        req = pb.ModelInferRequest.FromString(data)
        n = int(req.inputs[0].shape[0])
        resp = cache.get(n)
        if resp is None:
            out = pb.ModelInferResponse.InferOutputTensor
            resp = cache[n] = pb.ModelInferResponse(
                model_name="reference",
                model_version="1",
                outputs=[
                    out(name="label", datatype="INT64", shape=[n]),
                    out(name="probabilities", datatype="FP32", shape=[n, 2]),
                ],
                raw_output_contents=[bytes(8 * n), bytes(8 * n)],
            )
        return resp

    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(
        infer, response_serializer=pb.ModelInferResponse.SerializeToString
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "inference.GRPCInferenceService", {"ModelInfer": handler}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    port_file.write_text(str(port))  # noqa: ASYNC240 - once, before serving
    await server.wait_for_termination()


async def _load(port: int, payload: bytes, concurrency: int, duration: float) -> dict[str, float]:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    call = channel.unary_unary(METHOD)
    for _ in range(20):
        await call(payload)
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal errors
        while (start := time.perf_counter()) < deadline:
            try:
                await call(payload)
            except grpc.aio.AioRpcError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    await channel.close()
    ms = np.array(latencies) * 1000
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "errors": errors,
    }


def _start(cmd: list[str], port_of: callable) -> tuple[subprocess.Popen[bytes], int]:  # type: ignore[valid-type]
    proc = subprocess.Popen(["taskset", "-c", "0", *cmd], stdout=subprocess.PIPE)
    return proc, port_of(proc)


def _server_cmd(repo: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "inference_server",
        "--model-repository",
        str(repo),
        "--grpc-port",
        "0",
        "--http-port",
        "-1",
        "--metrics-port",
        "-1",
        "--workers",
        "1",
        "--log-level",
        "warning",
    ]


def main() -> None:
    """Parse arguments, run the echo and the server points, print JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", type=Path)
    parser.add_argument("--rows", type=Path)
    parser.add_argument("-c", "--concurrency", type=int, default=64)
    parser.add_argument("-d", "--duration", type=float, default=5.0)
    parser.add_argument("--rows-per-request", type=int, default=1)
    parser.add_argument("--batching", choices=["on", "off"], default="on")
    parser.add_argument("--targets", default="echo,server")
    parser.add_argument("--serve-echo", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_echo:
        uvloop.run(_echo(args.serve_echo))
        return
    os.sched_setaffinity(0, {1})
    rows = np.load(args.rows).astype("<f4")[: args.rows_per_request]
    payload = _request(np.ascontiguousarray(rows))
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        (repo / "reference" / "1").mkdir(parents=True)
        shutil.copyfile(args.onnx, repo / "reference" / "1" / "model.onnx")
        config = {"batching": {"enabled": args.batching == "on"}}
        (repo / "reference" / "config.json").write_text(json.dumps(config))
        results = {}
        for target in args.targets.split(","):
            if target == "echo":
                port_file = Path(tmp) / "echo.port"
                proc = subprocess.Popen(
                    ["taskset", "-c", "0", sys.executable, __file__, "--serve-echo", str(port_file)]
                )
                while not port_file.exists() or not port_file.read_text():
                    time.sleep(0.05)
                port = int(port_file.read_text())
            else:
                proc = subprocess.Popen(
                    ["taskset", "-c", "0", *_server_cmd(repo)], stdout=subprocess.PIPE, cwd=ROOT
                )
                assert proc.stdout is not None
                port = json.loads(proc.stdout.readline())["grpc_port"]
            try:
                results[target] = uvloop.run(_load(port, payload, args.concurrency, args.duration))
            finally:
                proc.terminate()
                proc.wait()
            print(
                json.dumps(
                    {
                        "target": target,
                        "c": args.concurrency,
                        "rows": args.rows_per_request,
                        "batching": args.batching,
                        **results[target],
                    }
                ),
                flush=True,
            )
        if "echo" in results and "server" in results:
            print(
                json.dumps(
                    {"ratio_server_over_echo": results["server"]["rps"] / results["echo"]["rps"]}
                )
            )


if __name__ == "__main__":
    main()
