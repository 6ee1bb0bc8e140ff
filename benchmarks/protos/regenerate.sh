#!/usr/bin/env bash
# Regenerates benchmarks/_generated from benchmarks/protos/bench_oip.proto (run from the repo root).
set -euo pipefail
PY=${PY:-.venv/bin/python}
$PY -m grpc_tools.protoc -Ibenchmarks/protos --python_out=benchmarks/_generated \
  --pyi_out=benchmarks/_generated --grpc_python_out=benchmarks/_generated \
  benchmarks/protos/bench_oip.proto
# grpc_tools emits an absolute import; make it package-relative.
sed -i 's/^import bench_oip_pb2 as/from . import bench_oip_pb2 as/' benchmarks/_generated/bench_oip_pb2_grpc.py
