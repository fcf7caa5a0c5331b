"""SweepTracker against a real MLflow sqlite store: batching, filtering, no duplicate runs."""

from __future__ import annotations

from unittest import mock

from mlflow.tracking import MlflowClient

from orchestrator.tracking import SweepTracker, loggable_metrics, resolve_tracking_uri

PLAN = {"trials": 1, "cells": [{}], "model": "m", "target_task": "xnli", "languages": ["en"],
        "seeds": [0]}
CONFIG = {"domain": "legal", "intermediate_tasks": ["contract_nli"], "robust_method": "rs_rp",
          "noise_magnitude": 0.05, "learning_rate": 1e-3, "seed": 0, "cell": "domain=legal",
          "cell_id": "abc123", "run": {"model": "m", "target_task": "xnli", "languages": ["en", "de"],
                                       "epochs": 1, "batch_size": 8, "max_length": 64,
                                       "max_examples": None, "data_dir": "builtin"}}
TUNE_RESULT = {"objective": 0.5, "epoch": 1, "global_step": 10, "xnli/de/accuracy": 0.4,
               "xnli/avg/accuracy": 0.45, "train/loss": 1.0, "timestamp": 17e8, "pid": 123,
               "time_this_iter_s": 1.0, "training_iteration": 1, "done": False,
               "config/seed": 0, "hostname": "h", "checkpoint_path": "/x", "trial_id": "t1"}


def test_only_the_trainables_metrics_are_logged():
    assert set(loggable_metrics(TUNE_RESULT)) == {
        "objective", "epoch", "global_step", "xnli/de/accuracy", "xnli/avg/accuracy", "train/loss"}


def test_default_uri_is_absolute_sqlite_under_storage(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(None, str(tmp_path)) == f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_tracking_uri(None, str(tmp_path)) == "http://127.0.0.1:5000"
    assert resolve_tracking_uri("sqlite:////x.db", str(tmp_path)) == "sqlite:////x.db"


def test_reattaching_never_duplicates_runs_and_one_batch_per_report(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    t = SweepTracker(uri, "exp", sweep_key=str(tmp_path / "exp"), artifact_root=str(tmp_path / "a"))
    parent = t.start_sweep(PLAN)
    run = t.trial_run("t1", CONFIG)
    with mock.patch.object(t.client, "log_batch", wraps=t.client.log_batch) as spy:
        assert t.log_result(run, TUNE_RESULT) == 6
        assert spy.call_count == 1
    t.end_trial(run, "FAILED", reason="boom")
    # A new tracker (as after --resume) finds both runs by tag instead of creating new ones.
    t2 = SweepTracker(uri, "exp", sweep_key=str(tmp_path / "exp"), artifact_root=str(tmp_path / "a"))
    assert t2.start_sweep(PLAN) == parent
    assert t2.trial_run("t1", CONFIG) == run
    t2.end_trial(run, "FINISHED")
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("exp").experiment_id])
    assert len(runs) == 2
    child = client.get_run(run)
    assert child.data.tags["mlflow.parentRunId"] == parent
    assert child.data.tags["xlt.cell"] == "abc123" and child.data.tags["xlt.role"] == "trial"
    assert child.data.params["intermediate_tasks"] == "contract_nli"
    assert child.data.params["languages"] == "en,de"
    assert child.data.metrics["xnli/de/accuracy"] == 0.4
    assert "pid" not in child.data.metrics and "timestamp" not in child.data.metrics
    assert child.info.status == "FINISHED"


def test_tracker_pickles_without_its_client(tmp_path):
    import pickle

    t = SweepTracker(f"sqlite:///{tmp_path}/m.db", "exp", sweep_key="k")
    t.client  # noqa: B018  (materialise the client)
    assert pickle.loads(pickle.dumps(t))._client is None
