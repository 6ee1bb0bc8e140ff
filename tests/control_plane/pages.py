"""The control plane's HTML pages as a browser draws them: headless Chromium renders a live
page's URL into its DOM and a screenshot, and the tests count painted pixels of a colour.

Chromium is a system package (``.ci/run`` installs it): without it a page test is skipped
locally and fails under ``CI=true``. Chromium is a blocking subprocess, so a test whose
control plane serves from its own event loop calls :func:`render` through
``asyncio.to_thread``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

WIDTH = 900


def chromium() -> str:
    """The Chromium executable (skip locally, fail in CI, when it is missing)."""
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return found


def render(url: str, out: Path, *, height: int) -> tuple[str, np.ndarray]:
    """The DOM after Chromium rendered ``url``, and a ``WIDTH`` x ``height`` screenshot of it
    (written to ``out``; the browser profile lives beside it)."""
    base = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={out.parent / 'chromium-profile'}",
    ]
    dom = subprocess.run(
        [*base, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    subprocess.run(
        [*base, f"--screenshot={out}", f"--window-size={WIDTH},{height}", url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return dom, image.imread(str(out))


def pixels_of(picture: np.ndarray, colour: str) -> int:
    """How many pixels of ``picture`` are ``colour`` (``#rrggbb``, within 2% per channel)."""
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    close = np.all(np.abs(picture[:, :, :3] - rgb) < 0.02, axis=2)
    return int(close.sum())
