"""A whole trial's stages in this process (``trainables.trial.run_stages`` on the in-process
executors), without Ray: the path ``executor: trial`` and the benchmarks' baseline take, from
the typed RunConfig and TrialChoices a sweep hands a trial to the checkpoint and metrics it keeps.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from configs import trial

from trainables import schema as N
from trainables.executors import LocalExecutor, TrialExecutor, manifest_path
from trainables.trial import run_stages, stage_configs

LANGS = ["en", "de", "zh"]


def _space(tiny_model: str, demo_dir: Path) -> dict:
    return {"model": {"name": tiny_model},
            "target": {"task": "xnli", "languages": LANGS, "data_dir": str(demo_dir)},
            "intermediate": {"domains": ["none", "general"], "tasks": {"general": ["mnli"]}, "epochs": 1,
                             "learning_rate": 1e-3, "max_examples": 64},
            "robust": {"methods": ["none", "adversarial"], "noise_magnitude": {"adversarial": 0.05}},
            "training": {"epochs": 1, "batch_size": 16, "eval_batch_size": 64, "max_length": 48,
                         "max_examples": 96},
            "resources": {"cpus_per_worker": 1}}


def test_every_stage_of_a_trial_runs_in_process(tiny_model, demo_dir, tmp_path):
    run, choices = trial(_space(tiny_model, demo_dir), str(tmp_path / "runs"), domain="general",
                         method="adversarial", magnitude=0.05, learning_rate=2e-3,
                         cache_root=str(tmp_path / "cache"))
    stages = stage_configs(run, choices, "t0")
    assert list(stages) == ["intermediate", "finetune"]
    assert stages["finetune"].robust.method == "adversarial" and stages["finetune"].robust.magnitude == 0.05
    assert stages["intermediate"].schedule.learning_rate == 1e-3  # the intermediate section's own rate

    done = run_stages(run, choices, "t0", LocalExecutor())
    metrics = done["metrics"]
    assert metrics[N.EPOCH] == 1 and math.isfinite(metrics[N.OBJECTIVE])
    for lang in LANGS:
        assert 0.0 <= metrics[N.lang_metric("xnli", lang, "accuracy")] <= 100.0  # the official scale
    ckpt = Path(done["checkpoint"])
    assert (ckpt / "encoder" / "config.json").is_file() and (ckpt / "head.pt").is_file()
    assert Path(stages["intermediate"].encoder).name != "encoder"  # started from the sweep's model
    assert (tmp_path / "runs" / "train" / "intermediate-t0").is_dir()  # no stage cache: trained here
    manifest = manifest_path(run.storage, "t0", "finetune")
    assert json.loads(manifest.read_text())["metrics"][N.OBJECTIVE] == metrics[N.OBJECTIVE]


def test_the_in_process_executors_declare_what_they_do():
    local, in_trial = LocalExecutor(), TrialExecutor()
    assert (local.shares_stage_cache, local.reports_to_tune, local.retains) == (False, False, False)
    assert (in_trial.shares_stage_cache, in_trial.reports_to_tune, in_trial.retains) == (True, True, True)
