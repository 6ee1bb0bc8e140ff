"""Issue 14: hostile input against a running inference server on both protocols.

Generated model names (separators, ``..``, absolute paths, NUL, unicode), oversized numbers,
nested JSON, random bodies and headers. Every answer is a 4xx / INVALID_ARGUMENT-class one
naming the problem, never 5xx / INTERNAL / UNKNOWN; nothing outside the repository is loaded
or written; the server answers the next valid request; its memory stays bounded.
"""

from __future__ import annotations

import json
import os
import resource
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference_server.grpc._generated import grpc_service_pb2 as pb
from modelyard.model_repository import publish_version

from .conftest import classifier_bytes
from .live import RETRYABLE_OR_CLIENT, Live, good_json, live_server, statuses

HOSTILE = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
    max_examples=60,
)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A complete model outside the repository: it must never be served."""
    root = tmp_path / "outside"
    publish_version(root, "secret", 1, {"model.onnx": classifier_bytes(7)})
    return root


@pytest.fixture
def live(tmp_path: Path, outside: Path) -> Iterator[Live]:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "evil").symlink_to(outside / "secret", target_is_directory=True)
    with live_server(repo, max_header_bytes=8192, request_timeout_s=5.0) as server:
        yield server


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with (size, mtime_ns): what a write would change."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            stat = (Path(folder) / name).stat()
            out[str(Path(folder) / name)] = (stat.st_size, stat.st_mtime_ns)
    return out


def _names(outside: Path) -> st.SearchStrategy[str]:
    fixed = [
        "..",
        "../outside/secret",
        "../../etc",
        str(outside / "secret"),
        "/etc",
        "/",
        "evil",
        "clf/../clf",
        "clf/1",
        "clf\x00",
        "\x00",
        ".hidden",
        ".",
        "a" * 129,
        "café",
        "clf\n",
        " clf",
        "%2e%2e",
        "\\..\\",
    ]
    parts = st.sampled_from(["..", ".", "/", "\x00", "secret", "outside", "clf", "é", "%", "\\"])
    joined = st.lists(parts, min_size=1, max_size=6).map("".join)
    return st.one_of(st.sampled_from(fixed), joined, st.text(max_size=40))


@pytest.mark.slow
def test_hostile_model_names_never_leave_the_repository(live: Live, outside: Path) -> None:
    before = _tree(outside)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    @HOSTILE
    @given(name=_names(outside), action=st.sampled_from(["load", "unload"]))
    def attempt(name: str, action: str) -> None:
        answer = live.request("POST", f"/v2/repository/models/{quote(name, safe='')}/{action}")
        if name == "clf":
            assert answer.status_code == 200, answer.text
        else:
            assert answer.status_code in (400, 404), (name, answer.status_code, answer.text)
            message = answer.json()["error"]
            # httpx normalises '..' segments: the path then names no route at all.
            assert any(w in message for w in ("model name", "not found", "outside", "no route"))
        method = "RepositoryModelLoad" if action == "load" else "RepositoryModelUnload"
        request_type = getattr(pb, f"{method}Request")
        code, details, _ = live.grpc(method, request_type(model_name=name))
        if name != "clf":
            assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), (
                name,
                code,
                details,
            )
            assert details
        loaded = {slot.name for slot in live.server.manager.slots()}
        assert loaded <= {"clf"}, loaded

    attempt()
    # Raw paths are not URL-normalised by the server: '..' stays a (refused) name.
    for path in (b"/v2/repository/models/../load", b"/v2/repository/models/..%2Fevil/load"):
        answer = live.raw(b"POST " + path + b" HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
        assert statuses(answer), answer
        assert all(400 <= s < 500 for s in statuses(answer)), answer
    index = live.request("POST", "/v2/repository/index").json()
    assert {entry["name"] for entry in index} == {"clf"}
    assert live.request("POST", "/v2/models/evil/infer", json=good_json()).status_code == 404
    assert live.request("POST", "/v2/models/secret/infer", json=good_json()).status_code == 404
    assert _tree(outside) == before
    live.request("POST", "/v2/repository/models/clf/load")
    live.assert_serves()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 256 * 1024


def _nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


BIG = st.sampled_from([2**63, 2**64 + 1, 10**30, -(2**63) - 1])
HEADER_NAME = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"))
HEADER_VALUE = st.binary(max_size=64).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


Head = list[tuple[bytes, bytes]]
INFER = b"/v2/models/clf/infer"


def _nesting(draw: st.DrawFn, headers: Head) -> tuple[bytes, bytes]:
    depth = draw(st.sampled_from([64, 1000, 5000, 100_000]) | st.integers(1, 200_000))
    template = draw(
        st.sampled_from(
            [
                '{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":%s}]}',
                '{"inputs":[{"name":"input","shape":%s,"datatype":"FP32","data":[1]}]}',
                '{"parameters":{"a":%s},"inputs":[]}',
                "%s",
            ]
        )
    )
    return INFER, template.replace("%s", _nested(depth)).encode()


def _numbers(draw: st.DrawFn, headers: Head) -> tuple[bytes, bytes]:
    big = draw(BIG)
    choice = draw(st.sampled_from(["shape", "version", "length", "data", "header_length"]))
    request = good_json()
    path = INFER
    if choice in ("shape", "data"):
        request["inputs"][0][choice] = [big, 4] if choice == "shape" else [big] * 8
    elif choice == "version":
        path = b"/v2/models/clf/versions/%d/infer" % abs(big)
    else:
        name = b"content-length" if choice == "length" else b"inference-header-content-length"
        headers.append((name, b"%d" % abs(big)))
    return path, json.dumps(request).encode()


def _body(draw: st.DrawFn, headers: Head) -> tuple[bytes, bytes]:
    return INFER, draw(st.binary(max_size=2048))


def _headers(draw: st.DrawFn, headers: Head) -> tuple[bytes, bytes]:
    extra = draw(st.lists(st.tuples(HEADER_NAME, HEADER_VALUE), max_size=8))
    headers += [(n.encode(), v) for n, v in extra if n]
    return INFER, json.dumps(good_json()).encode()


def _huge_head(draw: st.DrawFn, headers: Head) -> tuple[bytes, bytes]:
    headers.append((b"x-big", b"v" * draw(st.integers(8192, 300_000))))
    return INFER, b""


HOSTILE_HTTP = {
    "nesting": _nesting,
    "numbers": _numbers,
    "body": _body,
    "headers": _headers,
    "huge_head": _huge_head,
}


@st.composite
def _hostile_http(draw: st.DrawFn) -> bytes:
    """One hostile raw HTTP request (or a few bytes posing as one)."""
    kind = draw(st.sampled_from([*sorted(HOSTILE_HTTP), "garbage"]))
    if kind == "garbage":
        return draw(st.binary(min_size=1, max_size=512)) + b"\r\n\r\n"
    headers: Head = [(b"host", b"x")]
    path, body = HOSTILE_HTTP[kind](draw, headers)
    if not any(n == b"content-length" for n, _ in headers):
        headers.append((b"content-length", b"%d" % len(body)))
    head = b"POST " + path + b" HTTP/1.1\r\n"
    head += b"".join(n + b": " + v + b"\r\n" for n, v in headers)
    return head + b"\r\n" + body


@pytest.mark.slow
def test_hostile_http_is_answered_4xx_and_the_server_keeps_serving(live: Live) -> None:
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seen: list[int] = []

    @HOSTILE
    @given(data=_hostile_http())
    def attempt(data: bytes) -> None:
        seen.append(len(data))
        answer = live.raw(data)
        codes = statuses(answer)
        assert all(c < 500 for c in codes), answer[:500]
        if codes and codes[-1] >= 400:
            assert b'{"error":"' in answer, answer[:500]

    attempt()
    assert len(seen) >= 30, "hypothesis ran too few examples to mean anything"
    live.assert_serves()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 256 * 1024


@st.composite
def _hostile_grpc(draw: st.DrawFn) -> pb.ModelInferRequest:
    """A ModelInferRequest with hostile names, numbers and contents."""
    name = draw(st.one_of(st.just("clf"), st.text(max_size=20)))
    version = draw(st.one_of(st.just(""), st.text(max_size=8), BIG.map(str)))
    shape = draw(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=4) | st.just([2**62, 2**62]))
    tensor = pb.ModelInferRequest.InferInputTensor(
        name=draw(st.sampled_from(["input", "", "x\x00"])),
        datatype=draw(st.sampled_from(["FP32", "INT64", "BYTES", "FP16", "", "fp32"])),
        shape=shape,
    )
    if draw(st.booleans()):
        tensor.contents.fp32_contents.extend(draw(st.lists(st.floats(width=32), max_size=8)))
    request = pb.ModelInferRequest(model_name=name, model_version=version, inputs=[tensor])
    if draw(st.booleans()):
        request.raw_input_contents.append(draw(st.binary(max_size=64)))
    return request


@pytest.mark.slow
def test_hostile_grpc_is_invalid_argument_class_and_the_server_keeps_serving(
    live: Live,
) -> None:
    @HOSTILE
    @given(request=_hostile_grpc())
    def attempt(request: pb.ModelInferRequest) -> None:
        code, details, _ = live.grpc("ModelInfer", request)
        if code != grpc.StatusCode.OK:
            assert code in RETRYABLE_OR_CLIENT, (code, details)
            assert details

    attempt()
    live.assert_serves()


ADMIN_TOKEN = "my-admin-secret-0123456789"
WRONG_TOKENS = st.one_of(
    st.sampled_from(
        [
            "",
            "Bearer",
            "Bearer ",
            f"Basic {ADMIN_TOKEN}",
            f"Bearer {ADMIN_TOKEN}x",
            f"Bearer {ADMIN_TOKEN[:-1]}",
            f"Bearer {ADMIN_TOKEN.upper()}",
            ADMIN_TOKEN,
        ]
    ),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(
        lambda t: "Bearer " + t
    ),
).map(str.strip)  # header values carry no surrounding blanks (clients refuse them)


@pytest.fixture
def guarded(tmp_path: Path, outside: Path) -> Iterator[Live]:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "evil").symlink_to(outside / "secret", target_is_directory=True)
    with live_server(repo, admin_token=ADMIN_TOKEN) as server:
        yield server


@pytest.mark.slow
def test_hostile_admin_calls_need_the_admin_token(guarded: Live, outside: Path) -> None:
    """With ``server.admin_token`` set, a load/unload without the exact token is 401 /
    UNAUTHENTICATED whatever the name; with it, hostile names are refused as before."""
    good = (("authorization", f"Bearer {ADMIN_TOKEN}"),)

    @HOSTILE
    @given(name=_names(outside) | st.just("clf"), token=WRONG_TOKENS)
    def attempt(name: str, token: str) -> None:
        headers = {"authorization": token} if token else {}
        path = f"/v2/repository/models/{quote(name, safe='')}/unload"
        answer = guarded.request("POST", path, headers=headers)
        if answer.status_code != 404 or "no route" not in answer.text:  # '..' normalised
            assert answer.status_code == 401, (name, token, answer.text)
            assert "token" in answer.json()["error"]
        metadata = (("authorization", token),) if token else ()
        request = pb.RepositoryModelUnloadRequest(model_name=name)
        code, details, _ = guarded.grpc("RepositoryModelUnload", request, metadata)
        assert code == grpc.StatusCode.UNAUTHENTICATED, (name, token, code, details)
        code, details, _ = guarded.grpc("RepositoryModelLoad", request_load(name), good)
        if name != "clf":
            assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), details
        assert {slot.name for slot in guarded.server.manager.slots()} == {"clf"}

    attempt()
    guarded.assert_serves()  # inference stays open without a token


def request_load(name: str) -> pb.RepositoryModelLoadRequest:
    return pb.RepositoryModelLoadRequest(model_name=name)
