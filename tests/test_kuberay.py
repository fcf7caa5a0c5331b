"""``launchers/kubernetes``: the KubeRay manifests, validated offline against KubeRay's CRDs.

No Kubernetes cluster is reachable here, so nothing is applied. What is checked instead:
every RayCluster and RayJob document is valid under the OpenAPI v3 schema of KubeRay v1.7.0's
CustomResourceDefinition (``tests/fixtures/kuberay``, the operator's own files), strictly: an
unknown field anywhere is an error, as ``kubectl apply --validate=strict`` makes it (the API
server would otherwise prune it silently); and what the layout needs (token auth from a Secret,
the shared volume on every Ray container, GPU workers, the head's ``driver_slot`` and no
training on it, MLflow on 127.0.0.1, an entrypoint ``xlt-sweep`` accepts) holds."""

from __future__ import annotations

import copy
import functools
import gzip
import re
import shlex

import pytest
import yaml
from jsonschema import Draft202012Validator

from tests.conftest import ROOT

K8S = ROOT / "launchers" / "kubernetes"
CRDS = ROOT / "tests" / "fixtures" / "kuberay"


@functools.cache
def _schema(kind: str) -> dict:
    plural = {"RayCluster": "rayclusters", "RayJob": "rayjobs"}[kind]
    crd = yaml.safe_load(gzip.open(CRDS / f"ray.io_{plural}.yaml.gz", "rt", encoding="utf-8"))
    assert crd["spec"]["names"]["kind"] == kind
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return version["schema"]["openAPIV3Schema"]


def _unknown_fields(value, schema: dict, path: str = "") -> list[str]:
    """Fields the schema does not declare (a structural schema without
    ``x-kubernetes-preserve-unknown-fields`` prunes them: a typo would vanish silently)."""
    out: list[str] = []
    if isinstance(value, dict) and schema.get("type") == "object":
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            if props is not None and k in props:
                out += _unknown_fields(v, props[k], f"{path}.{k}")
            elif isinstance(extra, dict):
                out += _unknown_fields(v, extra, f"{path}.{k}")
            elif props is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
                out.append(f"{path}.{k}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            out += _unknown_fields(v, schema["items"], f"{path}[{i}]")
    return out


def problems(doc: dict) -> list[str]:
    """Every schema violation and unknown field of one RayCluster / RayJob document."""
    schema = _schema(doc["kind"])
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
              for e in Draft202012Validator(schema).iter_errors(doc)]
    # metadata is ObjectMeta (the CRD leaves it to the API server): check the name only
    name = doc.get("metadata", {}).get("name", "")
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) or len(name) > 63:
        errors.append(f"metadata.name: {name!r} is not a DNS-1123 label")
    spec_schema = {"type": "object", "properties": {"spec": schema["properties"]["spec"]}}
    return errors + [f"unknown field {p}" for p in _unknown_fields({"spec": doc["spec"]}, spec_schema)]


def _docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def _one(kind: str) -> dict:
    (doc,) = [d for n in ("raycluster.yaml", "rayjob.yaml") for d in _docs(n) if d["kind"] == kind]
    return doc


def _pinned(package: str) -> str:
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(rf'"{package}(?:\[[^\]]*\])?==([^"]+)"', text).group(1)


@pytest.mark.parametrize("kind", ["RayCluster", "RayJob"])
def test_manifests_are_valid_under_kuberays_crd_schemas(kind):
    doc = _one(kind)
    assert doc["apiVersion"] == "ray.io/v1"
    assert problems(doc) == []


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["spec"].update(workerGroupSpec=d["spec"].pop("workerGroupSpecs")),
     "unknown field .spec.workerGroupSpec"),
    (lambda d: d["spec"]["workerGroupSpecs"][0].update(maxReplicas="eight"), "'eight' is not of type 'integer'"),
    (lambda d: d["spec"]["authOptions"].update(mode="password"), "'password' is not one of"),
    (lambda d: d["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0].update(volumeMount=[]),
     "unknown field .spec.headGroupSpec.template.spec.containers[0].volumeMount"),
    (lambda d: d["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0].pop("name"),
     "'name' is a required property"),
])
def test_the_validation_catches_what_the_api_server_would_drop_or_refuse(mutate, expected):
    doc = copy.deepcopy(_one("RayCluster"))
    mutate(doc)
    assert any(expected in p for p in problems(doc)), problems(doc)


