"""The gRPC adapter: Open Inference Protocol + Triton extensions over grpc.aio."""

from __future__ import annotations
