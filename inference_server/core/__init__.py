"""Transport-free building blocks shared by the gRPC and HTTP adapters."""

from __future__ import annotations
