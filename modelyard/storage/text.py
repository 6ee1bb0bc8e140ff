"""Text that both databases store: what a background task writes about a failure.

An error message can carry outside text (a webhook receiver's reply, an exception naming a
file); PostgreSQL's TEXT and JSONB refuse the NUL character that SQLite keeps. A write refused
for it was retried forever: a notification whose receiver answered with a NUL was never
recorded, so it was claimed and sent again at every lease's end and never dead-lettered.
"""

from __future__ import annotations


def storable_text(text: str, limit: int | None = None) -> str:
    """``text`` with NUL written as ``\\x00`` and cut to ``limit`` characters.

    >>> storable_text("HTTP 500: bad\\x00reply", limit=17)
    'HTTP 500: bad\\\\x00'
    """
    clean = text.replace("\x00", "\\x00")
    return clean if limit is None else clean[:limit]


__all__ = ["storable_text"]
