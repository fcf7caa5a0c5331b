"""MLflow tracking of a sweep: one parent run per sweep, one nested child run per trial.

The only module that imports mlflow. Why not Ray's ``MLflowLoggerCallback``: it logs one
metric per call (slow on sqlite), logs Tune's bookkeeping (pid, timestamp, config/...) as
metrics, and creates a duplicate run left RUNNING after ``Tuner.restore``. ``SweepTracker``:

- finds-or-creates runs by tag, never by memory: the parent by ``xlt.sweep_key`` (the sweep's
  absolute storage path), a child by ``xlt.trial_id`` under that parent. A Tune retry or an
  ``xlt-sweep --resume`` re-attaches to the same run, so runs are never duplicated;
- logs each report with one ``log_batch`` call (chunks of 1000, MLflow's per-call limit),
  only the trainable's own metrics: ``objective``, ``epoch``, ``global_step`` and every key
  containing ``/`` (``xnli/sw/accuracy``, ``train/loss``, ``robust/...``; ``@`` becomes
  ``_at_``, as MLflow forbids it: ``lareqa/de/map_at_20``), never Tune's
  bookkeeping, with the trainable's own ``global_step`` as the step (Tune's
  ``training_iteration`` restarts after a resume);
- tags children with ``mlflow.parentRunId`` (nested in the UI), ``xlt.role``, ``xlt.cell`` (a
  deterministic id of the categorical choices) and ``xlt.cell_name``; a failed trial is
  marked FAILED with the reason in ``xlt.error``;
- logs each trial's ``intermediate/cache_key`` (param) and, on the parent at the end,
  ``stage_cache/trainings``, ``stage_cache/distinct_keys`` and ``stage_cache/hits``;
- attaches a finished trial's predictions and gold files (``predictions/``, ``labels/``, in
  the official XTREME layout) as artifacts, so any run can be re-scored with ``xlt-score``.

Tracking URI resolution: ``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else
``sqlite:///<absolute storage>/mlflow.db`` (a relative URI would give one database per trial,
because Tune changes into each trial's directory).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient

TRIAL_PARAMS = ("domain", "intermediate_tasks", "robust_method", "noise_magnitude",
                "learning_rate", "seed")
RUN_PARAMS = ("model", "target_task", "languages", "epochs", "batch_size", "max_length",
              "max_examples", "data_dir")
MAX_BATCH = 1000


def resolve_tracking_uri(cli_uri: str | None, storage: str) -> str:
    if cli_uri:
        return cli_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path(storage).resolve() / 'mlflow.db'}"


def loggable_metrics(result: dict) -> dict[str, float]:
    """The trainable's own numeric metrics from a Tune result (bookkeeping dropped)."""
    out = {}
    for k, v in result.items():
        if not (k in ("objective", "epoch", "global_step") or "/" in k) or k.startswith("config/"):
            continue
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        out[mlflow_name(k)] = float(v)
    return out


def mlflow_name(key: str) -> str:
    """MLflow metric names allow no ``@``: ``mewslix/ja/map@20`` is logged as ``map_at_20``."""
    return key.replace("@", "_at_")


def _param_str(v) -> str:
    if isinstance(v, list | tuple):
        return ",".join(map(str, v)) if v else "-"
    return str(v)


