"""SLA assertions for the locust load tests (``benchmarks/locust/*.py``).

Both locust files register the same command-line options and the same ``quitting`` check:
when the run ends, the p99 latency, the error rate and (optionally) the achieved request rate
are compared with the thresholds, the verdict is logged, and ``environment.process_exit_code``
is set to 1 on any violation, so ``locust --headless`` exits non-zero.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger("benchmarks.sla")
N_FEATURES = 32


def sample_rows(n: int = 1) -> np.ndarray:
    """Deterministic float32 rows shaped like the reference model's input."""
    return np.random.default_rng(0).normal(size=(n, N_FEATURES)).astype(np.float32)


def add_sla_options(parser: Any) -> None:
    """Register the SLA and pacing options on locust's argument parser."""
    group = parser.add_argument_group("modelyard SLA")
    group.add_argument(
        "--sla-p99-ms", type=float, default=25.0, help="fail when the p99 latency exceeds this (ms)"
    )
    group.add_argument(
        "--sla-max-error-rate",
        type=float,
        default=0.001,
        help="fail when the share of failed requests exceeds this",
    )
    group.add_argument(
        "--sla-min-rps",
        type=float,
        default=0.0,
        help="fail when the achieved requests/s stay below this (0: no check)",
    )
    group.add_argument(
        "--target-rps",
        type=float,
        default=0.0,
        help="total request rate to pace all users to (0: as fast as possible)",
    )
    group.add_argument("--model", default="reference", help="model name")


def pacing(user: Any) -> float:
    """Wait time of one user so that all users together start ``--target-rps`` tasks per
    second (locust's constant_throughput per user; 0 runs tasks back to back)."""
    options = user.environment.parsed_options
    if not options or not options.target_rps:
        return 0.0
    from locust import constant_throughput  # imported here: locust patches the process

    per_user = float(options.target_rps) / float(options.num_users or 1)
    wait: float = constant_throughput(per_user)(user)
    return wait


def sla_violations(stats: Any, options: Any) -> list[str]:
    """The SLA violations of a finished run (empty when it passed)."""
    if stats.num_requests == 0:
        return ["no request completed"]
    problems = []
    p99 = stats.get_response_time_percentile(0.99)
    if p99 > options.sla_p99_ms:
        problems.append(f"p99 {p99:.1f} ms > {options.sla_p99_ms} ms")
    if stats.fail_ratio > options.sla_max_error_rate:
        problems.append(f"error rate {stats.fail_ratio:.4f} > {options.sla_max_error_rate}")
    rps = stats.total_rps
    if options.sla_min_rps and rps < options.sla_min_rps:
        problems.append(f"throughput {rps:.0f} req/s < {options.sla_min_rps}")
    return problems


def check_sla(environment: Any, **_kwargs: Any) -> None:
    """locust ``quitting`` listener: log the verdict, exit code 1 on a violation."""
    stats, options = environment.stats.total, environment.parsed_options
    problems = sla_violations(stats, options)
    summary = (
        f"{stats.num_requests} requests, {stats.num_failures} failures, "
        f"{stats.total_rps:.0f} req/s, p50 {stats.get_response_time_percentile(0.5)} ms, "
        f"p99 {stats.get_response_time_percentile(0.99)} ms"
    )
    if problems:
        log.error("SLA FAILED (%s): %s", summary, "; ".join(problems))
        environment.process_exit_code = 1
    else:
        log.info("SLA passed (%s)", summary)
        environment.process_exit_code = 0
