"""cluster.yaml passes Ray's own autoscaler schema (offline: ``ray up`` has no dry run)."""

from __future__ import annotations

import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from tests.conftest import ROOT


def test_cluster_yaml_is_valid_for_ray_up():
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    validate_config(prepare_config(config))
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"]["driver_slot"] > 0, "trial drivers are pinned to the head"
    assert "ray-ml" not in config["docker"]["image"]
    assert config["docker"]["image"].startswith("rayproject/ray:2.60.0-")
    gpu = config["available_node_types"]["gpu_worker"]
    assert gpu["min_workers"] == 0
