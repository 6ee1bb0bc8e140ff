"""Structured logging: one JSON object per line on stderr.

Fields: ``ts`` (UTC ISO-8601), ``level``, ``logger``, ``msg``, ``pid``, and every ``extra``
given to the log call (``log.info("listening", extra={"grpc_port": 8001})``). Nothing is
logged per successful request; errors at the protocol edges are logged once with their
traceback under ``exc``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from typing import Any

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` with its extras."""
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": os.getpid(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Send the root logger's records to stderr as JSON lines (``fmt="text"``: plain lines)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "text":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
