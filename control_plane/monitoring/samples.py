"""Training samples read from files for reference profiles (the CLIs' shared reader)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def read_sample(path: Path, score_column: str | None) -> dict[str, Any]:
    """``{"columns": ..., "score": ...}`` from a CSV or Parquet file (one column per feature).

    Raises:
        click.BadParameter: the score column is missing.
    """
    import pandas as pd  # NOTE: imported here: pandas is slow to import for other commands

    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    score = None
    if score_column is not None:
        if score_column not in frame.columns:
            raise click.BadParameter(f"{path} has no column {score_column!r}")
        score = frame.pop(score_column).astype(float).tolist()
    return {"columns": {str(name): frame[name].tolist() for name in frame.columns}, "score": score}


__all__ = ["read_sample"]
