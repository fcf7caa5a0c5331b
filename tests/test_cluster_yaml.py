"""The two cluster files pass Ray's own autoscaler schema (offline: ``ray up`` has no dry run)
and keep the properties the README promises: current Ray image, the project installed at its
pins, drivers pinned to the head, GPU workers from zero, token auth on every node, dashboard and
MLflow on 127.0.0.1 only, a shared storage path."""

from __future__ import annotations

import re

import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from orchestrator.spec import parse_spec
from orchestrator.tuner import DRIVER_RESOURCE, autoscaler_limits, capacity
from tests.conftest import ROOT

FILES = ["cluster.yaml", "cluster.local.yaml"]


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def _commands(config: dict, *keys: str) -> str:
    return "\n".join(c for k in keys for c in config.get(k, []))


@pytest.mark.parametrize("name", FILES)
def test_cluster_file_is_valid_for_ray_up(name):
    validate_config(prepare_config(_load(name)))


@pytest.mark.parametrize("name", FILES)
def test_cluster_file_is_secure_and_shares_storage(name):
    config = _load(name)
    head = _commands(config, "head_start_ray_commands")
    workers = _commands(config, "worker_start_ray_commands")
    run_options = " ".join(config.get("docker", {}).get("run_options", []))
    # Token auth on every node: the container's environment or each `ray start`.
    for cmds in (head, workers):
        starts = [c for c in cmds.splitlines() if "ray start" in c] or [cmds]
        assert "RAY_AUTH_MODE=token" in run_options or all("RAY_AUTH_MODE=token" in c for c in starts)
    assert any(k.endswith(".ray/auth_token") for k in config["file_mounts"]), "token shipped to nodes"
    # Dashboard and MLflow bind to loopback (reached through `ray dashboard` / `ray attach -p`).
    assert "--dashboard-host=127.0.0.1" in head
    mlflow = " ".join(c for c in config["head_start_ray_commands"] if "mlflow server" in c)
    assert re.search(r"mlflow server --host 127\.0\.0\.1 --port \d+", mlflow)
    assert "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false nohup mlflow server" in mlflow  # no idle job runner
    assert "0.0.0.0" not in yaml.safe_dump(config)
    assert "sqlite:///" in mlflow and "--artifacts-destination /mnt/shared/" in mlflow
    # Trial drivers pinned to the head, no Train worker on it; project installed at its pins.
    assert f'"{DRIVER_RESOURCE}": 64' in head and "--num-cpus=0" in head
    assert "pip install -q -e" in _commands(config, "setup_commands")
    assert "/mnt/shared" in _commands(config, "initialization_commands")


def test_aws_file_uses_current_ray_image_and_scales_gpus_from_zero():
    config = _load("cluster.yaml")
    assert "ray-ml" not in config["docker"]["image"]
    assert config["docker"]["image"].startswith(f"rayproject/ray:{ray.__version__}-py311-gpu")
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"][DRIVER_RESOURCE] > 0 and head["resources"]["CPU"] == 0
    gpu = config["available_node_types"]["gpu_worker"]
    assert gpu["min_workers"] == 0 and gpu["resources"]["GPU"] >= 1
    assert gpu["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"


def test_concurrency_follows_the_gpus_the_cluster_can_grow_to(tmp_path):
    """On an autoscaling cluster no GPU exists when the sweep starts: concurrency comes from
    the cluster file (8 one-GPU spot nodes), not from what is up now."""
    grown = autoscaler_limits(ROOT / "cluster.yaml")
    assert grown["GPU"] == 8 and grown[DRIVER_RESOURCE] == 64
    one_gpu = parse_spec({"name": "s", "resources": {"gpus_per_worker": 1}})
    two_gpu = parse_spec({"name": "s", "resources": {"workers": 2, "gpus_per_worker": 1}})
    now = {"CPU": 0.0, DRIVER_RESOURCE: 64.0}  # only the head is up
    assert capacity(one_gpu, now, grown) == 8 and capacity(two_gpu, now, grown) == 4
    with pytest.raises(RuntimeError, match="needs 1 GPU"):
        capacity(one_gpu, now, {})
    a100 = parse_spec({"name": "s", "resources": {"gpus_per_worker": 1, "worker_resources": {"a100": 1}}})
    assert capacity(a100, now, {**grown, "a100": 3}) == 3  # the scarcest resource decides
    with pytest.raises(RuntimeError, match="needs 1 GPU, 1 a100"):
        capacity(a100, now, grown)
    assert autoscaler_limits(tmp_path / "absent.yaml") == {}
