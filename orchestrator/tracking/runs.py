"""A sweep's MLflow runs (``SweepTracker``): one parent run per sweep, one nested child run per trial.

The MLflow calls live in this package only (``orchestrator.tracking``); names of what is
logged come from ``trainables.schema``. Why not Ray's ``MLflowLoggerCallback``: it logs one
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

Orphans: a trial the sweep driver started but Tune's state never recorded (the driver was
killed in between) is re-run under a new trial id by ``--resume``; its first run is closed as
KILLED with the reason at the end of the sweep (``end_sweep``), so no run stays RUNNING.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient

from trainables import schema as N

MAX_BATCH = 1000
EXPERIMENT_KIND, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"
"""The experiment's kind in MLflow 3 (a model-training experiment). MLflow 3.17's UI still
opens on its GenAI overview unless its global switch says Model training: the link
``xlt-sweep`` prints sets it (``orchestrator.cli._runs_page``)."""


def loggable_metrics(result: dict) -> dict[str, float]:
    """The trainable's own numeric metrics from a Tune result (bookkeeping dropped)."""
    out = {}
    for k, v in result.items():
        if not N.is_trainable_metric(k):
            continue
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        out[N.mlflow_name(k)] = float(v)
    return out


def metric_chunks(result: dict, now_ms: int | None = None) -> list[list]:
    """A Tune result as ``log_batch``-sized chunks of ``[key, value, timestamp_ms, step]`` rows,
    stamped now (a buffered report keeps the time it was made)."""
    metrics = loggable_metrics(result)
    step = int(metrics.get(N.GLOBAL_STEP, result.get("training_iteration", 0)))
    now = int(time.time() * 1000) if now_ms is None else now_ms
    rows = [[k, v, now, step] for k, v in metrics.items() if math.isfinite(v)]
    return [rows[i:i + MAX_BATCH] for i in range(0, len(rows), MAX_BATCH)]


