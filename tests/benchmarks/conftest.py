"""A benchmark work directory with the reference model built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.reference import ReferenceFiles, build_reference


@pytest.fixture(scope="session")
def bench_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work directory (``--work-dir``) whose reference model is already trained."""
    work = tmp_path_factory.mktemp("bench-work")
    build_reference(work)
    return work


@pytest.fixture(scope="session")
def reference_files(bench_work: Path) -> ReferenceFiles:
    """The reference model's files in :func:`bench_work` (reused, not retrained)."""
    return build_reference(bench_work)
