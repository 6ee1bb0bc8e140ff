"""modelyard's inference server: the Open Inference Protocol over gRPC and HTTP on onnxruntime.

Adapters (``grpc/``, ``http/``) convert wire messages to :mod:`inference_server.core.types`
and call one transport-free :class:`inference_server.service.InferenceService`, which uses the
model manager (loaded versions), the micro-batcher and the onnxruntime runtime. Nothing below
the service calls back up. ``app.py`` is the composition root.
"""

from __future__ import annotations
