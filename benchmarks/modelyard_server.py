"""modelyard's own server as a contender: gRPC and HTTP, batching on/off, 1 and 2 workers.

Started exactly as a user would: ``python -m modelyard serve --model-repository DIR
--grpc-port P --http-port Q --metrics-port R --workers N``. The repository holds the reference
model as ``reference/1/model.onnx`` and a ``config.json`` that switches batching on or off.
Until the server has landed on this branch, ``python -m modelyard serve --help`` fails and the
contender is skipped with a "not available" line.

The two-worker variant runs on both cores (``taskset -c 0,1``) and its load generator too:
it measures what two workers give on this machine with the load generator sharing the cores.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import asyncpg
from sqlalchemy.engine import make_url

from benchmarks.contenders import (
    READY_TIMEOUT_S,
    V2_INFER_PATH,
    Contender,
    Context,
    Endpoint,
    Starter,
)
from benchmarks.processes import (
    ContenderUnavailable,
    ServerProcess,
    await_ready,
    free_port,
    on_fresh_ports,
    pin,
    start_server,
)
from benchmarks.reference import MODEL_NAME

HTTP_GRACE_S = 10.0
# Batching on with the server's own defaults (max batch, queue delay): what a user gets.
BATCHING_ON: dict[str, object] = {"enabled": True}
BATCHING_OFF: dict[str, object] = {"enabled": False}
# Batching on, latency first (Triton's default rule, max_queue_delay 0): a batch is whatever
# queued while the previous one ran.
OBSERVED_GRPC_RATES = (1000.0, 2000.0)
OBSERVED_HTTP_RATES = (2000.0, 8000.0)
"""Open-loop rates of the observation pair: about the sustained rates of the default server
(gRPC ~1.8k req/s, HTTP ~18k with our client as its ceiling; see RESULTS.md), and below."""
BATCHING_NO_DELAY: dict[str, object] = {"enabled": True, "max_queue_delay_us": 0, "linger_us": 0}


def server_cwd(ctx: Context) -> Path | None:
    """Where ``-m modelyard`` runs: here, unless another checkout was named (there: its code
    comes first on ``sys.path``) or another interpreter (then a folder without a ``modelyard``
    package, so that interpreter's own installation is used)."""
    if ctx.modelyard_code is not None:
        return ctx.modelyard_code
    return ctx.work_dir if ctx.modelyard_python != sys.executable else None


def check_available(ctx: Context) -> None:
    """Raise ContenderUnavailable unless ``python -m modelyard serve`` exists."""
    try:
        done = subprocess.run(
            [ctx.modelyard_python, "-m", "modelyard", "serve", "--help"],
            cwd=server_cwd(ctx),
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ContenderUnavailable(f"modelyard: not available ({exc})") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ContenderUnavailable(
            f"modelyard: not available (`python -m modelyard serve` failed: {last}); "
            "the server has not landed on this branch yet"
        )


def write_repository(ctx: Context, name: str, batching: dict[str, object]) -> Path:
    """A model repository with the reference model and a batching config."""
    root = ctx.work_dir / "modelyard" / name
    shutil.rmtree(root, ignore_errors=True)
    version_dir = root / MODEL_NAME / "1"
    version_dir.mkdir(parents=True)
    shutil.copyfile(ctx.files.onnx, version_dir / "model.onnx")
    config = {"batching": batching}
    (root / MODEL_NAME / "config.json").write_text(json.dumps(config, indent=2))
    return root


Observation = Literal["default", "off", "sketches", "log", "on", "on-pg"]
"""What the server records beside answering: its defaults (drift sketches on, prediction log
off), nothing (``off``), the sketches alone (``sketches``), the prediction log alone in SQLite
(``log``), or the prediction log and the sketches (``on``: the log in SQLite, the embedded
default; ``on-pg``: in PostgreSQL, as in production)."""

POSTGRES_URL = os.environ.get(
    "MODELYARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
"""The PostgreSQL server of ``on-pg`` (the tests' one): a private database is created on it
for each start and dropped after the server stopped."""


async def _admin(sql: str) -> None:
    try:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise ContenderUnavailable(f"PostgreSQL at {POSTGRES_URL} unreachable ({exc})") from exc
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def private_postgres(name: str) -> tuple[str, Callable[[], None]]:
    """A fresh PostgreSQL database for one server start: (its URL, a function dropping it)."""
    database = f"bench_{name.replace('-', '_')}_{os.getpid()}"
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{database}"'))
    asyncio.run(_admin(f'CREATE DATABASE "{database}"'))
    url = make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)
    return url, lambda: asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def observation_env(
    ctx: Context, name: str, observation: Observation
) -> tuple[dict[str, str], Callable[[], None] | None]:
    """Environment of a server with ``observation`` and what to clean up after it stopped.

    ``on`` and ``log`` log every prediction into a fresh SQLite database, ``on-pg`` into a fresh
    PostgreSQL database (either migrated here, as ``modelyard db upgrade`` does), through a
    local spool."""
    if observation == "default":
        return {}, None
    if observation in ("off", "sketches"):
        return {
            "MODELYARD_SERVER_SKETCHES": "false" if observation == "off" else "true",
            "MODELYARD_PREDICTION_LOG_ENABLED": "false",
        }, None
    folder = ctx.work_dir / "modelyard" / f"{name}-log"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cleanup = None
    url = f"sqlite:///{folder / 'modelyard.db'}"
    if observation == "on-pg":
        url, cleanup = private_postgres(name)
    env = {
        "MODELYARD_DATABASE_URL": url,
        "MODELYARD_SERVER_SKETCHES": "false" if observation == "log" else "true",
        "MODELYARD_PREDICTION_LOG_ENABLED": "true",
        "MODELYARD_PREDICTION_LOG_SPOOL_DIR": str(folder / "spool"),
    }
    try:
        subprocess.run(
            [ctx.modelyard_python, "-m", "modelyard", "db", "upgrade"],
            cwd=server_cwd(ctx),
            env={**os.environ, **env},
            check=True,
            capture_output=True,
            timeout=120,
        )
    except BaseException:
        if cleanup is not None:
            cleanup()
        raise
    return env, cleanup


def serve_command(
    python: str, root: Path, cpus: str, workers: int, grpc_port: int, http: int, metrics: int
) -> list[str]:
    """``modelyard serve`` on ``root`` as a user starts it, pinned to ``cpus``, on 127.0.0.1."""
    return [
        *pin(cpus),
        python,
        "-m",
        "modelyard",
        "serve",
        "--model-repository",
        str(root),
        "--host",
        "127.0.0.1",
        "--grpc-port",
        str(grpc_port),
        "--http-port",
        str(http),
        "--metrics-port",
        str(metrics),
        "--workers",
        str(workers),
    ]


def starter(
    name: str,
    batching: dict[str, object],
    workers: int,
    cpus: str,
    observation: Observation = "default",
) -> Starter:
    """A starter of ``modelyard serve`` on the reference model (``workers`` pinned to ``cpus``,
    ``batching`` as its config, ``observation`` on), ready on gRPC and, if it answers, HTTP."""

    def start(ctx: Context) -> ServerProcess:
        # NOTE: ``modelyard serve`` takes its ports from the command line (picked free first)
        return on_fresh_ports(lambda: start_once(ctx))

    def start_once(ctx: Context) -> ServerProcess:
        check_available(ctx)
        root = write_repository(ctx, name, batching)
        env, cleanup = observation_env(ctx, name, observation)
        http, grpc_port, metrics = free_port(), free_port(), free_port()
        cmd = serve_command(ctx.modelyard_python, root, cpus, workers, grpc_port, http, metrics)
        server = start_server(name, cmd, ctx.log(name), cwd=server_cwd(ctx), env=env)
        if cleanup is not None:
            server.cleanup.append(cleanup)
        server.ports.update(http=http, grpc=grpc_port, metrics=metrics)
        try:
            await_ready(server, READY_TIMEOUT_S, grpc_targets=(f"127.0.0.1:{grpc_port}",))
            _await_http(server, http)
        except BaseException:
            server.stop()
            raise
        return server

    return start


def _await_http(server: ServerProcess, port: int) -> None:
    """Await the HTTP side; a server without it yet keeps its gRPC endpoints measured."""
    url = f"http://127.0.0.1:{port}/v2/models/{MODEL_NAME}/ready"
    try:
        await_ready(server, HTTP_GRACE_S, http_urls=(url,))
    except ContenderUnavailable:
        server.check_alive()
        del server.ports["http"]
        server.notes.append(f"HTTP not answering on {url} after gRPC was ready: HTTP skipped")


def modelyard_contenders() -> list[Contender]:
    """The modelyard variants."""
    grpc = Endpoint("grpc", "gRPC", open_loop=True, big_batch=True, perf_analyzer=True)
    grpc_batching = Endpoint(
        "grpc", "gRPC", open_loop=True, perf_analyzer=True, concurrencies=(1, 8, 64)
    )
    rest = Endpoint("http", "REST V2", path=V2_INFER_PATH, open_loop=True)
    stream = Endpoint("grpc", "gRPC stream", stream=True, concurrencies=(64,))
    predict = Endpoint(
        "http", "/predict", path=f"/predict?model={MODEL_NAME}", body="predict", concurrencies=(64,)
    )
    # Issue 16's cost figures: saturation (closed loop c=64) and p99 at fixed arrival rates
    # below it, the same points for the server with and without its observation.
    observed_endpoints = (
        Endpoint("grpc", "gRPC", rates=OBSERVED_GRPC_RATES),
        Endpoint("http", "REST V2", path=V2_INFER_PATH, rates=OBSERVED_HTTP_RATES),
    )
    return [
        Contender(
            name="modelyard",
            family="modelyard",
            description="modelyard serve, 1 worker, batching off",
            endpoints=(grpc, stream, rest, predict),
            start=starter("modelyard", BATCHING_OFF, 1, "0"),
        ),
        Contender(
            name="modelyard-batching",
            family="modelyard",
            description="modelyard serve, 1 worker, batching on (server defaults)",
            endpoints=(
                grpc_batching,
                stream,
                Endpoint(
                    "http",
                    "REST V2",
                    path=V2_INFER_PATH,
                    open_loop=True,
                    concurrencies=(1, 8, 64),
                ),
                predict,
            ),
            start=starter("modelyard-batching", BATCHING_ON, 1, "0"),
            concurrencies=(64,),
        ),
        Contender(
            name="modelyard-batching-nodelay",
            family="modelyard",
            description="modelyard serve, 1 worker, batching on with max_queue_delay_us=0, "
            "linger_us=0 (latency first)",
            endpoints=(grpc_batching,),
            start=starter("modelyard-batching-nodelay", BATCHING_NO_DELAY, 1, "0"),
        ),
        Contender(
            name="modelyard-unobserved",
            family="observation",
            description="modelyard serve, 1 worker, batching on (defaults), drift sketches "
            "and prediction log off",
            endpoints=observed_endpoints,
            start=starter("modelyard-unobserved", BATCHING_ON, 1, "0", "off"),
            concurrencies=(64,),
        ),
        Contender(
            name="modelyard-observed",
            family="observation",
            description="modelyard serve, 1 worker, batching on (defaults), drift sketches "
            "on and every prediction logged (SQLite)",
            endpoints=observed_endpoints,
            start=starter("modelyard-observed", BATCHING_ON, 1, "0", "on"),
            concurrencies=(64,),
        ),
        Contender(
            name="modelyard-observed-pg",
            family="observation",
            description="modelyard serve, 1 worker, batching on (defaults), drift sketches "
            "on and every prediction logged (PostgreSQL on the same machine, not pinned)",
            endpoints=observed_endpoints,
            start=starter("modelyard-observed-pg", BATCHING_ON, 1, "0", "on-pg"),
            concurrencies=(64,),
        ),
        Contender(
            name="modelyard-2w",
            family="modelyard",
            description="modelyard serve, 2 workers, batching off; server AND load generator "
            "on CPUs 0,1 (shared)",
            endpoints=(Endpoint("grpc", "gRPC"), Endpoint("http", "REST V2", path=V2_INFER_PATH)),
            start=starter("modelyard-2w", BATCHING_OFF, 2, "0,1"),
            concurrencies=(64,),
            server_cpus="0,1",
            client_cpus="0,1",
        ),
    ]
