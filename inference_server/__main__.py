"""``python -m inference_server --model-repository DIR ...`` (same as ``modelyard serve``)."""

from __future__ import annotations

from inference_server.cli import serve

if __name__ == "__main__":
    serve()
