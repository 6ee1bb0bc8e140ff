"""The REST reference of ``docs/api.md``, generated from the OpenAPI schema the app serves.

``python -m control_plane.api_reference`` rewrites the block between the markers in
``docs/api.md``; ``tests/control_plane/test_api_reference.py`` fails when the block is stale, so
the reference always lists every served route with its parameters and body.

>>> schema = {"paths": {"/v1/x/{id}": {"get": {"tags": ["x"], "description": "One x.",
...     "parameters": [{"name": "id", "in": "path", "required": True}],
...     "responses": {"200": {}, "404": {}}}}}}
>>> print(render(schema))
### x
<BLANKLINE>
| method | path | what | parameters | body | answers |
|---|---|---|---|---|---|
| `GET` | `/v1/x/{id}` | One x. | `id` (path) | — | 200, 404 |
<BLANKLINE>
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path
from typing import Any

BEGIN = "<!-- BEGIN GENERATED: control-plane routes (python -m control_plane.api_reference) -->"
END = "<!-- END GENERATED: control-plane routes -->"
DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
METHODS = ("get", "post", "put", "patch", "delete")


def routes(schema: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (METHOD, path) of the schema, sorted."""
    return sorted(
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in METHODS
    )


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|") or "—"


def _parameters(operation: dict[str, Any]) -> str:
    found = [
        f"`{p['name']}` ({p['in']}{'' if p.get('required') else ', optional'})"
        for p in operation.get("parameters", [])
        if p["in"] in ("path", "query")
    ]
    return ", ".join(found) or "—"


def _body(operation: dict[str, Any]) -> str:
    content = operation.get("requestBody", {}).get("content", {})
    for media in content.values():
        name = media.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
        # NOTE: Litestar names DTO bodies after the handler, with a counter that depends on
        # how many apps the process built; such a name is no contract, so it is not shown.
        if name and not re.search(r"RequestBody(_\d+)?$", name):
            return f"`{name}`"
        return "JSON"
    return "—"


def _what(operation: dict[str, Any]) -> str:
    text = operation.get("description") or operation.get("summary") or ""
    return _cell(text.strip().split("\n\n")[0])


def render(schema: dict[str, Any]) -> str:
    """Markdown tables of every route, one section per tag."""
    sections: dict[str, list[str]] = {}
    for method, path in routes(schema):
        operation = schema["paths"][path][method.lower()]
        tag = (operation.get("tags") or ["other"])[0]
        answers = ", ".join(sorted(operation.get("responses", {})))
        sections.setdefault(tag, []).append(
            f"| `{method}` | `{path}` | {_what(operation)} | {_parameters(operation)} | "
            f"{_body(operation)} | {answers} |"
        )
    lines: list[str] = []
    for tag in sorted(sections):
        lines += [f"### {tag}", "", "| method | path | what | parameters | body | answers |"]
        lines += ["|---|---|---|---|---|---|", *sections[tag], ""]
    return "\n".join(lines)


async def served_schema() -> dict[str, Any]:
    """The OpenAPI schema of a control plane built over a throw-away local store."""
    from control_plane.app import ControlPlaneServices, create_app
    from modelyard.settings import load_settings

    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(
            environ={
                "MODELYARD_DATABASE_URL": f"sqlite:///{folder}/modelyard.db",
                "MODELYARD_TRACKING_URI": f"sqlite:///{folder}/mlflow.db",
                "MODELYARD_CONTROL_PLANE_ADMIN_TOKEN_FILE": f"{folder}/admin-token",
                "MODELYARD_REGISTRY_MIRROR_TO_MLFLOW": "false",
                "MODELYARD_SCHEDULER_ENABLED": "false",
            },
            config_dir=None,
        )
        services = await ControlPlaneServices.open(settings)
        try:
            schema: dict[str, Any] = create_app(services).openapi_schema.to_schema()
        finally:
            await services.close()
    return schema


def updated(document: str, block: str) -> str:
    """``document`` with the generated block replaced by ``block``."""
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(document):
        raise ValueError(f"docs/api.md lacks the markers {BEGIN!r} ... {END!r}")
    return pattern.sub(lambda _: f"{BEGIN}\n\n{block}\n{END}", document)


def main() -> None:
    """Rewrite the generated block of ``docs/api.md``."""
    schema = asyncio.run(served_schema())
    DOC.write_text(updated(DOC.read_text(), render(schema)))
    print(f"{DOC}: {len(routes(schema))} control-plane routes")


if __name__ == "__main__":
    main()
