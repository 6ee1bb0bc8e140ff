"""modelyard: the shared vocabulary of the modelyard platform.

This package holds what both planes (``control_plane`` and ``inference_server``) and the
``converters`` agree on: the core data models and enums, the settings, the error codes, the
storage layer and the command line. It imports none of the other modelyard packages; the
planes plug their commands and migrations in through entry points.
"""

from __future__ import annotations

__version__ = "0.1.0"
