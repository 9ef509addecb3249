"""The cluster configs in docker/: valid for their tools, token auth everywhere, no exposed
dashboard, no secrets. (No Docker engine or cluster here: see docker/README.md.)"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO

DOCKER = REPO / "docker"


def test_cluster_launcher_config_validates_against_rays_schema():
    jsonschema = pytest.importorskip("jsonschema")
    import ray.autoscaler
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    config = yaml.safe_load((DOCKER / "cluster.yaml").read_text())
    jsonschema.validate(config, schema)
    run_options = " ".join(config["docker"]["run_options"])
    assert "RAY_AUTH_MODE=token" in run_options and "RAY_AUTH_TOKEN_PATH=" in run_options
    assert all("--dashboard-host=127.0.0.1" in c for c in config["head_start_ray_commands"] if "--head" in c)
    assert config["head_node_type"] in config["available_node_types"]


def _env(container) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_rayjob_authenticates_every_ray_container_from_a_secret():
    job = yaml.safe_load((DOCKER / "kuberay-rayjob.yaml").read_text())
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    spec = job["spec"]
    cluster = spec["rayClusterSpec"]
    containers = list(cluster["headGroupSpec"]["template"]["spec"]["containers"])
    for group in cluster["workerGroupSpecs"]:
        containers += group["template"]["spec"]["containers"]
        assert group["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
    containers += spec["submitterPodTemplate"]["spec"]["containers"]
    images = {c["image"] for c in containers}
    assert len(images) == 1
    for c in containers:
        env = _env(c)
        assert env["RAY_AUTH_MODE"] == "token"
        assert "secretKeyRef" in env["RAY_AUTH_TOKEN"]  # from a Secret, never inline
    assert cluster["rayVersion"] == "2.60.0"
    assert "symsweep run" in spec["entrypoint"]


def test_compose_cluster_has_token_auth_and_publishes_no_ports():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"head", "worker-1", "worker-2"}
    for name, svc in services.items():
        assert svc["environment"]["RAY_AUTH_MODE"] == "token"
        assert svc["environment"]["RAY_AUTH_TOKEN"].startswith("${RAY_AUTH_TOKEN:?")
        assert "ports" not in svc, name
        assert "results:/results" in svc["volumes"]
    assert "--dashboard-host=127.0.0.1" in services["head"]["command"]


def test_dockerfile_pins_ray_and_bakes_in_no_secret():
    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^FROM rayproject/ray:\$\{RAY_VERSION\}-\$\{PYTHON_TAG\}\$\{BASE_SUFFIX\}$", text, re.M)
    assert "ARG RAY_VERSION=2.60.0" in text and '"ray[tune]==${RAY_VERSION}"' in text
    for f in ("Dockerfile", "compose.yaml", "cluster.yaml", "kuberay-rayjob.yaml"):
        body = (DOCKER / f).read_text()
        assert not re.search(r"(AKIA[0-9A-Z]{16}|RAY_AUTH_TOKEN[=:]\s*[0-9a-f]{32})", body), f
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", "results", "data"} <= set(ignored)
