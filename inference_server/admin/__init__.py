"""Admin API of the inference server: N worker processes behave as one server.

- ``fanout.py``: operations registered by name (per-worker handler + aggregator + optional
  prepare), :class:`~inference_server.admin.fanout.LocalFanout` (one process); the module
  docstring shows how a feature registers its own operation.
- ``channel.py`` / ``supervisor.py`` / ``wire.py``: the control channel of ``modelyard serve
  --workers N`` (a Unix socket per worker to the supervising process, which serialises calls,
  applies them on every worker and keeps the desired state restarted workers replay).
- ``repository_ops.py``: load / unload / workers; ``routes.py``: runtime A/B routes.
- ``service.py``: :class:`~inference_server.admin.service.AdminService`, the token check plus
  the fan-out, which the HTTP and gRPC adapters call.
"""