class SweepTracker:
    """Picklable (Tune pickles callbacks with the experiment); the client is made lazily."""

    def __init__(self, tracking_uri: str, experiment: str, sweep_key: str,
                 artifact_root: str | None = None):
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.sweep_key = sweep_key
        self.artifact_root = artifact_root
        self.parent_id: str | None = None
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None

    def __getstate__(self):
        return {**self.__dict__, "_client": None}

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def experiment_id(self) -> str:
        if self._experiment_id is None:
            exp = self.client.get_experiment_by_name(self.experiment)
            if exp is None:
                location = Path(self.artifact_root).resolve().as_uri() if self.artifact_root else None
                self._experiment_id = self.client.create_experiment(
                    self.experiment, artifact_location=location)
            else:
                self._experiment_id = exp.experiment_id
        return self._experiment_id

    def _find(self, filter_string: str):
        runs = self.client.search_runs([self.experiment_id()], filter_string, max_results=2)
        return runs[0] if runs else None

    def start_sweep(self, plan: dict) -> str:
        """Create the parent run, or re-attach to it on resume."""
        run = self._find(f"tags.`xlt.role` = 'sweep' AND tags.`xlt.sweep_key` = '{self.sweep_key}'")
        if run is None:
            run = self.client.create_run(self.experiment_id(), run_name=self.experiment, tags={
                "xlt.role": "sweep", "xlt.sweep_key": self.sweep_key})
            self.client.log_batch(run.info.run_id, params=[
                Param("trials", str(plan["trials"])), Param("cells", str(len(plan["cells"]))),
                Param("model", plan["model"]), Param("target_task", plan["target_task"]),
                Param("languages", _param_str(plan["languages"])),
                Param("seeds", _param_str(plan["seeds"]))])
            self.client.log_dict(run.info.run_id, plan, "plan.json")
        else:
            self.client.update_run(run.info.run_id, status="RUNNING")
        self.parent_id = run.info.run_id
        return self.parent_id

    def trial_run(self, trial_id: str, config: dict) -> str:
        """The child run of a trial: found by tag if it exists, else created with its params."""
        run = self._find(f"tags.`xlt.trial_id` = '{trial_id}' AND "
                         f"tags.`mlflow.parentRunId` = '{self.parent_id}'")
        if run is not None:
            if run.info.status != "RUNNING":
                self.client.update_run(run.info.run_id, status="RUNNING")
            return run.info.run_id
        name = f"{config['cell']},seed={config['seed']}"
        run = self.client.create_run(self.experiment_id(), run_name=name, tags={
            "mlflow.parentRunId": self.parent_id, "xlt.role": "trial", "xlt.trial_id": trial_id,
            "xlt.cell": config["cell_id"], "xlt.cell_name": config["cell"]})
        params = [Param(k, _param_str(config[k])) for k in TRIAL_PARAMS]
        params.append(Param("intermediate/cache_key", config.get("intermediate_cache_key") or "-"))
        params += [Param(k, _param_str(config["run"][k])) for k in RUN_PARAMS]
        self.client.log_batch(run.info.run_id, params=params)
        self.client.log_dict(run.info.run_id, config, "trial_config.json")
        return run.info.run_id

    def log_result(self, run_id: str, result: dict) -> int:
        """Log one report in batched calls; returns the number of metrics logged."""
        metrics = loggable_metrics(result)
        step = int(metrics.get("global_step", result.get("training_iteration", 0)))
        now = int(time.time() * 1000)
        batch = [Metric(k, v, now, step) for k, v in metrics.items() if math.isfinite(v)]
        for i in range(0, len(batch), MAX_BATCH):
            self.client.log_batch(run_id, metrics=batch[i:i + MAX_BATCH])
        return len(batch)

    def log_predictions(self, run_id: str, folder: Path) -> None:
        """The trial's ``predictions/`` and ``labels/`` folders (official evaluator layout), so
        ``xlt-score --predictions <run>/predictions --labels <run>/labels`` re-scores the run."""
        for sub in ("predictions", "labels"):
            if (Path(folder) / sub).is_dir():
                self.client.log_artifacts(run_id, str(Path(folder) / sub), sub)

    def end_trial(self, run_id: str, status: str, reason: str | None = None,
                  tags: dict | None = None) -> None:
        all_tags = dict(tags or {})
        if reason:
            all_tags["xlt.error"] = reason[-4900:]  # MLflow tag values are capped at 5000 chars
        if all_tags:
            self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in all_tags.items()])
        self.client.set_terminated(run_id, status=status)

    def tag(self, run_id: str, key: str, value) -> None:
        self.client.set_tag(run_id, key, str(value))

    def stage_cache_summary(self) -> dict[str, int]:
        """How the stage cache served this sweep, from its trial runs: ``stage_cache/trainings``
        (intermediate models this sweep trained), ``stage_cache/distinct_keys`` (intermediate
        configurations its trials used) and ``stage_cache/hits``."""
        children = self.client.search_runs([self.experiment_id()], f"tags.`mlflow.parentRunId` = '{self.parent_id}'",
                                           max_results=50000)
        used = [c for c in children if "intermediate/cache_hit" in c.data.metrics]
        keys = {c.data.params.get("intermediate/cache_key") for c in children} - {None, "-"}
        trainings = sum(c.data.metrics["intermediate/cache_hit"] == 0 for c in used)
        return {"stage_cache/trainings": trainings, "stage_cache/distinct_keys": len(keys),
                "stage_cache/hits": len(used) - trainings}

    def end_sweep(self, summary: dict) -> dict:
        """Close the parent run with the sweep's summary; returns the stage-cache figures."""
        if self.parent_id is None:
            return {}
        failed = summary.get("failed", 0)
        summary = {**summary, **self.stage_cache_summary()}
        self.client.log_batch(self.parent_id, metrics=[
            Metric(k if "/" in k else f"sweep/{k}", float(v), int(time.time() * 1000), 0)
            for k, v in summary.items() if isinstance(v, int | float)])
        self.client.log_text(self.parent_id, json.dumps(summary, indent=2), "summary.json")
        self.client.set_terminated(self.parent_id,
                                   status=RunStatus.to_string(RunStatus.FINISHED if not failed
                                                              else RunStatus.FAILED))
        return {k: v for k, v in summary.items() if k.startswith("stage_cache/")}
