"""Model names: what the registry accepts, so a name is always safe as a folder name.

The rule is the model repository's own (:func:`modelyard.model_repository.check_model_name`):
1-128 letters, digits and ``_ . -``, starting with a letter or digit: no path separators, no
``..``, no leading dot (dot-names are the repository's temporary folders), nothing SQL or a
shell would treat specially. The registry and the inference server apply the same function.
"""

from __future__ import annotations

from modelyard.model_repository import MODEL_NAME_PATTERN as NAME_PATTERN
from modelyard.model_repository import check_model_name


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
    return check_model_name(name)


__all__ = ["NAME_PATTERN", "check_name"]
