"""Drift sketches of the served versions (issue 16 §4; docs/drift.md).

:mod:`~inference_server.drift.book` keeps the per-(model, version, window) sketches, fed off
the request path; :mod:`~inference_server.drift.columns` says which columns they cover;
:mod:`~inference_server.drift.reads` answers the admin read
``GET /v2/models/{m}/versions/{v}/sketches`` for every worker.
"""
