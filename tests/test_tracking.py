"""SweepTracker against a real MLflow sqlite store: batching, filtering, no duplicate runs."""

from __future__ import annotations

import os
import time
from unittest import mock

from configs import tune_config
from mlflow.tracking import MlflowClient

from orchestrator.tracking import (
    Outbox,
    SweepTracker,
    credentials_to_env,
    loggable_metrics,
    metric_chunks,
    redact_uri,
    resolve_tracking_uri,
)

PLAN = {"trials": 1, "cells": [{}], "model": "m", "target_task": "xnli", "languages": ["en"],
        "seeds": [0]}
CONFIG = {**tune_config({"target": {"languages": ["en", "de"]},
                         "intermediate": {"domains": ["legal"], "tasks": {"legal": ["contract_nli"]}, "data_dir": "/d"},
                         "robust": {"methods": ["rs_rp"], "noise_magnitude": 0.05}},
                        domain="legal", method="rs_rp", magnitude=0.05, learning_rate=1e-3, seed=0),
          "cell": "domain=legal", "cell_id": "abc123"}
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


def test_uri_credentials_move_to_the_environment(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    assert credentials_to_env("http://bob:s%40cret@10.0.0.1:5000/x") == "http://10.0.0.1:5000/x"
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "bob" and os.environ["MLFLOW_TRACKING_PASSWORD"] == "s@cret"
    assert credentials_to_env("sqlite:////x.db") == "sqlite:////x.db"


def test_printed_uris_hide_credentials():
    assert redact_uri("http://bob:s3cret@10.0.0.1:5000") == "http://***@10.0.0.1:5000"
    assert redact_uri("https://h/mlflow?token=abc") == "https://h/mlflow?***"
    assert redact_uri("sqlite:////x/mlflow.db") == "sqlite:////x/mlflow.db"


def test_outbox_keeps_calls_while_mlflow_is_down_and_delivers_them_in_order_later(tmp_path, monkeypatch):
    """Nothing listens on the first URI: every call is kept (with the time it was made), saved
    to disk at the end, and a later process delivers all of it to a real store, in order."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    spill = str(tmp_path / "outbox.json")
    dead = Outbox(SweepTracker("http://127.0.0.1:9", "exp", sweep_key="k"), spill)
    assert not dead.submit("sweep", plan=PLAN)
    dead.submit("trial", "t1", config=CONFIG)
    made_at = int(time.time() * 1000) - 60_000  # a report made a minute ago keeps its time
    for step, result in enumerate([TUNE_RESULT, {**TUNE_RESULT, "epoch": 2, "global_step": 20}]):
        for rows in metric_chunks(result, now_ms=made_at + step):
            dead.submit("metrics", "t1", rows=rows)
    dead.submit("end", "t1", status="FINISHED", tags={"xlt.stopped_early": "false"})
    assert len(dead.pending) == 5 and not dead.flush()
    assert dead.save() == spill

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    live = Outbox(SweepTracker(uri, "exp", sweep_key="k", artifact_root=str(tmp_path / "a")), spill)
    assert live.load() == 5 and live.flush() and live.save() is None
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("exp").experiment_id])
    child = next(r for r in runs if r.data.tags.get("xlt.role") == "trial")
    assert child.info.status == "FINISHED" and child.data.params["domain"] == "legal"
    history = client.get_metric_history(child.info.run_id, "epoch")
    assert [(m.step, m.value, m.timestamp) for m in history] == [(10, 1.0, made_at), (20, 2.0, made_at + 1)]


def test_outbox_drops_a_call_the_server_rejects_and_goes_on(tmp_path):
    box = Outbox(SweepTracker(f"sqlite:///{tmp_path}/m.db", "exp", sweep_key="k", artifact_root=str(tmp_path)))
    box.submit("sweep", plan=PLAN)
    box.submit("trial", "t1", config=CONFIG)
    assert box.submit("tag", "t1", key="x" * 300, value="too long a key")  # rejected: not retried
    assert box.submit("end", "t1", status="FINISHED")
    assert box.stats["dropped"] == 1 and "tag t1" in box.errors[0]


def test_a_call_that_keeps_failing_while_the_server_answers_is_dropped_not_retried_forever(tmp_path, monkeypatch):
    """An error MLflow reports with its default (transient-looking) code, e.g. an upload a proxy
    refuses, must not block every later call: after a few attempts with the server answering
    other requests, it is dropped and counted."""
    from mlflow.exceptions import MlflowException

    box = Outbox(SweepTracker(f"sqlite:///{tmp_path}/m.db", "exp", sweep_key="k", artifact_root=str(tmp_path)))
    box.submit("sweep", plan=PLAN)
    box.submit("trial", "t1", config=CONFIG)
    monkeypatch.setattr(box.tracker, "log_metrics", mock.Mock(side_effect=MlflowException("413 from a proxy")))
    box.delay = 0.01
    box.submit("metrics", "t1", rows=[["objective", 1.0, 0, 1]])
    assert box.submit("end", "t1", status="FINISHED") is False  # still backing off
    assert box.flush(wait_s=10) and box.stats["dropped"] == 1
    assert box.tracker.log_metrics.call_count == 5
    client = MlflowClient(f"sqlite:///{tmp_path}/m.db")
    run = client.search_runs([client.get_experiment_by_name("exp").experiment_id], "tags.`xlt.trial_id` = 't1'")[0]
    assert run.info.status == "FINISHED"  # the calls behind it were delivered


def test_each_epoch_is_logged_once_all_chunks_of_a_report_alike(tmp_path):
    """A replayed report (a resumed stage, a retried trial) is skipped whole, even when it
    spans several log_batch chunks of which only one carries ``epoch``; the chunks of the
    first report of an epoch are all logged."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    t = SweepTracker(uri, "exp", sweep_key=str(tmp_path / "exp"), artifact_root=str(tmp_path / "a"))
    t.start_sweep(PLAN)
    run = t.trial_run("t1", CONFIG)
    big = {**TUNE_RESULT, **{f"xnli/l{i}-m/accuracy": float(i) for i in range(1500)}}  # 2 chunks

    def deliver(result, now_ms):
        return [t.log_metrics(run, rows, "t1", result["epoch"]) for rows in metric_chunks(result, now_ms)]

    assert deliver(big, 1000) == [True, True]
    assert deliver(big, 2000) == [False, False]  # the same epoch again, replayed
    assert deliver({**big, "epoch": 2, "global_step": 20}, 3000) == [True, True]
    client = MlflowClient(uri)
    assert [m.value for m in client.get_metric_history(run, "epoch")] == [1.0, 2.0]
    assert len(client.get_metric_history(run, "xnli/l1400-m/accuracy")) == 2  # a second-chunk key: once per epoch
    t2 = SweepTracker(uri, "exp", sweep_key=str(tmp_path / "exp"), artifact_root=str(tmp_path / "a"))
    t2.start_sweep(PLAN)
    assert t2.trial_run("t1", CONFIG) == run  # after --resume: what MLflow holds decides
    assert [t2.log_metrics(run, rows, "t1", 2) for rows in metric_chunks({**big, "epoch": 2}, 4000)] == [False, False]
