"""The feature store's REST API over a real control plane (port 0), on both backends.

Every error case is followed by a good request: a bad request never breaks the server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest

from control_plane.server import ControlPlaneServer
from tests.control_plane.conftest import admin_token
from tests.control_plane.features.strategies import sample_definition, sample_update

_encoder = msgspec.json.Encoder()


def as_json(value: object) -> dict[str, Any]:
    """``value`` as the JSON object a client sends."""
    decoded: dict[str, Any] = msgspec.json.decode(_encoder.encode(value))
    return decoded


def definition(name: str, **overrides: object) -> dict[str, Any]:
    """A complete create body for ``name``."""
    return as_json(sample_definition(name, **overrides))


def update(**overrides: object) -> dict[str, Any]:
    """A complete update body."""
    return as_json(sample_update(**overrides))


@pytest.fixture
async def client(control_plane: ControlPlaneServer) -> AsyncIterator[httpx.AsyncClient]:
    # Changes need an API token (the app-wide guard); the admin token acts as "admin".
    headers = {"Authorization": f"Bearer {admin_token(control_plane)}"}
    async with httpx.AsyncClient(base_url=control_plane.url, headers=headers) as http:
        yield http


async def assert_serving(client: httpx.AsyncClient) -> None:
    """A good request right after a bad one."""
    response = await client.get("/v1/features", params={"include_deprecated": True})
    assert response.status_code == 200, response.text


def assert_error(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "code"}
    for word in words:
        assert word in body["error"], (word, body)


async def test_every_endpoint_round_trip(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/features", json=definition("age"))
    assert created.status_code == 201, created.text
    first = created.json()
    assert first["version"] == 1
    assert len(first["id"]) == 32
    assert first["created_by"] == "admin"
    assert {k: first[k] for k in definition("age")} == definition("age")

    updated = await client.put("/v1/features/age", json=update(owner="ml-platform"))
    assert updated.status_code == 200, updated.text
    second = updated.json()
    assert (second["version"], second["id"], second["owner"]) == (2, first["id"], "ml-platform")

    assert (await client.get("/v1/features/age")).json() == second
    assert (await client.get("/v1/features/age", params={"version": 1})).json() == first
    versions = await client.get("/v1/features/age/versions")
    assert versions.status_code == 200
    assert versions.json() == [first, second]

    listed = (await client.get("/v1/features", params={"owner": "ml-platform"})).json()
    assert listed == {"items": [second], "total": 1, "limit": 100, "offset": 0}

    deprecated = await client.delete("/v1/features/age")
    assert deprecated.status_code == 200, deprecated.text
    assert deprecated.json() == second | {"deprecated": True}
    assert (await client.get("/v1/features")).json()["items"] == []
    hidden = await client.get("/v1/features", params={"include_deprecated": "true"})
    assert [f["name"] for f in hidden.json()["items"]] == ["age"]
    assert (await client.get("/v1/features/age", params={"version": 1})).json()["deprecated"]


async def test_listing_filters_and_pages(client: httpx.AsyncClient) -> None:
    for name, entity, tags in [
        ("a1", "customer", ["x"]),
        ("a2", "customer", ["y"]),
        ("b1", "store", ["x"]),
        ("a3", "store", []),
    ]:
        body = definition(name, entity=entity, tags=tuple(tags))
        assert (await client.post("/v1/features", json=body)).status_code == 201

    async def names(**params: Any) -> list[str]:
        response = await client.get("/v1/features", params=params)
        assert response.status_code == 200, response.text
        return [feature["name"] for feature in response.json()["items"]]

    assert await names(entity="customer") == ["a1", "a2"]
    assert await names(tag="x") == ["a1", "b1"]
    assert await names(prefix="a", entity="store") == ["a3"]
    assert await names(owner="risk-team", limit=2, offset=1) == ["a2", "a3"]
    page = (await client.get("/v1/features", params={"limit": 2, "offset": 2})).json()
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 2)


async def test_404_unknown_feature(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/v1/features/ghost"),
        ("GET", "/v1/features/ghost/versions"),
        ("DELETE", "/v1/features/ghost"),
    ]:
        assert_error(await client.request(method, path), 404, "feature 'ghost' not found")
        await assert_serving(client)
    assert_error(await client.put("/v1/features/ghost", json=update()), 404, "'ghost'")
    await assert_serving(client)


async def test_404_unknown_version(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/features", json=definition("tenure"))).status_code == 201
    response = await client.get("/v1/features/tenure", params={"version": 7})
    assert_error(response, 404, "feature 'tenure' version 7 not found")
    assert (await client.get("/v1/features/tenure", params={"version": 1})).status_code == 200


async def test_409_duplicate_create(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/features", json=definition("spend"))).status_code == 201
    duplicate = await client.post("/v1/features", json=definition("spend", owner="other"))
    assert_error(duplicate, 409, "'spend' already exists")
    assert (await client.get("/v1/features/spend")).json()["owner"] == "risk-team"
    assert (await client.post("/v1/features", json=definition("spend2"))).status_code == 201


async def test_409_new_version_of_a_deprecated_feature(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/features", json=definition("old"))).status_code == 201
    assert (await client.delete("/v1/features/old")).status_code == 200
    assert_error(await client.put("/v1/features/old", json=update()), 409, "deprecated")
    assert (await client.get("/v1/features/old/versions")).status_code == 200


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"name": "x", "dtype": "int64"}, ["missing required fields", "description, entity"]),
        (definition("x", owner="  "), ["missing required fields: owner"]),
        (definition("x") | {"dtype": "complex"}, ["dtype"]),
        (definition("x") | {"colour": "red"}, ["unknown field", "colour"]),
        (definition("x") | {"name": "../etc"}, ["name"]),
        (definition("x") | {"tags": ["ok", "ok"]}, ["repeats tags: ok"]),
        ([definition("x")], ["JSON object"]),
    ],
)
async def test_422_invalid_definition(
    client: httpx.AsyncClient, body: Any, words: list[str]
) -> None:
    assert_error(await client.post("/v1/features", json=body), 422, *words)
    assert (await client.get("/v1/features/x")).status_code == 404, "nothing was stored"
    assert (await client.post("/v1/features", json=definition("x"))).status_code == 201


async def test_422_invalid_update_and_query(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/features", json=definition("clicks"))).status_code == 201
    partial = {"description": "only this"}
    assert_error(
        await client.put("/v1/features/clicks", json=partial),
        422,
        "dtype, entity, owner, transformation, source",
    )
    assert_error(
        await client.put("/v1/features/clicks", json=update() | {"name": "renamed"}), 422, "name"
    )
    assert_error(await client.get("/v1/features/clicks", params={"version": 0}), 422, "version")
    assert_error(await client.get("/v1/features", params={"limit": 5000}), 422, "limit")
    assert (await client.put("/v1/features/clicks", json=update())).json()["version"] == 2


async def test_malformed_json(client: httpx.AsyncClient) -> None:
    headers = {"content-type": "application/json"}
    for method, path in [("POST", "/v1/features"), ("PUT", "/v1/features/anything")]:
        response = await client.request(method, path, content=b'{"name": "x",', headers=headers)
        assert_error(response, 422, "not valid JSON")
        await assert_serving(client)
    assert (await client.post("/v1/features", json=definition("fine"))).status_code == 201


async def test_openapi_documents_the_endpoints(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    assert {"/v1/features", "/v1/features/{name}", "/v1/features/{name}/versions"} <= set(
        schema["paths"]
    )
    item = schema["paths"]["/v1/features/{name}"]
    assert {"get", "put", "delete"} <= set(item)
    create = schema["paths"]["/v1/features"]["post"]
    assert "201" in create["responses"]
    ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body_schema = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(body_schema["required"]) == {
        "name",
        "description",
        "dtype",
        "entity",
        "owner",
        "transformation",
        "source",
    }


async def test_changes_appear_in_the_audit_log(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/features", json=definition("audited"))).status_code == 201
    assert (await client.put("/v1/features/audited", json=update())).status_code == 200
    assert (await client.delete("/v1/features/audited")).status_code == 200
    events = (await client.get("/v1/audit", params={"entity_kind": "feature"})).json()
    assert [(e["action"], e["entity"]) for e in events] == [
        ("create", "audited/1"),
        ("update", "audited/2"),
        ("deprecate", "audited/2"),
    ]
