# Benchmarks and SLA load tests (issue 4). Included by the root Makefile:
#   include benchmarks/bench.mk
# Expects PY (the project's interpreter, default .venv/bin/python). Knobs, all optional:
#   make bench BENCH_DURATION=5 BENCH_REPEATS=3 BENCH_ONLY=echo-grpc,naive BENCH_SKIP=mlserver
#   make bench BENCH_ARGS="--no-open-loop --resume 20261126T064000Z"
#   make loadtest LOADTEST_START=modelyard LOADTEST_RPS=1000 LOADTEST_P99_MS=25
#   make loadtest LOADTEST_HOST=127.0.0.1 LOADTEST_HTTP_PORT=8000 LOADTEST_GRPC_PORT=8001
# `python -m benchmarks run --help` and `python -m benchmarks loadtest --help` list every flag.

PY ?= .venv/bin/python

BENCH_DURATION ?= 5
BENCH_WARMUP ?= 1
BENCH_REPEATS ?= 3
BENCH_ONLY ?=
BENCH_SKIP ?=
BENCH_ARGS ?=

LOADTEST_START ?=
LOADTEST_HOST ?= 127.0.0.1
LOADTEST_HTTP_PORT ?= 8000
LOADTEST_GRPC_PORT ?= 8001
LOADTEST_PROTOCOLS ?= http,grpc
LOADTEST_USERS ?= 16
LOADTEST_TIME ?= 20s
LOADTEST_RPS ?= 500
LOADTEST_P99_MS ?= 25
LOADTEST_MAX_ERROR_RATE ?= 0.001
LOADTEST_MIN_RPS ?= 0
LOADTEST_ARGS ?=

.PHONY: bench bench-deps loadtest

# wrk (HTTP load) and libb64 (perf_analyzer) are Debian packages; MLServer and perf_analyzer
# are installed by the harness itself into benchmarks/.work/.
bench-deps:
	@command -v wrk >/dev/null 2>&1 && test -e /usr/lib/x86_64-linux-gnu/libb64.so.0d || \
		(apt-get update && apt-get install -y wrk libb64-0d)
	$(PY) -m benchmarks prepare

bench: bench-deps
	$(PY) -m benchmarks run --duration $(BENCH_DURATION) --warmup $(BENCH_WARMUP) \
		--repeats $(BENCH_REPEATS) $(if $(BENCH_ONLY),--only $(BENCH_ONLY)) \
		$(if $(BENCH_SKIP),--skip $(BENCH_SKIP)) $(BENCH_ARGS)

loadtest:
	$(PY) -m benchmarks loadtest $(if $(LOADTEST_START),--start $(LOADTEST_START)) \
		--host $(LOADTEST_HOST) --http-port $(LOADTEST_HTTP_PORT) \
		--grpc-port $(LOADTEST_GRPC_PORT) --protocols $(LOADTEST_PROTOCOLS) \
		--users $(LOADTEST_USERS) --run-time $(LOADTEST_TIME) --target-rps $(LOADTEST_RPS) \
		--sla-p99-ms $(LOADTEST_P99_MS) --sla-max-error-rate $(LOADTEST_MAX_ERROR_RATE) \
		--sla-min-rps $(LOADTEST_MIN_RPS) $(LOADTEST_ARGS)
