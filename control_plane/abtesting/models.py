"""Shapes of the A/B testing feature: test definitions, stored tests, metrics and reports."""

from __future__ import annotations

import datetime as dt
import enum

import msgspec

from control_plane.abtesting.power import TestPlan
from control_plane.abtesting.recommendation import Recommendation
from modelyard.enums import ModelVariant
from modelyard.models import FiniteFloat, Text, VersionNumber


class Input(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Base of shapes decoded from outside input (unknown fields are refused)."""


class TestMode(enum.StrEnum):
    """Fixed-horizon (read once at the planned size) or sequential (read at any time)."""

    __test__ = False

    FIXED = "fixed"
    SEQUENTIAL = "sequential"


class TestStatus(enum.StrEnum):
    """Lifecycle of a test; only one running test per model."""

    __test__ = False

    RUNNING = "running"
    CONCLUDED = "concluded"
    STOPPED = "stopped"


class MetricKind(enum.StrEnum):
    """Where a metric's unit values come from (one unit = one logged row: a request of one row
    is one unit; the rows of a multi-row request share an arm and are counted as units too).

    * ``conversion`` — rate: requests whose outcome says converted, over all requests;
    * ``value`` — mean of the numeric outcome over requests that have one;
    * ``label_match`` — rate: requests whose outcome label equals the predicted label, over
      requests with a label;
    * ``latency_ms`` — mean latency of the requests (lower is better by default).
    """

    CONVERSION = "conversion"
    VALUE = "value"
    LABEL_MATCH = "label_match"
    LATENCY_MS = "latency_ms"

    @property
    def is_rate(self) -> bool:
        """Rates use the two-proportion z-test, means Welch's t-test."""
        return self in (MetricKind.CONVERSION, MetricKind.LABEL_MATCH)


class Metric(Input, frozen=True):
    """A metric of a test."""

    name: str
    kind: MetricKind
    higher_is_better: bool = True
    output: str | None = None
    """For ``label_match``: the model output holding the predicted label."""


class Variant(Input, frozen=True):
    """One arm: a registered version, its share of the traffic and its role."""

    version: VersionNumber
    weight: FiniteFloat
    role: ModelVariant


class TestDefinition(Input, frozen=True):
    """The body of ``POST /v1/ab-tests``."""

    __test__ = False

    model: str
    variants: tuple[Variant, ...]
    primary_metric: Metric
    guardrail_metrics: tuple[Metric, ...] = ()
    secondary_metrics: tuple[Metric, ...] = ()
    minimum_sample_size: int = 1000
    alpha: FiniteFloat = 0.05
    mode: TestMode = TestMode.FIXED
    routing_key_field: str = "routing_key"
    description: Text = ""


class TrafficSplit(Input, frozen=True):
    """The body of ``PUT /v1/ab-tests/{id}/split``: version → weight, summing to 1."""

    weights: dict[str, FiniteFloat]
    reason: Text = ""


class Conclusion(Input, frozen=True):
    """The body of ``POST /v1/ab-tests/{id}/conclude``: the variant that keeps all traffic."""

    version: int
    reason: Text = ""


class ABTest(msgspec.Struct, kw_only=True, frozen=True):
    """A stored test."""

    id: str
    definition: TestDefinition
    status: TestStatus
    created_at: dt.datetime
    created_by: str
    phase_started_at: dt.datetime
    """When the current weights took effect: statistics read records from here on (a split
    change starts a new phase, so counts from two splits never mix)."""
    ended_at: dt.datetime | None = None
    winner: int | None = None

    @property
    def model(self) -> str:
        """The model under test."""
        return self.definition.model

    @property
    def variants(self) -> tuple[Variant, ...]:
        """The arms with their current weights."""
        return self.definition.variants


class Interval(msgspec.Struct, kw_only=True, frozen=True):
    """An estimate with its confidence interval."""

    estimate: float
    low: float
    high: float


class MetricSummary(msgspec.Struct, kw_only=True, frozen=True):
    """One metric of one variant: units, the mean (or rate) with its interval."""

    name: str
    units: int
    mean: Interval | None
    variance: float


class VariantMetrics(msgspec.Struct, kw_only=True, frozen=True):
    """Everything measured on one variant, from that variant's records only (property 20)."""

    version: int
    role: ModelVariant
    weight: float
    requests: int
    outcomes: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    error_rate: float | None
    """Failed requests are not in the prediction log: None until a source records them."""
    metrics: tuple[MetricSummary, ...]


class TimePoint(msgspec.Struct, kw_only=True, frozen=True):
    """A cumulative reading of the primary metric per variant at one time (for the chart)."""

    at: dt.datetime
    means: dict[str, float | None]
    lift: Interval | None


class TestReport(msgspec.Struct, kw_only=True, frozen=True):
    """``GET /v1/ab-tests/{id}/report``: per-variant metrics and the recommendation."""

    __test__ = False

    test: ABTest
    variants: tuple[VariantMetrics, ...]
    recommendation: Recommendation
    days_to_minimum_sample: float | None = None
    """At the traffic seen since the phase began (0: reached; None: no traffic yet)."""
    series: tuple[TimePoint, ...] = ()


class PlanRequest(Input, frozen=True):
    """The body of ``POST /v1/ab-tests/plan`` (see :func:`~.power.plan_test`)."""

    baseline: FiniteFloat
    minimum_detectable_effect: FiniteFloat
    variance: FiniteFloat | None = None
    relative: bool = False
    alpha: FiniteFloat = 0.05
    power: FiniteFloat = 0.8
    daily_traffic: FiniteFloat | None = None
    weights: tuple[FiniteFloat, ...] = (0.5, 0.5)


class RouteApplied(msgspec.Struct, kw_only=True, frozen=True):
    """What one inference server answered when the route was pushed."""

    server: str
    applied: bool
    workers_applied: int | None = None
    error: str | None = None


class RouteChange(msgspec.Struct, kw_only=True, frozen=True):
    """The result of writing and pushing a route: the test and every server's answer."""

    test: ABTest
    servers: tuple[RouteApplied, ...]


__all__ = [
    "ABTest",
    "Conclusion",
    "Metric",
    "MetricKind",
    "PlanRequest",
    "RouteApplied",
    "RouteChange",
    "TestDefinition",
    "TestMode",
    "TestPlan",
    "TestReport",
    "TestStatus",
    "TrafficSplit",
    "Variant",
    "VariantMetrics",
]
