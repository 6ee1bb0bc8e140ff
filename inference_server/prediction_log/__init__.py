"""The durable prediction log of the inference server (issue 16 §3; docs/prediction-log.md).

Request path -> :class:`~inference_server.prediction_log.capture.Capture` (a bounded deque) ->
spooler thread -> append-only spool segments on local disk -> shipper thread -> the
``prediction_log`` table (:mod:`modelyard.prediction_log`). The service calls only
:class:`Capture`; :class:`PredictionLogWriter` owns the rest and is started and stopped by
:class:`~inference_server.app.InferenceServer`. Both read the ``prediction_log`` section of
:class:`modelyard.settings.Settings` as it is.
"""

from __future__ import annotations

from inference_server.prediction_log.capture import Capture
from inference_server.prediction_log.writer import PredictionLogWriter

__all__ = ["Capture", "PredictionLogWriter"]