class SweepTracker:
    """Picklable (Tune pickles callbacks with the experiment); the client is made lazily."""

    def __init__(self, tracking_uri: str, experiment: str, sweep_key: str,
                 artifact_root: str | None = None):
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.sweep_key = sweep_key
        self.artifact_root = artifact_root
        self.parent_id: str | None = None
        self.last_epoch: dict[str, tuple[float, int | None]] = {}
        """Per trial, the last ``epoch`` its run holds and the time stamp of the report that
        logged it (None: found in MLflow). A report of an epoch already logged (replayed by a
        resumed stage, or handed to Tune again by a retried trial) is skipped, all of its
        ``log_batch`` chunks alike (they share the report's time stamp), so a run's history
        holds each epoch once."""
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
                    self.experiment, artifact_location=location, tags={EXPERIMENT_KIND: MODEL_TRAINING})
            else:
                self._experiment_id = exp.experiment_id
        return self._experiment_id

    def _find(self, filter_string: str):
        runs = self.client.search_runs([self.experiment_id()], filter_string, max_results=2)
        return runs[0] if runs else None

    def start_sweep(self, plan: dict, reopen: bool = True) -> str:
        """Create the parent run, or re-attach to it on resume. Idempotent: a retried call
        after a partial failure completes the params and plan."""
        run = self._find(f"tags.`{N.TAG_ROLE}` = '{N.ROLE_SWEEP}' AND tags.`{N.TAG_SWEEP_KEY}` = '{self.sweep_key}'")
        if run is None:
            if not plan:
                raise KeyError(f"no MLflow parent run for sweep {self.sweep_key}")
            run = self.client.create_run(self.experiment_id(), run_name=self.experiment, tags={
                N.TAG_ROLE: N.ROLE_SWEEP, N.TAG_SWEEP_KEY: self.sweep_key})
        elif reopen and run.info.status != "RUNNING":
            self.client.update_run(run.info.run_id, status="RUNNING")
        if plan and not run.data.params:
            self.client.log_dict(run.info.run_id, plan, "plan.json")
            self.client.log_batch(run.info.run_id, params=[
                Param("trials", str(plan["trials"])), Param("cells", str(len(plan["cells"]))),
                Param("model", plan["model"]), Param("target_task", plan["target_task"]),
                Param("languages", N.param_list(plan["languages"])),
                Param("seeds", N.param_list(plan["seeds"]))])
        self.parent_id = run.info.run_id
        return self.parent_id

    def trial_run(self, trial_id: str, config: dict | None, reopen: bool = True) -> str:
        """The child run of a trial: found by tag if it exists, else created with its params.
        Idempotent (a retried call after a partial failure completes the params)."""
        run = self._find(f"tags.`{N.TAG_TRIAL_ID}` = '{trial_id}' AND "
                         f"tags.`{N.TAG_PARENT}` = '{self.parent_id}'")
        if run is not None:
            self.last_epoch[trial_id] = (run.data.metrics.get(N.EPOCH, 0.0), None)
            if reopen and run.info.status != "RUNNING":
                self.client.update_run(run.info.run_id, status="RUNNING")
            if config is None or run.data.params:
                return run.info.run_id
            self._trial_params(run.info.run_id, config)
            return run.info.run_id
        if config is None:
            raise KeyError(f"no MLflow run for trial {trial_id}")
        name = f"{config['cell']},seed={config['seed']}"
        run = self.client.create_run(self.experiment_id(), run_name=name, tags={
            N.TAG_PARENT: self.parent_id, N.TAG_ROLE: N.ROLE_TRIAL, N.TAG_TRIAL_ID: trial_id,
            N.TAG_CELL: config["cell_id"], N.TAG_CELL_NAME: config["cell"]})
        self._trial_params(run.info.run_id, config)
        return run.info.run_id

    def _trial_params(self, run_id: str, config: dict) -> None:
        params = [Param(k, v) for k, v in N.trial_params(config).items()]
        self.client.log_dict(run_id, config, "trial_config.json")
        self.client.log_batch(run_id, params=params)  # last: a run with params is complete

    def log_result(self, run_id: str, result: dict) -> int:
        """Log one report in batched calls; returns the number of metrics logged."""
        chunks = metric_chunks(result)
        for rows in chunks:
            self.log_metrics(run_id, rows)
        return sum(map(len, chunks))

    def log_metrics(self, run_id: str, rows: list, trial_id: str | None = None, epoch: float | None = None) -> bool:
        """One ``log_batch`` of ``[key, value, timestamp_ms, step]`` rows (at most MAX_BATCH);
        False (nothing logged) when the rows belong to a report of an epoch the trial's run
        already holds from another report. ``epoch``: the report's (default: its ``epoch`` row)."""
        if epoch is None:
            epoch = next((v for k, v, _, _ in rows if k == N.EPOCH), None)
        stamp = rows[0][2] if rows else None
        if trial_id is not None and epoch is not None:
            last, last_stamp = self.last_epoch.get(trial_id, (0.0, None))
            if epoch < last or (epoch == last and stamp != last_stamp):
                return False
            self.last_epoch[trial_id] = (epoch, stamp)
        self.client.log_batch(run_id, metrics=[Metric(k, v, ts, step) for k, v, ts, step in rows])
        return True

    def log_predictions(self, run_id: str, folder: Path) -> None:
        """The trial's ``predictions/`` and ``labels/`` folders (official evaluator layout), so
        ``xlt-score --predictions <run>/predictions --labels <run>/labels`` re-scores the run."""
        for sub in ("predictions", "labels"):
            if (Path(folder) / sub).is_dir():
                self.client.log_artifacts(run_id, str(Path(folder) / sub), sub)

    def end_trial(self, run_id: str, status: str, reason: str | None = None,
                  tags: dict | None = None, traceback: str | None = None) -> None:
        """Close a trial's run; ``reason`` (one line) is the tag ``xlt.error``, ``traceback``
        the artifact ``error.txt``."""
        all_tags = dict(tags or {})
        if reason:
            all_tags[N.TAG_ERROR] = reason[:4900]  # MLflow tag values are capped at 5000 chars
        if all_tags:
            self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in all_tags.items()])
        self.client.set_terminated(run_id, status=status)
        if traceback:  # last, and optional: the artifact store may be the storage that filled up
            try:
                self.client.log_text(run_id, traceback, "error.txt")
            except OSError as e:
                print(f"[xlt tracking] could not store error.txt of run {run_id}: {e.strerror or e}", file=sys.stderr)

    def tag(self, run_id: str, key: str, value) -> None:
        self.client.set_tag(run_id, key, str(value))

    def stage_cache_summary(self) -> dict[str, int]:
        """How the stage cache served this sweep, from its trial runs: ``stage_cache/trainings``
        (intermediate models this sweep trained), ``stage_cache/distinct_keys`` (intermediate
        configurations its trials used) and ``stage_cache/hits``."""
        children = self.client.search_runs([self.experiment_id()], f"tags.`{N.TAG_PARENT}` = '{self.parent_id}'",
                                           max_results=50000)
        used = [c for c in children if N.CACHE_HIT in c.data.metrics]
        keys = {c.data.params.get(N.CACHE_KEY) for c in children} - {None, "-"}
        trainings = sum(c.data.metrics[N.CACHE_HIT] == 0 for c in used)
        return {"stage_cache/trainings": trainings, "stage_cache/distinct_keys": len(keys),
                "stage_cache/hits": len(used) - trainings}

    def close_orphans(self, trial_ids: set[str]) -> list[str]:
        """Close as KILLED the child runs still RUNNING whose trial is not one of this sweep's
        (the driver died after starting it but before Tune recorded it; ``--resume`` re-ran
        its cell under a new trial id). Returns the closed runs' ids."""
        children = self.client.search_runs(
            [self.experiment_id()], f"tags.`{N.TAG_PARENT}` = '{self.parent_id}' AND "
            f"attributes.status = 'RUNNING'", max_results=50000)
        closed = []
        for c in children:
            if c.data.tags.get(N.TAG_TRIAL_ID) not in trial_ids:
                self.end_trial(c.info.run_id, "KILLED", reason=(
                    f"orphaned: trial {c.data.tags.get(N.TAG_TRIAL_ID)} was started by a sweep "
                    f"driver that died before Tune recorded it; --resume ran its cell again "
                    f"as another trial of this sweep"))
                closed.append(c.info.run_id)
        return closed

    def end_sweep(self, summary: dict, trial_ids: set[str] | None = None) -> dict:
        """Close the parent run with the sweep's summary (orphaned child runs first, when the
        sweep's trial ids are given); returns the stage-cache figures and ``orphaned_runs``."""
        if self.parent_id is None:
            return {}
        orphans = {"orphaned_runs": len(self.close_orphans(trial_ids))} if trial_ids is not None else {}
        summary = {**summary, **orphans}
        failed, interrupted = summary.get("failed", 0), summary.get("interrupted", False)
        summary = {**summary, **self.stage_cache_summary()}
        self.client.log_batch(self.parent_id, metrics=[
            Metric(k if "/" in k else f"sweep/{k}", float(v), int(time.time() * 1000), 0)
            for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)])
        self.client.log_text(self.parent_id, json.dumps(summary, indent=2), "summary.json")
        if interrupted:
            self.client.set_tag(self.parent_id, N.TAG_ERROR, f"interrupted: {summary.get('left', '?')} trial(s) "
                                                             f"left; xlt-sweep ... --resume continues")
        status = RunStatus.KILLED if interrupted else RunStatus.FAILED if failed else RunStatus.FINISHED
        self.client.set_terminated(self.parent_id, status=RunStatus.to_string(status))
        return {**orphans, **{k: v for k, v in summary.items() if k.startswith("stage_cache/")}}
