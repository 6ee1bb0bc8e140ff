"""``python -m benchmarks``: the harness command line (see ``benchmarks.cli``)."""

from __future__ import annotations

from benchmarks.cli import bench

if __name__ == "__main__":
    bench()
