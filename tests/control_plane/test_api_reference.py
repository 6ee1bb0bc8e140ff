"""``docs/api.md`` covers every route the control plane serves, and is up to date."""

from __future__ import annotations

import re

from control_plane.api_reference import BEGIN, DOC, END, render, routes, served_schema


async def test_the_generated_reference_is_current_and_complete() -> None:
    schema = await served_schema()
    document = DOC.read_text()
    block = document.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert block == render(schema).strip(), "run `python -m control_plane.api_reference`"
    documented = set(re.findall(r"^\| `([A-Z]+)` \| `([^`]+)` \|", block, re.M))
    assert documented == set(routes(schema)), "every served route documented, nothing stale"
