#!/usr/bin/env bash
# Compare HTTP stacks: server pinned to CPU 0, wrk to CPU 1, 5 s per point (shared machine).
# Usage: benchmarks/http_framework/compare.sh [CONTENDER...]   (run from the repo root)
set -euo pipefail
PY=${PY:-.venv/bin/python}
MODEL_DIR=${MODEL_DIR:-/tmp/modelyard-bench-model}
DURATION=${DURATION:-5s}
PORT=${PORT:-18080}
HERE=benchmarks/http_framework
$PY $HERE/reference_model.py "$MODEL_DIR" >/dev/null
contenders=("$@")
[ ${#contenders[@]} -eq 0 ] && contenders=(asgi-echo proto-echo asgi-ort proto-ort fastapi-naive)
for name in "${contenders[@]}"; do
  PYTHONPATH=. taskset -c 0 $PY $HERE/contenders.py "$name" "$PORT" "$MODEL_DIR" &
  pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
  url="http://127.0.0.1:$PORT/v2/models/reference/infer"
  taskset -c 1 wrk -t1 -c64 -d2s -s $HERE/oip_row.lua "$url" >/dev/null  # warm-up
  for c in 1 64; do
    echo "== $name c=$c"
    taskset -c 1 wrk -t1 -c$c -d$DURATION --latency -s $HERE/oip_row.lua "$url" \
      | grep -E "Requests/sec|^ +50%|^ +99%|Non-2xx|Socket errors"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
