"""Batching sections an older registry wrote into ``config.json``: defaults, not choices.

Before the one batching rule (a key a model's ``batching`` section leaves out takes the
server's setting), the registry rewrote a model's whole ``config.json`` on every publication:
every top-level field and a full ``batching`` section, each key it did not find in the file
filled with the default of the day (queue 1024, no queue timeout). Its later, key-preserving
updates kept that section, so those files pin stale values over the server's settings, and
the old reader made no difference between a key the file named at its default and a key it
left out. Four section shapes were ever written, one per generation of :class:`BatchingConfig`
(found by encoding ``ModelConfig()`` at every commit whose publisher rewrote the whole file).

The rule: a file *without* a ``config_version`` key, whose top level names every field the
older registry always wrote and whose ``batching`` section names exactly the keys of one of
those shapes, was written by that registry; each of its batching keys still at that shape's
default is read as left out (it takes the server's setting), and every other value is kept
(the older registry copied an operator's key into the section unchanged). Hand-written files
almost never spell out every top-level field and a whole section; one that does and means
every value adds ``"config_version": 2``, which turns the rule off.

>>> section = dict(LEGACY_REGISTRY_SECTIONS[2], max_batch_size=8)
>>> raw = {key: None for key in REGISTRY_FIELDS} | {"batching": section}
>>> sorted(set(section) - registry_defaults(raw))  # the one key an operator chose
['max_batch_size']
>>> registry_defaults(raw | {"config_version": 2}), registry_defaults({"batching": section})
(frozenset(), frozenset())
"""

from __future__ import annotations

from collections.abc import Mapping

CONFIG_VERSION_KEY = "config_version"
CONFIG_VERSION = 2
"""The schema a ``config_version`` key may name: every key in the file is the user's choice."""

REGISTRY_FIELDS = frozenset(
    {
        "version_policy",
        "default_version",
        "batching",
        "routes",
        "allow_non_finite",
        "intra_op_num_threads",
    }
)
"""Top-level keys every older registry wrote (later ones added more)."""

_FIRST: dict[str, object] = {
    "enabled": True,
    "max_batch_size": 64,
    "max_queue_delay_us": 0,
    "max_queue_size": 1024,
    "queue_timeout_us": 0,
}
_LINGER = {**_FIRST, "max_queue_delay_us": 10_000, "linger_us": 1000}
_INLINE = {**_LINGER, "inline_max_us": 100}
_ADAPTIVE = {**_INLINE, "adaptive": True}
LEGACY_REGISTRY_SECTIONS: tuple[Mapping[str, object], ...] = (_FIRST, _LINGER, _INLINE, _ADAPTIVE)
"""Every ``batching`` section an older registry wrote for a file that named no batching key."""


def registry_defaults(raw: Mapping[str, object]) -> frozenset[str]:
    """The ``batching`` keys of a decoded ``config.json`` that an older registry filled in.

    Empty for every file the rule does not recognise (see the module docstring).
    """
    section = raw.get("batching")
    if CONFIG_VERSION_KEY in raw or not isinstance(section, dict):
        return frozenset()
    if not raw.keys() >= REGISTRY_FIELDS:
        return frozenset()
    for defaults in LEGACY_REGISTRY_SECTIONS:
        if section.keys() == defaults.keys():
            return frozenset(
                key
                for key, value in section.items()
                if type(value) is type(defaults[key]) and value == defaults[key]
            )
    return frozenset()
