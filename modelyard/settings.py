"""Environment-specific settings, read once at start-up and then frozen.

Sources, later wins:
  1. the defaults declared on the structs below (the embedded ``dev`` setup);
  2. ``<config dir>/<environment>.toml`` (``config/dev.toml``, ``staging.toml``,
     ``production.toml``); the environment is ``MODELYARD_ENV`` (default ``dev``) and the
     folder ``MODELYARD_CONFIG_DIR`` (default ``./config`` when it exists);
  3. ``MODELYARD_<SECTION>_<KEY>`` environment variables, e.g. ``MODELYARD_DATABASE_URL``.

Validation happens once, in :func:`load_settings`; a bad key or value raises
:class:`~modelyard.errors.ConfigurationError` naming the key and the value. This is the only
module that reads ``os.environ``.

One settings object per process: every process (control plane, ``modelyard serve`` and its
workers, CLI commands) reads the one :class:`Settings` and hands its sections to the parts
that need them; no plane keeps a second class repeating these fields. Each field's default,
range (``msgspec.Meta``, checked by :func:`load_settings` and :func:`validate_settings`) and
meaning are written here once; ``.env.example`` lists every variable (a test compares both
ways). Command-line flags override a field with ``msgspec.structs.replace`` on the loaded
object and are checked again with :func:`validate_settings`. What is not configuration but
process wiring (a worker's index and its supervisor's socket, SO_REUSEPORT, a test's
PostgreSQL schema) is passed as arguments by the code that decides it, never stored here.

>>> s = load_settings(environ={"MODELYARD_SERVER_WORKERS": "3"}, config_dir=None)
>>> s.server.workers, s.database.url
(3, 'sqlite:///.modelyard/modelyard.db')
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from modelyard.errors import ConfigurationError
from modelyard.model_repository import BatchingConfig

ENVIRONMENTS = ("dev", "staging", "production")
ENV_PREFIX = "MODELYARD_"
SECRET_KEY_PARTS = ("password", "token", "secret")
_BATCHING = BatchingConfig()


class _Section(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Base of a settings section: unknown keys in TOML are errors."""


class DatabaseSettings(_Section, kw_only=True, frozen=True):
    """Where modelyard keeps its state."""

    url: str = "sqlite:///.modelyard/modelyard.db"
    """``sqlite:///path`` (embedded default) or ``postgresql://user:pass@host:port/db``."""
    pool_size: int = 5
    """Connections per process (PostgreSQL)."""


class TrackingSettings(_Section, kw_only=True, frozen=True):
    """MLflow tracking store."""

    uri: str = "sqlite:///.modelyard/mlflow.db"
    """MLflow tracking URI: a SQLite file by default, an MLflow server in production."""
    artifact_root: str = ".modelyard/mlartifacts"
    """Where MLflow writes run artifacts."""


class RegistrySettings(_Section, kw_only=True, frozen=True):
    """Model registry storage and publication."""

    artifact_store: str = ".modelyard/artifacts"
    """Folder of content-addressed ONNX artifacts."""
    model_repository: str = ".modelyard/model-repository"
    """The model repository the inference servers read."""
    mirror_to_mlflow: bool = True
    """Mirror every version, stage and card status into the MLflow Model Registry."""


class ControlPlaneSettings(_Section, kw_only=True, frozen=True):
    """The control-plane REST service."""

    host: str = "127.0.0.1"
    port: int = 8080
    admin_token_file: str = ".modelyard/admin-token"
    """Where the embedded default writes the first admin token."""
    token: str = ""
    """API token the CLI presents to the control plane (``MODELYARD_CONTROL_PLANE_TOKEN``)."""
    inference_servers: tuple[str, ...] = ()
    """Admin URLs of inference servers to notify of changes."""
    unpack_interval_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 1.0
    """How often the control plane unpacks shipped prediction-log blocks into records
    (reads unpack first anyway; docs/operations.md)."""


ModelControlMode = Literal["poll", "explicit", "none"]
"""How the inference server follows its repository (``inference_server/repository.py``)."""


