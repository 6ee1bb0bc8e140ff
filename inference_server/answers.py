"""Answers: what the server keeps of every answered request, handed over once per session run.

Issue 16's cost bound (logging and sketches on keep >= 90 % of the throughput with both off)
left no room for per-request work on a core that also serves: at REST V2 c=64 the per-request
hand-over (a tuple per request into the log's buffer, another into the sketch queue, then a
concatenation and a layout check per request on the spooler and sketch threads) cost about
12 us per request against a 34 us request (0.78x). A session run already holds what both need:
its requests' rows concatenated (the batcher's merge) and its outputs, before the split. So
the batcher taps each run (:mod:`inference_server.batcher`, "Tap") and this class hands the
run on, once:

* **Drift sketches**: :meth:`~inference_server.drift.book.SketchBook.observe` queues the run's
  arrays as one item (``requests`` = the run's requests, for the sampling credit and the
  exact ``served`` counts).
* **Prediction log**: :meth:`~inference_server.prediction_log.capture.Capture.record` buffers
  one entry for the run (it reads the request columns off the jobs there, while they are at
  hand) when every request of the run is logged (the default: the log samples everything).

A run is handed on whole only when its arrays *are* its requests' rows: one request, or every
request with at least one row and every output with the batch dimension. Otherwise (a
zero-row request, an output without the batch dimension, which :func:`~inference_server.
batcher.split_batch` gives to every request whole), and for the log when sampling kept only
some of the run's requests, each request is handed on alone with its own inputs and its own
output rows -- what the server did per request before runs were tapped, so records and
sketches are the same either way.

The tags are the service's jobs (:class:`~inference_server.service.InferJob`): the request
(its id, parameters, protocol), ``variant``, ``start``, ``logged`` and its own ``arrays``.
Every answered request passes here before its caller resumes, so a record exists for every
answer that leaves (and ``kill -9`` loses only the spooler's last flush interval). A request
whose caller gave up while its run was on the session thread is not passed (the batcher
leaves it out); one whose stream ended after its answer was computed is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

from inference_server.batcher import split_batch
from inference_server.prediction_log.capture import Answer

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy as np

    from inference_server.loaded_version import LoadedVersion
    from inference_server.prediction_log.capture import Capture


class Job(Answer, Protocol):
    """What the tap reads of a tag beyond the log's :class:`Answer`."""

    @property
    def logged(self) -> bool:
        """Whether the prediction log samples this request."""

    @property
    def arrays(self) -> list[np.ndarray]:
        """The request's own validated inputs."""


def whole(rows: Sequence[int], outputs: Sequence[np.ndarray]) -> bool:
    """Whether a run's arrays are exactly its requests' rows, in order (see the docstring).

    >>> import numpy as np
    >>> whole([2], [np.zeros(())]), whole([1, 2], [np.zeros(3)]), whole([1, 2], [np.zeros(2)])
    (True, True, False)
    >>> whole([0, 2], [np.zeros(2)])
    False
    """
    if len(rows) == 1:
        return True
    total = sum(rows)
    return min(rows) >= 1 and all(o.ndim and o.shape[0] == total for o in outputs)


class Answers:
    """The server's :class:`~inference_server.loaded_version.AnswerTap`.

    Args:
        observe: the drift sketches' ``observe`` (None: sketches off).
        log: the prediction log's buffer (None: log off).
    """

    def __init__(
        self,
        observe: Callable[[LoadedVersion, Sequence[np.ndarray], Sequence[np.ndarray], int], None]
        | None,
        log: Capture | None,
    ) -> None:
        self._observe = observe
        self._log = log

    def __call__(
        self,
        handle: LoadedVersion,
        tags: list[object],
        rows: list[int],
        inputs: list[np.ndarray],
        outputs: list[np.ndarray],
    ) -> None:
        """Hand one run's answered requests on (``tags``: their jobs)."""
        jobs = cast("list[Job]", tags)
        if not whole(rows, outputs):
            self._alone(handle, jobs, rows, outputs, observe=True)
            return
        if self._observe is not None:
            self._observe(handle, inputs, outputs, len(jobs))
        log = self._log
        if log is None:
            return
        for job in jobs:  # NOTE: a plain loop; the usual run has every request logged
            if not job.logged:
                break
        else:
            log.record(handle, jobs, rows, inputs, outputs)
            return
        if any(job.logged for job in jobs):
            self._alone(handle, jobs, rows, outputs, observe=False)

    def _alone(
        self,
        handle: LoadedVersion,
        jobs: list[Job],
        rows: list[int],
        outputs: list[np.ndarray],
        *,
        observe: bool,
    ) -> None:
        """Each request on its own: its inputs, its output rows (to the sketches too when
        ``observe``; to the log when it is logged)."""
        parts = split_batch(outputs, rows)
        for job, size, part in zip(jobs, rows, parts, strict=True):
            if observe and self._observe is not None:
                self._observe(handle, job.arrays, part, 1)
            if self._log is not None and job.logged:
                self._log.record(handle, [job], [size], job.arrays, part)


def answer_tap(
    observe: Callable[[LoadedVersion, Sequence[np.ndarray], Sequence[np.ndarray], int], None]
    | None,
    log: Capture | None,
) -> Answers | None:
    """The server's tap for what is on: the sketches' ``observe``, the log's buffer (None:
    neither, and the batcher hands nothing on)."""
    return Answers(observe, log) if observe or log else None


__all__ = ["Answers", "Job", "answer_tap", "whole"]
