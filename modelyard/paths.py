"""File paths from outside input, checked once where they enter (batch jobs, tuning datasets).

A path the operating system cannot even look up -- one holding NUL, a component longer than a
file name may be, or one past ``PATH_MAX`` -- is a bad argument, not a server error: without
this check ``Path.resolve`` raised ``ValueError`` and ``Path.is_file`` ``OSError``
(ENAMETOOLONG) deep in the handler, and the client got a 500.

>>> check_path_text("in/part-1.parquet", "input")
>>> check_path_text("in\\x00", "input")
Traceback (most recent call last):
...
modelyard.errors.InvalidArgument: input 'in\\x00' holds a NUL character
"""

from __future__ import annotations

from pathlib import PurePath

from modelyard.errors import InvalidArgument

MAX_COMPONENT_BYTES = 255
"""Longest file name (NAME_MAX on Linux filesystems)."""
MAX_PATH_BYTES = 4095
"""Longest path (PATH_MAX less its NUL)."""


def check_path_text(text: str, what: str) -> None:
    """Raise InvalidArgument naming ``what`` when ``text`` cannot be a path on this system."""
    if "\x00" in text:
        raise InvalidArgument(f"{what} {text!r} holds a NUL character")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise InvalidArgument(f"{what} is longer than {MAX_PATH_BYTES} bytes")
    for part in PurePath(text).parts:
        if len(part.encode("utf-8", "surrogatepass")) > MAX_COMPONENT_BYTES:
            raise InvalidArgument(
                f"{what}: the name {part[:40]!r}... is longer than {MAX_COMPONENT_BYTES} bytes"
            )


__all__ = ["MAX_COMPONENT_BYTES", "MAX_PATH_BYTES", "check_path_text"]