class ServerSettings(_Section, kw_only=True, frozen=True):
    """The inference server: the one settings object of ``modelyard serve`` and its workers.

    The server process reads this section (and :class:`PredictionLogSettings`) as it is: its
    defaults, ranges and meaning are stated here once. ``modelyard serve`` flags override a
    field with ``msgspec.structs.replace`` and :func:`validate_settings`; tests build it
    directly. Process wiring that is not configuration (the supervisor's control socket of a
    worker, SO_REUSEPORT, the worker index) is passed to the server as arguments.
    """

    host: str = "127.0.0.1"
    grpc_port: int = 8001
    """gRPC port; 0: any free port (the bound one is reported)."""
    http_port: int | None = 8000
    """HTTP port; 0: any free port; None (``--http-port -1``) serves no HTTP."""
    metrics_port: int | None = 8002
    """Prometheus port of worker 0 (worker k: ``metrics_port + k``); None serves none."""
    workers: Annotated[int, msgspec.Meta(ge=0)] = 0
    """Worker processes sharing the ports; 0 means one per core."""
    intra_op_threads: Annotated[int, msgspec.Meta(ge=1)] = 1
    """onnxruntime threads per session unless the model's config.json says (1 per worker is
    fastest on small models)."""
    model_repository: str = ".modelyard/model-repository"
    control_mode: ModelControlMode = "poll"
    """``poll`` (load at start, rescan every ``poll_interval_s``), ``explicit`` (load at
    start, then only the load/unload API) or ``none`` (load at start, no changes)."""
    poll_interval_s: Annotated[float, msgspec.Meta(ge=0)] = 2.0
    """Repository poll interval; 0 disables polling (``poll`` then acts as ``explicit``)."""
    max_request_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 64 * 1024 * 1024
    """Largest request (and response) on gRPC and HTTP; beyond it RESOURCE_EXHAUSTED / 413."""
    max_header_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 64 * 1024
    """Largest HTTP request head (request line + headers); beyond it: 431, connection closed."""
    request_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    """An HTTP request must arrive whole (head and body) this long after its first byte."""
    max_batch_size: Annotated[int, msgspec.Meta(ge=1)] = _BATCHING.max_batch_size
    """Batching of every model whose config.json leaves the key out (no ``batching`` section,
    or one without it; :func:`~modelyard.model_repository.read_model_config`): rows per run.
    The batching defaults are :class:`~modelyard.model_repository.BatchingConfig`'s."""
    max_queue_delay_us: Annotated[int, msgspec.Meta(ge=0)] = _BATCHING.max_queue_delay_us
    """Cap on a batch's wait, from its oldest request (inference_server/batcher.py)."""
    batch_linger_us: Annotated[int, msgspec.Meta(ge=0)] = _BATCHING.linger_us
    """Under load, a batch also leaves once no request arrived for this long."""
    batch_inline_max_us: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = _BATCHING.inline_max_us
    """A request reaching an idle batcher runs on the event loop when its estimated cost is at
    most this; 0 always hands off to the session thread."""
    batch_adaptive: bool = _BATCHING.adaptive
    """Under load, wait for fuller batches only while the worker's core has no idle time."""
    queue_capacity: Annotated[int, msgspec.Meta(ge=1)] = _BATCHING.max_queue_size
    """Requests a model version may queue before RESOURCE_EXHAUSTED / 429."""
    queue_timeout_ms: Annotated[int, msgspec.Meta(ge=0)] = _BATCHING.queue_timeout_us // 1000
    """A request still queued after this long fails with DEADLINE_EXCEEDED; 0: no limit."""
    drain_timeout_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    """SIGTERM: how long in-flight requests may take to finish."""
    admin_token: str = ""
    """Bearer token every admin call needs (load, unload, routes, log flush, sketch reads);
    empty: admin calls are open. ``MODELYARD_SERVER_ADMIN_TOKEN``."""
    inference_token: str = ""
    """Bearer token inference calls need; empty (default): inference is open."""
    admin_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 120.0
    """How long an admin call waits for every worker to apply it before it fails."""
    gc_threshold: Annotated[int, msgspec.Meta(ge=0)] = 50_000
    """Allocations between two young-generation passes of Python's garbage collector in a
    serving worker (Python's default is 700; 0 keeps it). At c=64 some 1,300 objects of the
    requests in flight are alive at any time, so with 700 nearly every pass traverses live
    objects and promotes them; with 50,000 a pass comes every few thousand requests and finds
    mostly the in-flight ones (in process, REST V2 c=64: 1.5 us less per request with both
    the log and the sketches off, 1.9 less with the log on). Cyclic garbage lives a little
    longer (a few MB at most)."""
    background_nice: Annotated[int, msgspec.Meta(ge=0, le=19)] = 10
    """Nice value the worker's background threads (the prediction log's spooler and shipper,
    the drift sketches' fold) give themselves, so that the event loop gets the core first when
    a request arrives while they run (``inference_server/background.py``); 0 leaves them at
    the worker's own priority."""
    sketches: bool = True
    """Keep drift sketches of every served version (docs/drift.md)."""
    sketch_window_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    """Length of a sketch window in seconds (windows start at multiples of it, UTC)."""
    sketch_retention_s: Annotated[float, msgspec.Meta(gt=0)] = 3600.0
    """How long sketch windows are kept in memory."""
    sketch_sample_rate: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0
    """Share of answered requests that are sketched (every 1/rate-th; 1.0: all)."""
    sketch_queue_size: Annotated[int, msgspec.Meta(ge=1)] = 4096
    """Answered requests waiting to be sketched; beyond it their sketches are dropped (counted)."""
    sketch_flush_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 0.1
    """How often the background task sketches what is queued."""
    sketch_max_categories: Annotated[int, msgspec.Meta(ge=1)] = 1000
    """New categories per feature and window (beyond the reference's) before ``other``."""

    @property
    def effective_control_mode(self) -> ModelControlMode:
        """``control_mode``, except that ``poll`` with ``poll_interval_s = 0`` is ``explicit``."""
        if self.control_mode == "poll" and self.poll_interval_s == 0:
            return "explicit"
        return self.control_mode

    @property
    def default_batching(self) -> BatchingConfig:
        """The server's batching: what a model's config.json ``batching`` keys default to."""
        return BatchingConfig(
            max_batch_size=self.max_batch_size,
            max_queue_delay_us=self.max_queue_delay_us,
            linger_us=self.batch_linger_us,
            max_queue_size=self.queue_capacity,
            queue_timeout_us=self.queue_timeout_ms * 1000,
            inline_max_us=self.batch_inline_max_us,
            adaptive=self.batch_adaptive,
        )