def test_the_cluster_runs_the_pinned_ray_with_token_auth_from_a_secret():
    cluster = _one("RayCluster")
    spec = cluster["spec"]
    assert spec["rayVersion"] == _pinned("ray")
    assert spec["authOptions"] == {"mode": "token", "secretName": "xlt-ray-token"}
    assert "kubectl create secret generic xlt-ray-token" in (K8S / "raycluster.yaml").read_text()
    assert f"FROM rayproject/ray:{_pinned('ray')}-py311-gpu" in (K8S / "Dockerfile").read_text()
    assert spec["headGroupSpec"]["serviceType"] == "ClusterIP"


def _ray_containers(spec: dict):
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    return [(g, g["template"]["spec"], g["template"]["spec"]["containers"][0]) for g in groups]


def test_every_ray_container_mounts_the_shared_volume_and_runs_one_image():
    cluster = _one("RayCluster")
    claims = {d["metadata"]["name"]: d for d in _docs("raycluster.yaml") if d["kind"] == "PersistentVolumeClaim"}
    assert claims["xlt-shared"]["spec"]["accessModes"] == ["ReadWriteMany"]
    images = set()
    for _, pod, container in _ray_containers(cluster["spec"]):
        volumes = {v["name"]: v for v in pod["volumes"]}
        mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/mnt/shared")
        assert volumes[mount["name"]]["persistentVolumeClaim"]["claimName"] == "xlt-shared"
        images.add(container["image"])
    assert len(images) == 1


def test_the_head_trains_nothing_and_holds_the_driver_slots_and_gpu_workers_scale_from_zero():
    from orchestrator.tuner import DRIVER_RESOURCE

    spec = _one("RayCluster")["spec"]
    head = spec["headGroupSpec"]["rayStartParams"]
    assert head["num-cpus"] == "0"
    assert yaml.safe_load(yaml.safe_load(head["resources"])) == {DRIVER_RESOURCE: 64}
    (gpu,) = spec["workerGroupSpecs"]
    assert gpu["minReplicas"] == 0 and gpu["maxReplicas"] >= 1 and spec["enableInTreeAutoscaling"]
    limits = gpu["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == 1


def test_mlflow_listens_on_loopback_beside_the_head_and_the_job_logs_there():
    spec = _one("RayCluster")["spec"]
    mlflow = next(c for c in spec["headGroupSpec"]["template"]["spec"]["containers"] if c["name"] == "mlflow")
    cmd = mlflow["command"]
    assert cmd[:2] == ["mlflow", "server"] and cmd[cmd.index("--host") + 1] == "127.0.0.1"
    port = cmd[cmd.index("--port") + 1]
    assert {"name": "MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "value": "false"} in mlflow["env"]
    job = _one("RayJob")
    args = shlex.split(job["spec"]["entrypoint"])
    assert args[args.index("--tracking-uri") + 1] == f"http://127.0.0.1:{port}"


def test_the_job_runs_xlt_sweep_on_this_cluster_with_arguments_it_accepts(tmp_path, monkeypatch):
    from orchestrator import cli

    job, cluster = _one("RayJob"), _one("RayCluster")
    assert job["spec"]["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}
    args = shlex.split(job["spec"]["entrypoint"])
    assert args[0] == "xlt-sweep"
    gpu_workers = cluster["spec"]["workerGroupSpecs"][0]["maxReplicas"]
    assert int(args[args.index("--max-concurrent-trials") + 1]) == gpu_workers
    assert args[args.index("--storage") + 1].startswith("/mnt/shared/")
    # the real CLI plans the sweep from the same arguments (from another directory: the shipped
    # space is found by name), without joining any cluster
    monkeypatch.chdir(tmp_path)
    assert cli.main([*args[1:], "--dry-run"]) == 0
