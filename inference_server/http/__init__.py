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

Why no framework (``benchmarks/RESULTS.md``, ``## HTTP framework choice``; server pinned to
one core, wrk on the other, c=64, one-row requests of the reference model): per CPU-second a
bare raw-ASGI echo on uvicorn (httptools, uvloop) served 40.8k requests, the same echo on
``protocol.py`` 88.8k (2.2x); with msgspec JSON and onnxruntime on every request, raw ASGI
19.5k, ``protocol.py`` 26.6k, Litestar 6.7k, naive FastAPI 3.0k. The whole server through this
adapter (validation, metrics, micro-batching) served 23.1k (OIP JSON) and 21.0k (``/predict``)
requests per CPU-second -- 7.6x and 6.9x naive FastAPI -- and 12.9-13.5k req/s while a shared
machine left it ~58% of its core.
"""

from __future__ import annotations

from inference_server.http.server import HttpServer, start_http_server

__all__ = ["HttpServer", "start_http_server"]
