#!/usr/bin/env bash
# Compare HTTP stacks: server pinned to CPU 0, wrk to CPU 1, one wrk thread, 5 s per point
# (the machine is shared), a 2 s warm-up at c=64 first. Prints req/s, p50/p99 and the server
# process's CPU time (all threads, /proc/PID/stat), so "requests per CPU-second" -- what one
# core can serve -- stays comparable when other jobs steal the server's core.
# Usage (from the repo root): [ROUNDS=3] [CONCURRENCY="1 64"] [DURATION=5s] \
#   benchmarks/http_framework/compare.sh [CONTENDER...]
# Rounds interleave the contenders so that noise from a shared machine hits them alike.
set -euo pipefail
PY=${PY:-.venv/bin/python}
MODEL_DIR=${MODEL_DIR:-/tmp/modelyard-bench-model}
DURATION=${DURATION:-5s}
CONCURRENCY=${CONCURRENCY:-1 64}
PORT=${PORT:-18080}
ROUNDS=${ROUNDS:-1}
HERE=benchmarks/http_framework
$PY $HERE/reference_model.py "$MODEL_DIR" >/dev/null
contenders=("$@")
[ ${#contenders[@]} -eq 0 ] &&
  contenders=(asgi-echo proto-echo asgi-ort litestar-ort proto-ort fastapi-naive modelyard)

cpu_ticks() {  # utime + stime of every thread of process $1, in clock ticks
  awk '{print $14 + $15}' "/proc/$1/stat"
}

point() {  # point LABEL URL LUA   (measures the server process $pid)
  taskset -c 1 wrk -t1 -c64 -d2s -s "$3" "$2" >/dev/null
  for c in $CONCURRENCY; do
    printf '%-24s c=%-3s' "$1" "$c"
    before=$(cpu_ticks "$pid")
    out=$(taskset -c 1 wrk -t1 -c"$c" -d"$DURATION" --latency -s "$3" "$2")
    after=$(cpu_ticks "$pid")
    echo "$out" | awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
      /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Requests\/sec/ {rps=$2}
      / requests in / {n=$1} /Non-2xx/ {bad=$NF} /Socket errors/ {err=$0}
      END {
        cpu = ticks / hz
        printf "%9s req/s  p50 %8s  p99 %8s  CPU %5.2f s  %6.0f req/CPU-s  non-2xx %d %s\n",
               rps, p50, p99, cpu, (cpu > 0 ? n / cpu : 0), bad + 0, err
      }'
  done
}

for round in $(seq "$ROUNDS"); do
  echo "# round $round  (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  for name in "${contenders[@]}"; do
    PYTHONPATH=. taskset -c 0 $PY $HERE/contenders.py "$name" "$PORT" "$MODEL_DIR" 2>/dev/null &
    pid=$!
    up=0
    for _ in $(seq 600); do  # any HTTP answer means listening (up to 60 s on a loaded machine)
      if curl -s -o /dev/null "http://127.0.0.1:$PORT/health"; then up=1; break; fi
      sleep 0.1
    done
    [ "$up" = 1 ] || { echo "$name did not start"; kill "$pid"; continue; }
    base="http://127.0.0.1:$PORT"
    point "$name oip-json" "$base/v2/models/reference/infer" $HERE/oip_row.lua
    if [ "$name" = modelyard ]; then
      point "$name /predict" "$base/predict?model=reference" $HERE/predict_row.lua
    fi
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
