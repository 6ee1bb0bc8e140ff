"""Model names: what the registry accepts, so a name is always safe as a folder name.

1-128 letters, digits and ``_ . -``, starting with a letter or digit: no path separators, no
``..``, no leading dot (dot-names are the repository's temporary folders), nothing SQL or a
shell would treat specially.
"""

from __future__ import annotations

import re

from modelyard.errors import InvalidArgument

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")


def check_name(name: str) -> str:
    """``name`` if it is a valid model name (safe as a folder: no separators, no leading dot).

    >>> check_name("churn-v2.1")
    'churn-v2.1'
    >>> NAME_PATTERN.fullmatch("churn\\n") is None, NAME_PATTERN.fullmatch("../x") is None
    (True, True)

    Raises:
        InvalidArgument: the name has other characters, starts with ``.``/``_``/``-``, or is
            longer than 128.
    """
    if NAME_PATTERN.fullmatch(name) is None:
        raise InvalidArgument(
            f"invalid model name {name!r}: 1-128 letters, digits and _ . -, "
            "starting with a letter or digit"
        )
    return name