class PredictionLogSettings(_Section, kw_only=True, frozen=True):
    """The inference server's prediction log (docs/prediction-log.md).

    The server's log writer reads this section as it is; its database is
    :attr:`Settings.prediction_log_url`.
    """

    enabled: bool = False
    """Record every answered prediction (``modelyard serve``); on in staging and production."""
    database_url: str = ""
    """Database holding the ``prediction_log`` table (migrated by ``modelyard db upgrade``);
    empty means ``database.url``."""
    spool_dir: str = ".modelyard/prediction-spool"
    """Local folder of the append-only spool (worker k uses ``worker-k`` in it)."""
    flush_interval_ms: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 50
    """Buffer -> spool at least this often; ``kill -9`` loses at most this much."""
    buffer_capacity: Annotated[int, msgspec.Meta(ge=1)] = 100_000
    """Answered requests a worker may buffer before the overflow policy applies."""
    overflow: Literal["drop", "reject"] = "drop"
    """Full buffer: ``drop`` (answer, count the dropped record) or ``reject`` (new requests
    fail with RESOURCE_EXHAUSTED / 429 until the buffer has room)."""
    max_spool_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1024**3
    """The spool stops growing here while the database is down; the buffer then fills."""
    segment_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 8 * 1024**2
    """A spool segment is closed at this size."""
    ship_batch: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 5000
    """Records per database batch."""
    ship_interval_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 200
    """Once caught up, the shipper waits this long before its next database transaction
    (unless a flush asks, or ``ship_batch`` records wait): fewer, larger transactions;
    records reach the database this much later."""
    fsync: bool = True
    """Keep every spooled answer on stable storage within about ``ship_interval_ms`` + one
    flush interval: in the database (its commits are durable), else the shipper fsyncs the
    spool (off the answer path, so a slow disk never delays answers). A machine crash then
    loses about that much; off: whatever the OS had not written."""
    shutdown_timeout_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    """SIGTERM waits this long for the spool to reach the database; the rest stays spooled
    for the next start."""


class TuningSettings(_Section, kw_only=True, frozen=True):
    """Hyperparameter tuning."""

    storage: str = ""
    """Optuna RDB storage URL for studies shared by several processes (PostgreSQL)."""


class BatchSettings(_Section, kw_only=True, frozen=True):
    """Batch prediction jobs."""

    data_root: str = ".modelyard/batch"
    """Folder under which job inputs and outputs live; request paths never leave it."""


class SchedulerSettings(_Section, kw_only=True, frozen=True):
    """The control plane's background scheduler (periodic checks, retraining schedules)."""

    enabled: bool = True
    """Run periodic jobs in this control-plane process."""
    tick_s: float = 1.0
    """How often due jobs are looked for and running leases renewed."""
    lease_s: float = 60.0
    """How long a replica's claim on a running job lasts without renewal (> 2 * tick_s)."""


