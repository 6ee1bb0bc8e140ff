"""The server's own figures, read from its Prometheus endpoint by the benchmarks.

One reader for every benchmark that brackets a run with the server's counters (answered
requests, batching, the prediction log's), so no benchmark parses the exposition by hand.
"""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from benchmarks.processes import ServerProcess
from benchmarks.reference import MODEL_NAME

BATCH_SAMPLES = {
    "modelyard_inference_batch_rows_count": "runs",
    "modelyard_inference_batch_rows_sum": "rows",
    "modelyard_inference_queue_seconds_count": "queued",
    "modelyard_inference_queue_seconds_sum": "queue_s",
    "modelyard_inference_compute_seconds_sum": "compute_s",
}
"""The batching figures :func:`counters` reads for a model (sample -> name)."""


def counters(server: ServerProcess, model: str = MODEL_NAME) -> dict[str, float]:
    """Answered requests on ``model`` (all its versions), its batching so far and the
    prediction log's counters.

    Names: ``requests``; ``runs`` (session runs), ``rows`` (rows they ran), ``queued`` and
    ``queue_s`` (requests the batcher answered and the seconds they waited in its queue, 0 for
    one that ran at once), ``compute_s`` (seconds of the runs, the tap's hand-over included);
    ``buffered``, ``shipped``, ``dropped`` (the whole server's; 0 with the log off);
    ``sketch_s`` (CPU seconds of the drift sketches' folds, the whole server's).
    """
    url = f"http://127.0.0.1:{server.ports['metrics']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    found = dict.fromkeys(("requests", "buffered", "shipped", "dropped", "sketch_s"), 0.0)
    found.update(dict.fromkeys(BATCH_SAMPLES.values(), 0.0))
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "modelyard_inference_requests_total":
                if sample.labels.get("model") == model:
                    found["requests"] += sample.value
            elif sample.name in BATCH_SAMPLES:
                if sample.labels.get("model") == model:
                    found[BATCH_SAMPLES[sample.name]] += sample.value
            elif sample.name == "modelyard_sketch_cpu_seconds_total":
                found["sketch_s"] += sample.value
            elif sample.name.startswith("modelyard_prediction_log_"):
                key = sample.name.removeprefix("modelyard_prediction_log_").removesuffix("_total")
                if key in found:
                    found[key] = sample.value
    return found
