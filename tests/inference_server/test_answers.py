"""The answer tap: a run goes to the sketches and the log whole when its arrays are its
requests' rows and every request is logged; otherwise each request goes alone."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from inference_server.answers import Answers
from inference_server.core.types import InferRequest
from inference_server.prediction_log.capture import Capture
from modelyard.settings import PredictionLogSettings

HANDLE: Any = SimpleNamespace(name="m", version=1)


def _job(i: int, rows: int, logged: bool = True) -> Any:
    arrays = [np.full((rows, 2), i, np.float32)]
    request = InferRequest(model_name="m", inputs=[], id=f"r{i}")
    return SimpleNamespace(request=request, variant="none", start=0.0, logged=logged, arrays=arrays)


class Observed:
    def __init__(self) -> None:
        self.calls: list[tuple[list[np.ndarray], list[np.ndarray], int]] = []

    def __call__(self, handle: Any, arrays: Any, outputs: Any, requests: int) -> None:
        self.calls.append((list(arrays), list(outputs), requests))


def _tap() -> tuple[Answers, Observed, Capture]:
    observed = Observed()
    capture = Capture(PredictionLogSettings(enabled=True))
    return Answers(observed, capture), observed, capture


def _run(jobs: list[Any]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    inputs = [np.concatenate([j.arrays[0] for j in jobs])]
    return inputs, [inputs[0][:, 0] * 10]


def test_a_whole_run_goes_on_once() -> None:
    answers, observed, capture = _tap()
    jobs = [_job(0, 1), _job(1, 2), _job(2, 1)]
    inputs, outputs = _run(jobs)
    answers(HANDLE, jobs, [1, 2, 1], inputs, outputs)
    assert [requests for _, _, requests in observed.calls] == [3]
    assert observed.calls[0][0][0] is inputs[0]
    (entry,) = capture.buffer
    assert (entry.request_ids, list(entry.rows)) == (["r0", "r1", "r2"], [1, 2, 1])
    assert entry.inputs[0] is inputs[0]
    assert entry.outputs[0] is outputs[0]
    assert capture.buffered == 3


def test_a_sampled_run_logs_only_its_logged_requests_each_with_its_own_rows() -> None:
    answers, observed, capture = _tap()
    jobs = [_job(0, 1), _job(1, 2, logged=False), _job(2, 1)]
    inputs, outputs = _run(jobs)
    answers(HANDLE, jobs, [1, 2, 1], inputs, outputs)
    assert [requests for _, _, requests in observed.calls] == [3]  # sketches see every answer
    entries = list(capture.buffer)
    assert [e.request_ids for e in entries] == [["r0"], ["r2"]]
    np.testing.assert_array_equal(entries[1].inputs[0], jobs[2].arrays[0])
    np.testing.assert_array_equal(entries[1].outputs[0], [20.0])
    assert capture.buffered == 2


def test_an_output_without_the_batch_dimension_sends_each_request_alone() -> None:
    answers, observed, capture = _tap()
    jobs = [_job(0, 1), _job(1, 2)]
    inputs, _ = _run(jobs)
    answers(HANDLE, jobs, [1, 2], inputs, [np.array([7.0])])
    # every request gets the whole output, as split_batch gives it
    assert [(a[0].shape, o[0].tolist(), n) for a, o, n in observed.calls] == [
        ((1, 2), [7.0], 1),
        ((2, 2), [7.0], 1),
    ]
    assert [list(e.rows) for e in capture.buffer] == [[1], [2]]


def test_a_full_buffer_drops_the_whole_run_and_counts_it() -> None:
    observed = Observed()
    capture = Capture(PredictionLogSettings(enabled=True, buffer_capacity=4))
    answers = Answers(observed, capture)
    for i in range(2):
        jobs = [_job(3 * i + k, 1) for k in range(3)]
        answers(HANDLE, jobs, [1, 1, 1], *_run(jobs))
    assert (capture.buffered, capture.dropped, len(capture.buffer)) == (3, 3, 1)
    assert len(capture.take(10)) == 1
    assert capture.taken == 3