class MonitoringSettings(_Section, kw_only=True, frozen=True):
    """Alerts and their notifications (control plane)."""

    alert_cooldown_s: float = 3600.0
    """A resolved alert's repeats within this many seconds fold into it instead of a new one."""
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "modelyard@localhost"
    smtp_username: str = ""
    smtp_password: str = ""
    """Secret: masked in ``config show``."""
    smtp_starttls: bool = False
    notify_timeout_s: float = 10.0
    """Per attempt: SMTP connection or HTTP request timeout."""
    notify_max_attempts: int = 5
    """Attempts per delivery before it is dead-lettered."""
    notify_backoff_s: float = 5.0
    """Delay before the second attempt; doubles per attempt, with jitter (50-100%)."""
    notify_backoff_max_s: float = 300.0
    notify_poll_s: float = 1.0
    """How often due deliveries (retries) are looked for; new alerts are sent at once."""
    drift_check_interval: str = "every 1h"
    """Schedule of the periodic drift checks (``every <n>s|m|h|d`` or a cron expression)."""
    drift_window_s: float = 3600.0
    """Window of a drift check (periodic, and manual ones that name none), in seconds."""
    streaming_interval: str = "every 1m"
    """How often the streaming detectors read new predictions and outcomes."""


class RetrainingSettings(_Section, kw_only=True, frozen=True):
    """Retraining runs (worker processes started by the control plane)."""

    heartbeat_s: float = 5.0
    """How often a running retraining worker records that it is alive."""
    stale_after_s: float = 60.0
    """A run whose worker has not beaten for this long is failed (and resumable)."""
    on_alerts: bool = True
    """Drift and performance-degradation alerts trigger a retraining of their model."""


class LoggingSettings(_Section, kw_only=True, frozen=True):
    """Logging."""

    level: str = "INFO"
    format: str = "json"
    """``json`` (structured, one object per line) or ``text``."""


class Settings(_Section, kw_only=True, frozen=True):
    """The effective configuration of one process."""

    environment: str = "dev"
    database: DatabaseSettings = DatabaseSettings()
    tracking: TrackingSettings = TrackingSettings()
    registry: RegistrySettings = RegistrySettings()
    control_plane: ControlPlaneSettings = ControlPlaneSettings()
    server: ServerSettings = ServerSettings()
    tuning: TuningSettings = TuningSettings()
    batch: BatchSettings = BatchSettings()

    prediction_log: PredictionLogSettings = PredictionLogSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    retraining: RetrainingSettings = RetrainingSettings()
    logging: LoggingSettings = LoggingSettings()

    @property
    def prediction_log_url(self) -> str:
        """The prediction log's database: ``prediction_log.database_url``, else ``database.url``."""
        return self.prediction_log.database_url or self.database.url


def settings_variables() -> dict[str, tuple[str, str, bool]]:
    """Every supported environment variable, mapped to (section, key, is_list)."""
    variables: dict[str, tuple[str, str, bool]] = {}
    for section in msgspec.structs.fields(Settings):
        section_type = section.type
        if not isinstance(section_type, type) or not issubclass(section_type, _Section):
            continue
        for key in msgspec.structs.fields(section_type):
            name = f"{ENV_PREFIX}{section.name}_{key.name}".upper()
            is_list = getattr(key.type, "__origin__", None) is tuple
            variables[name] = (section.name, key.name, is_list)
    return variables


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    known = settings_variables()
    overrides: dict[str, dict[str, Any]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in ("MODELYARD_ENV", "MODELYARD_CONFIG_DIR"):
            continue
        if name.startswith("MODELYARD_TEST_"):
            continue
        if name not in known:
            raise ConfigurationError(f"unknown setting {name}={value!r}")
        section, key, is_list = known[name]
        # Lists are comma-separated; other values are converted by the struct's field type.
        parsed: Any = [item for item in value.split(",") if item] if is_list else value
        overrides.setdefault(section, {})[key] = parsed
    return overrides


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"invalid TOML in {path}: {error}") from None


def _merge(base: dict[str, Any], overrides: dict[str, dict[str, Any]]) -> dict[str, Any]:
    merged = dict(base)
    for section, values in overrides.items():
        current = merged.get(section, {})
        merged[section] = {**current, **values} if isinstance(current, dict) else values
    return merged


