"""docs/api.md's examples run as written, against real servers.

Every fenced block of the doc's ``## Examples`` section is claimed by exactly one runner below
(a new example without a runner fails :func:`test_every_example_has_one_runner`). Each runner
takes the block's text from the doc and runs it as a user would, in a subprocess: the shell
blocks with bash (curl, grpcurl), the tritonclient block in the clients virtualenv (its protos
clash with ours in one process), the httpx block with our interpreter. The servers run on this
test's event loop on port 0: an inference server (HTTP + gRPC, model ``clf``: 4 features,
input ``input``, output ``probabilities``) with an inference token, so every example's
``Authorization`` header is checked, and a control plane whose admin token file is
``.modelyard/admin-token`` under the example's working directory.

The doc stays the source: the only edits are the documented addresses (``localhost:8000``,
``:8001``, ``:8080``) to the bound ports, the ``Bearer TOKEN`` placeholder of the Python
blocks to the server's token (shell blocks read ``$TOKEN`` from the environment) and
``grpcurl`` to the path of the installed binary; a missing placeholder fails the test instead
of running something else. Every answer is checked against the model's reference
probabilities. grpcurl comes from ``make install`` (in ``.venv-clients/bin``); without it the
grpcurl example is skipped locally and fails in CI.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import json
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import numpy as np
import pytest

from control_plane.server import ControlPlaneServer
from inference_server.app import InferenceServer
from modelyard.model_repository import publish_version
from modelyard.settings import ServerSettings, Settings
from tests.control_plane.conftest import control_plane_settings
from tests.inference_server.conftest import classifier_bytes, classifier_reference

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "api.md"
CLIENTS_BIN = ROOT / ".venv-clients" / "bin"
HTTP, GRPC, CONTROL = "localhost:8000", "localhost:8001", "localhost:8080"
PLACEHOLDER = "Bearer TOKEN"
TOKEN = "example-inference-token"
SEED = 1
X = np.array([[0.1, 0.2, 0.3, 0.4]], dtype=np.float32)
"""The row every example scores."""


@dataclass(frozen=True)
class Example:
    """One fenced block of the Examples section."""

    language: str
    text: str


def examples() -> list[Example]:
    """The fenced blocks of docs/api.md's ``## Examples`` section, in order."""
    doc = DOC.read_text(encoding="utf-8")
    start = doc.index("\n## Examples\n")
    end = doc.find("\n## ", start + 1)
    section = doc[start : end if end != -1 else len(doc)]
    blocks = re.findall(r"^```(\w+)\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    return [Example(language, text) for language, text in blocks]


RUNNERS: dict[str, Callable[[Example], bool]] = {
    "curl-inference": lambda e: (
        e.language == "bash" and e.text.startswith("curl") and HTTP in e.text
    ),
    "curl-control-plane": lambda e: (
        e.language == "bash" and e.text.startswith("curl") and CONTROL in e.text
    ),
    "grpcurl": lambda e: e.language == "bash" and e.text.startswith("grpcurl"),
    "tritonclient": lambda e: e.language == "python" and "import tritonclient" in e.text,
    "httpx": lambda e: e.language == "python" and "import httpx" in e.text,
}


def example(runner: str) -> str:
    """The text of the one example ``runner`` claims."""
    [claimed] = [e.text for e in examples() if RUNNERS[runner](e)]
    return claimed


def substitute(text: str, replacements: dict[str, str]) -> str:
    """``text`` with each documented placeholder replaced; every one must be there."""
    for old, new in replacements.items():
        assert old in text, f"the example no longer contains {old!r}:\n{text}"
        text = text.replace(old, new)
    return text


async def run(argv: list[str], cwd: Path, token: str = TOKEN) -> str:
    """Run ``argv`` (``TOKEN`` in its environment); its stdout, or fail with its stderr."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=os.environ | {"TOKEN": token},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(120):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, f"{argv[0]} exited {process.returncode}: {err.decode()}"
    return out.decode()


def bash(text: str) -> list[str]:
    """argv running ``text`` with bash, stopping at the first failing command."""
    return ["bash", "-euo", "pipefail", "-c", text]


def json_documents(text: str) -> list[Any]:
    """The JSON documents printed one after another (curl -s adds no newline)."""
    decoder, documents, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        document, at = decoder.raw_decode(text, at)
        documents.append(document)
    return documents


def assert_probabilities(got: Any) -> None:
    expected = classifier_reference(SEED, X)
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64).reshape(-1, 2), expected, 1e-5)


@pytest.fixture
async def inference(tmp_path: Path) -> AsyncIterator[InferenceServer]:
    """``clf`` version 1 on HTTP and gRPC (port 0), inference calls guarded by ``TOKEN``."""
    repo = tmp_path / "repo"
    repo.mkdir()
    publish_version(repo, "clf", 1, {"model.onnx": classifier_bytes(SEED)})
    settings = ServerSettings(
        model_repository=str(repo),
        grpc_port=0,
        http_port=0,
        metrics_port=None,
        control_mode="explicit",
        inference_token=TOKEN,
    )
    server = InferenceServer(Settings(server=settings))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def addresses(server: InferenceServer) -> dict[str, str]:
    return {HTTP: f"127.0.0.1:{server.http_port}", GRPC: f"127.0.0.1:{server.grpc_port}"}


def test_every_example_has_one_runner() -> None:
    found = examples()
    assert found, "docs/api.md has no examples"
    for block in found:
        claimants = [name for name, claims in RUNNERS.items() if claims(block)]
        assert len(claimants) == 1, f"{claimants} claim the example:\n{block.text}"
    for name, claims in RUNNERS.items():
        assert sum(map(claims, found)) == 1, f"{name} claims no example (or several)"


async def test_curl_inference_server(inference: InferenceServer, tmp_path: Path) -> None:
    text = substitute(example("curl-inference"), {HTTP: addresses(inference)[HTTP]})
    oip, simple = json_documents(await run(bash(text), tmp_path))
    outputs = {o["name"]: o for o in oip["outputs"]}
    assert outputs["probabilities"]["shape"] == [1, 2]
    assert_probabilities(outputs["probabilities"]["data"])
    assert (simple["model"], simple["version"]) == ("clf", "1")
    assert_probabilities(simple["probabilities"])
    # the header the example sends is what let it through
    refused = json_documents(await run(bash(text), tmp_path, token="wrong"))
    assert [answer["error"] for answer in refused] == ["invalid bearer token for inference"] * 2


async def test_curl_control_plane(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    settings = control_plane_settings(tmp_path, f"sqlite:///{tmp_path / 'modelyard.db'}")
    settings = msgspec.structs.replace(
        settings,
        control_plane=msgspec.structs.replace(
            settings.control_plane, admin_token_file=str(workdir / ".modelyard" / "admin-token")
        ),
    )
    plane = ControlPlaneServer(settings, port=0)
    await plane.start()
    try:
        text = substitute(example("curl-control-plane"), {CONTROL: urlsplit(plane.url).netloc})
        [me] = json_documents(await run(bash(text), workdir))
    finally:
        await plane.stop()
    assert (me["name"], me["role"]) == ("admin", "admin")


def grpcurl_bin() -> str:
    """The grpcurl that ``make install`` put in the clients venv (or one on PATH)."""
    found = shutil.which("grpcurl", path=os.pathsep.join([str(CLIENTS_BIN), os.defpath]))
    found = found or shutil.which("grpcurl")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("grpcurl is required in CI (make install puts it in .venv-clients)")
        pytest.skip("grpcurl is not installed (make install puts it in .venv-clients/bin)")
    return found


async def test_grpcurl(inference: InferenceServer, tmp_path: Path) -> None:
    grpcurl = grpcurl_bin()
    grpc = {GRPC: addresses(inference)[GRPC], "grpcurl ": f"{grpcurl} "}
    text = substitute(example("grpcurl"), grpc)
    [answer] = json_documents(await run(bash(text), ROOT))  # -import-path protos: the repo root
    names = [o["name"] for o in answer["outputs"]]
    index = names.index("probabilities")
    if "rawOutputContents" in answer:
        raw = base64.b64decode(answer["rawOutputContents"][index])
        assert_probabilities(np.frombuffer(raw, dtype="<f4"))
    else:
        assert_probabilities(answer["outputs"][index]["contents"]["fp32Contents"])


def printed_arrays(text: str) -> list[np.ndarray]:
    """The numpy arrays a script printed, one per ``[[...]]``."""
    arrays = re.findall(r"\[\[(.*?)\]\]", text, flags=re.DOTALL)
    return [np.array([float(v) for v in re.split(r"[\s\[\]]+", a.strip()) if v]) for a in arrays]


async def test_tritonclient(
    inference: InferenceServer, tmp_path: Path, clients_python: Path
) -> None:
    text = substitute(
        example("tritonclient"), addresses(inference) | {PLACEHOLDER: f"Bearer {TOKEN}"}
    )
    script = tmp_path / "example.py"
    script.write_text(text)
    printed = printed_arrays(await run([str(clients_python), str(script)], tmp_path))
    assert len(printed) == 2  # HTTP, then gRPC
    for probabilities in printed:
        assert_probabilities(probabilities)


async def test_httpx(inference: InferenceServer, tmp_path: Path) -> None:
    replacements = {f"http://{HTTP}": f"http://{addresses(inference)[HTTP]}"}
    text = substitute(example("httpx"), replacements | {PLACEHOLDER: f"Bearer {TOKEN}"})
    script = tmp_path / "example.py"
    script.write_text(text)
    answer = ast.literal_eval(await run([sys.executable, str(script)], tmp_path))
    assert (answer["model"], answer["version"]) == ("clf", "1")
    assert_probabilities(answer["probabilities"])
