"""Serving benchmark harness and SLA load tests.

The harness (``python -m benchmarks run``) starts each contender in its own process pinned to
CPU 0, drives it from a load generator pinned to CPU 1, and records closed-loop and open-loop
points (throughput and latency percentiles) per contender. Contenders are the in-process
onnxruntime limit, modelyard, Seldon MLServer, bare gRPC/ASGI echo servers and a naive
FastAPI + LightGBM server, all serving the same reference model (`benchmarks.reference`).

Layout: ``reference`` builds the model files, ``messages`` the request payloads, the
``echo_*``/``naive`` modules are contender servers, ``grpc_load``/``http_load``/``wrk`` are load
generators, ``server_cpu`` reads the server's CPU in each of their windows, ``contenders``
describes what runs, ``harness`` orchestrates and ``report`` writes JSON, the markdown table
and the plots.
"""