def _lookup(raw: Mapping[str, Any], path: list[str]) -> Any:
    value: Any = raw
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _validation_error(error: msgspec.ValidationError, raw: Mapping[str, Any]) -> ConfigurationError:
    match = re.search(r"at `\$\.([\w.]+)`", str(error))
    if match is None:
        return ConfigurationError(f"invalid settings: {error}")
    path = match.group(1).split(".")
    key = ".".join(path)
    unknown = re.search(r"unknown field `(\w+)`", str(error))
    if unknown is not None:
        return ConfigurationError(f"unknown setting {key}.{unknown.group(1)}")
    reason = str(error).split(" - at ")[0]
    return ConfigurationError(f"invalid setting {key}={_lookup(raw, path)!r}: {reason}")


def _check_values(settings: Settings) -> None:
    if settings.environment not in ENVIRONMENTS:
        raise ConfigurationError(
            f"invalid setting environment={settings.environment!r}: expected one of {ENVIRONMENTS}"
        )
    url = settings.database.url
    if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ConfigurationError(
            f"invalid setting database.url={mask_url(url)!r}: "
            "expected sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
        )
    if settings.logging.format not in ("json", "text"):
        raise ConfigurationError(
            f"invalid setting logging.format={settings.logging.format!r}: expected json or text"
        )
    scheduler = settings.scheduler
    if scheduler.tick_s <= 0 or scheduler.lease_s <= 2 * scheduler.tick_s:
        raise ConfigurationError(
            f"invalid setting scheduler.lease_s={scheduler.lease_s!r}: "
            f"must exceed twice scheduler.tick_s={scheduler.tick_s!r} (> 0)"
        )
    monitoring = settings.monitoring
    if monitoring.notify_max_attempts < 1 or monitoring.notify_backoff_s < 0:
        raise ConfigurationError(
            f"invalid setting monitoring.notify_max_attempts={monitoring.notify_max_attempts!r}"
            f" / notify_backoff_s={monitoring.notify_backoff_s!r}: need >= 1 attempt, delay >= 0"
        )
    for name in ("grpc_port", "http_port", "metrics_port"):
        port = getattr(settings.server, name)
        if port is not None and not 0 <= port <= 65535:
            raise ConfigurationError(f"invalid setting server.{name}={port!r}: not a TCP port")


def load_settings(
    environ: Mapping[str, str] | None = None,
    config_dir: Path | str | None = "default",
) -> Settings:
    """Read, merge and validate the settings.

    Args:
        environ: the process environment (``os.environ`` when omitted).
        config_dir: folder of ``<environment>.toml`` files; ``"default"`` means
            ``MODELYARD_CONFIG_DIR`` or ``./config``; ``None`` reads no file.

    Raises:
        ConfigurationError: a key is unknown or a value invalid; the message names both.
    """
    env = os.environ if environ is None else environ
    environment = env.get("MODELYARD_ENV", "dev")
    if environment not in ENVIRONMENTS:
        raise ConfigurationError(
            f"invalid setting MODELYARD_ENV={environment!r}: expected one of {ENVIRONMENTS}"
        )
    if config_dir == "default":
        config_dir = Path(env.get("MODELYARD_CONFIG_DIR", "config"))
    raw: dict[str, Any] = {}
    if config_dir is not None:
        path = Path(config_dir) / f"{environment}.toml"
        if path.is_file():
            raw = _read_toml(path)
    raw = _merge(raw, _env_overrides(env))
    raw["environment"] = environment
    return _validated(raw)


def validate_settings(settings: Settings) -> Settings:
    """Check settings built or changed in code (``structs.replace`` of CLI flags) as loading does.

    Constructors do not check ranges; this does, with :func:`load_settings`' messages.

    Raises:
        ConfigurationError: a value is invalid; the message names the key and the value.
    """
    return _validated(msgspec.to_builtins(settings))


def _validated(raw: dict[str, Any]) -> Settings:
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as error:
        raise _validation_error(error, raw) from None
    _check_values(settings)
    return settings


def mask_url(url: str) -> str:
    """Hide the password of a URL.

    >>> mask_url("postgresql://app:hunter2@db:5432/modelyard")
    'postgresql://app:***@db:5432/modelyard'
    """
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def masked(settings: Settings) -> dict[str, Any]:
    """The settings as plain data with secrets masked, for display."""
    data: dict[str, Any] = msgspec.to_builtins(settings)
    for section in data.values():
        if not isinstance(section, dict):
            continue
        for key, value in section.items():
            if any(part in key for part in SECRET_KEY_PARTS) and value:
                section[key] = "***"
            elif isinstance(value, str):
                section[key] = mask_url(value)
    return data
