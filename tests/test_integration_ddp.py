"""DDP determinism: a 2-worker Ray Train stage (gloo on CPU) run twice with the same seed gives
bit-for-bit the same weights, training losses and robust diagnostics, for the methods that
draw random numbers (RS-RP noise, FreeLB's random start) and the FreeLB path that back-
propagates K times under ``no_sync``, on the contextual-embedding site, with best-dev model
selection (rank 0 decides, every rank keeps the same weights)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import ray
import torch
from safetensors.torch import load_file

from orchestrator.space import Cell, run_config, trial_choices
from orchestrator.spec import parse_spec
from trainables.executors import TrainExecutor
from trainables.models import BUILTIN_BUILD
from trainables.trial import finetune_config

pytestmark = pytest.mark.integration

METHODS = {
    "adversarial": (0.05, {"steps": 2, "freelb": True, "random_init": True, "layer": 1, "adv_weight": 0.7}),
    "rs_rp": (0.05, {"distribution": "gaussian", "copies": 2}),
}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _stage(tmp, method: str, attempt: int) -> tuple[dict, dict, dict]:
    magnitude, options = METHODS[method]
    spec = parse_spec({"name": "ddp", "target": {"languages": ["en", "de"]},
                       "robust": {"methods": [method], "noise_magnitude": magnitude, "options": {method: options}},
                       "training": {"epochs": 2, "batch_size": 16, "max_length": 48, "max_examples": 96,
                                    "learning_rate": 1e-3, "select": "best"},
                       "resources": {"workers": 2, "cpus_per_worker": 1}})
    run = replace(run_config(spec, str(tmp / f"{method}-{attempt}")), assets=str(tmp / "assets"))  # one model
    choices = trial_choices(run, "none", method, magnitude, 1e-3, 3, [], Cell("none", method, None, None))
    cfg = finetune_config(run, choices, f"{method}-{attempt}")
    result = TrainExecutor().fit(cfg, run, f"ddp-{method}-{attempt}", report_to_tune=False)
    ckpt = result.checkpoint
    weights = load_file(f"{ckpt}/encoder/model.safetensors")
    head = torch.load(f"{ckpt}/head.pt")
    return weights, head, result.metrics


@pytest.mark.parametrize("method", sorted(METHODS))
def test_two_worker_ddp_stage_is_bit_for_bit_reproducible(local_ray, tmp_path, method):
    w1, h1, m1 = _stage(tmp_path, method, 1)
    w2, h2, m2 = _stage(tmp_path, method, 2)
    assert w1.keys() == w2.keys() and all(torch.equal(w1[k], w2[k]) for k in w1)
    assert all(torch.equal(h1[k], h2[k]) for k in h1)
    keys = [k for k in m1 if k.startswith(("train/loss", "robust/", "objective", "xnli/", "select/"))]
    assert m1["select/best_epoch"] in (1, 2)  # best-dev selection agreed across both ranks
    assert any(k.startswith("robust/") for k in keys) and "train/loss" in keys
    assert {k: m1[k] for k in keys} == {k: m2[k] for k in keys}
    base = load_file(f"{tmp_path}/assets/models/tiny-bert-v{BUILTIN_BUILD}/model.safetensors")
    assert any(not torch.equal(base[k], w1[k]) for k in base if k in w1)  # it did train
