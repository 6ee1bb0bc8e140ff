"""What ``benchmarks/results/`` may hold: one fixed file per benchmark kind, the latest run's.

Design. ``benchmarks/results/`` is in git. Writers that named each run's file after its start
time (``batch-<UTC>.json``, ``open-loop-batching-<UTC>.json``...) grew the repository with every
run. The rule, enforced here and nowhere else:

- every benchmark kind writes its raw result to one fixed name in this folder
  (:data:`LATEST`, e.g. ``batch-latest.json``), replacing the previous run's file, so running
  a benchmark never adds a tracked file: it changes one;
- the summary (the figures, the command, the load average) lives in ``benchmarks/RESULTS.md``;
  an older run's raw file stays reachable as ``git show <commit>:benchmarks/results/<file>``,
  which RESULTS.md cites beside its figures;
- whoever wants to keep the files of several runs writes them outside this folder, e.g. under
  ``benchmarks/.work/`` (git-ignored), with the writer's ``--out``/``--json``/``--log`` flag;
  :func:`checked_output` refuses any other name inside this folder (or a folder below it);
- the PNG plots (:data:`PLOTS`) are git-ignored and redrawn from ``latest.json`` by
  ``python -m benchmarks plots``.

``tests/benchmarks/test_results_files.py`` fails when the folder holds a file whose name is
not in :data:`ALLOWED`, so it cannot grow again by hand either.
"""

from __future__ import annotations

from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
"""``benchmarks/results/`` of this checkout (absolute: the writers work from any directory)."""

LATEST: dict[str, str] = {
    "harness": "latest.json",
    "batch": "batch-latest.json",
    "open-loop-batching": "open-loop-batching-latest.json",
    "stream-vs-unary": "stream-vs-unary-latest.json",
    "loadtest": "loadtest-latest.log",
}
"""Benchmark kind -> the one file name its raw result has in :data:`RESULTS_DIR`.

``harness``: ``python -m benchmarks run``; ``batch``: ``benchmarks.batch_bench``;
``open-loop-batching``: ``benchmarks.open_loop_batching``; ``stream-vs-unary``:
``benchmarks.stream_vs_unary``; ``loadtest``: ``python -m benchmarks loadtest``.
"""

PLOT_PROTOCOLS = ("grpc", "http")


def plot_name(protocol: str) -> str:
    """The PNG file name of the harness plot for ``protocol``.

    >>> plot_name("grpc")
    'latest-grpc.png'
    """
    return f"latest-{protocol}.png"


PLOTS = tuple(plot_name(p) for p in PLOT_PROTOCOLS)
"""The plots drawn from ``latest.json`` (git-ignored, see ``.gitignore``)."""

ALLOWED = frozenset(LATEST.values()) | frozenset(PLOTS)
"""Every name :data:`RESULTS_DIR` may hold."""


def latest(kind: str) -> Path:
    """The fixed path of ``kind``'s raw result: a writer's default output.

    >>> latest("batch") == RESULTS_DIR / "batch-latest.json"
    True
    """
    return RESULTS_DIR / LATEST[kind]


def checked_output(path: Path, kind: str | None) -> Path:
    """``path`` if writing there keeps the rule, else ``SystemExit`` naming the problem.

    Outside :data:`RESULTS_DIR` anything goes; inside it only ``kind``'s fixed name (a
    ``kind`` of ``None``: a benchmark that keeps no raw result there).

    >>> checked_output(Path("/tmp/batch-1.json"), "batch")
    PosixPath('/tmp/batch-1.json')
    >>> checked_output(RESULTS_DIR / "batch-latest.json", "batch").name
    'batch-latest.json'
    >>> checked_output(RESULTS_DIR / "batch-1.json", "batch")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    SystemExit: ...: batch writes only batch-latest.json there, not batch-1.json; write ...
    """
    resolved = path.resolve()
    results = RESULTS_DIR.resolve()
    if resolved.parent == results and kind is not None and resolved.name == LATEST[kind]:
        return path
    if resolved == results or results in resolved.parents:
        allowed = (
            f"{kind} writes only {LATEST[kind]} there"
            if kind
            else "this benchmark keeps none there"
        )
        raise SystemExit(
            f"benchmarks/results/ keeps one file per benchmark kind: {allowed}, not "
            f"{resolved.relative_to(results)}; write other copies outside it, e.g. under "
            "benchmarks/.work/"
        )
    return path
