"""HTTP adapter: the Open Inference Protocol REST API and simple JSON endpoints.

Layers, top to bottom:

- ``server.py``: :func:`start_http_server` (the seam ``app.py`` calls), listening socket,
  SO_REUSEPORT, graceful ``close()``.
- ``routes.py``: :class:`HttpApi`, path dispatch and the OIP handlers (convert -> delegate to
  :class:`~inference_server.service.InferenceService` -> convert back); ``simple.py``:
  ``/predict``, ``/predict/batch``, ``/health``.
- ``oip.py``: OIP JSON bodies and Triton's binary tensor extension <-> core types (msgspec,
  decoders built once); ``errors.py``: the one ErrorCode -> status table.
- ``protocol.py``: a minimal HTTP/1.1 server (``asyncio.Protocol`` + httptools on uvloop).

Why no framework: measured on this machine (``benchmarks/RESULTS.md``, ``## HTTP framework
choice``), server on one core, wrk on the other, c=64: a bare raw-ASGI echo on uvicorn
(httptools, uvloop) answered ~11.6k-15.8k req/s, the same echo on ``protocol.py`` ~31.7k-42.8k
(2.7x); with msgspec JSON and onnxruntime per request, raw ASGI ~5.8k and ``protocol.py``
~11.6k, against ~1.7k for naive FastAPI. The ASGI layer's per-request scope and message dicts
and coroutine hops cost more than the model; the issue's target (>=10k req/s per core, >=5x
naive FastAPI) leaves no room for them.
"""

from __future__ import annotations

from inference_server.http.server import HttpServer, HttpSettings, start_http_server

__all__ = ["HttpServer", "HttpSettings", "start_http_server"]
