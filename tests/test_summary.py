"""The sweep's closing summary (``orchestrator.tuner.summarize``) from real Tune ``Result``
objects: status, reason, objective and the target task's score of each trial."""

from __future__ import annotations

import math

from configs import tune_config
from ray.tune import Result

from orchestrator.tuner import summarize
from trainables import schema as N


def _result(config: dict, tid: str, error: Exception | None = None, **metrics) -> Result:
    return Result(metrics={"trial_id": tid, "config": config, **metrics}, checkpoint=None, error=error,
                  path=f"/runs/s/trial_{tid}")


def test_the_summary_reads_each_trials_score_of_its_target_task():
    space = {"target": {"task": "pawsx", "languages": ["en", "de"], "data_dir": "hub"}}
    config = {**tune_config(space, seed=3), "cell": "domain=none,robust_method=none"}
    done = _result(config, "a", objective=0.81, done=True, **{N.task_score("pawsx"): 77.5, N.task_score("xnli"): 1.0})
    failed = _result(config, "b", error=RuntimeError("boom\nline two"), **{N.FATAL: "training diverged at step 3",
                                                                           N.OBJECTIVE: math.nan})
    running = _result(config, "c", objective=0.5, done=False)
    out = summarize([done, failed, running], N.OBJECTIVE, planned=4,
                    statuses={"a": "TERMINATED", "b": "ERROR", "c": "RUNNING"})
    rows = {r["trial"]: r for r in out["rows"]}
    assert rows["a"] == {"trial": "a", "cell": "domain=none,robust_method=none", "seed": 3, N.OBJECTIVE: 0.81,
                         "score": 77.5, "status": "FINISHED", "error": ""}  # pawsx's score, not another task's
    assert rows["b"]["status"] == "FAILED" and rows["b"]["error"] == "training diverged at step 3"
    assert rows["c"]["status"] == "INTERRUPTED" and rows["c"]["score"] is None
    assert (out["finished"], out["failed"], out["left"], out["interrupted"]) == (1, 1, 2, True)
