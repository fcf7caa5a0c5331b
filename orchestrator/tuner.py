"""Ray Tune setup: the only ``ray.tune`` importer on the driver side.

- Search: ``OptunaSearch`` over the define-by-run space of ``orchestrator.space`` with every
  (cell, seed, sample) enqueued, wrapped in a ``ConcurrencyLimiter``; ``num_samples`` equals
  the number of enqueued points, so each cell runs exactly once per seed and sample.
- Scheduler: ASHA on the trainable's own ``epoch`` (Tune's ``training_iteration`` restarts at
  1 when a Train run resumes), or FIFO.
- Resources: with ``resources.executor: train`` Tune does not reserve the Train workers'
  resources, so ``max_concurrent_trials`` is what the cluster can hold (GPUs, or CPUs,
  divided by one trial's need) unless the space file says otherwise, and the per-trial driver
  function asks for a sliver of the custom ``driver_slot`` resource (the head node has it, so
  on a cluster drivers stay on the on-demand head and GPU workers only run Train workers); a
  local Ray gets the resource too. With ``executor: trial`` (one worker, the default then) the
  trial's process is the worker: Tune reserves its CPUs/GPUs and places it on a GPU node.
- Failures: Ray Train restarts a stage's worker group from its last checkpoint when a worker
  or its node dies (``search.worker_failures``); ``FailureConfig(max_failures)`` retries a
  trial whose driver failed (e.g. its Train controller went with a node), and the retried
  driver finds its stages' checkpoints and manifests. An interrupted sweep continues with
  ``Tuner.restore`` (``--resume``). A diverged trial fails at once on every retry.
- Capacity: ``max_concurrent_trials`` = what the cluster holds now or, on an autoscaling
  cluster, can grow to (``autoscaler_limits``: the cluster file ``ray up`` leaves on the head),
  divided by one trial's GPUs (or CPUs).
- MLflow: ``MlflowCallback`` adapts Tune's callback hooks to ``tracking.SweepTracker`` through
  a ``tracking.Outbox`` (ordered, buffered, retried: an unreachable server loses nothing).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import optuna
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from orchestrator.adapters import replace_restored_callbacks
from orchestrator.space import OptunaSpace, plan, points, run_config
from orchestrator.spec import SweepSpec
from orchestrator.tracking import Outbox, SweepTracker, metric_chunks
from trainables import schema as N
from trainables import stage_cache
from trainables.config import CONFIG_FORMAT, RunConfig
from trainables.executors import predictions_dir
from trainables.failures import FATAL_KEY, one_line
from trainables.trial import run_trial

DRIVER_RESOURCE = "driver_slot"


class MlflowCallback(tune.Callback):
    """Tune hooks -> ``tracking.Outbox`` -> SweepTracker. Every call is queued and delivered in
    order; an unreachable server delays delivery instead of crashing the sweep. At the end of
    the experiment the queue is flushed (``XLT_TRACKING_FLUSH_S``) and what is left is saved
    for ``--resume``; delivery figures go to ``tracking_stats.json`` next to it."""

    def __init__(self, tracker: SweepTracker, plan: dict, spill: str, max_failures: int):
        self.outbox = Outbox(tracker, spill)
        self.plan = plan
        self.max_failures = max_failures
        self.fatal: dict[str, str] = {}

    def setup(self, **info):
        replayed = self.outbox.load()
        if replayed:
            print(f"[xlt tracking] delivering {replayed} tracking call(s) saved by an earlier run")
        self.outbox.submit("sweep", plan=self.plan)

    def on_trial_start(self, iteration, trials, trial, **info):
        trial.max_failures = self.max_failures  # a resumed trial that failed deterministically gets its retries back
        self.outbox.runs.pop(trial.trial_id, None)  # re-resolve by tag: the run may have ended
        self.outbox.submit("trial", trial.trial_id, config=trial.config)

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.outbox.submit("tag", trial.trial_id, key=N.TAG_RETRIES, value=str(trial.run_metadata.num_failures))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if FATAL_KEY in result:  # a deterministic failure follows (trainables.failures): no retries
            trial.max_failures = 0
            self.fatal[trial.trial_id] = str(result[FATAL_KEY])
            return
        for rows in metric_chunks(result):
            self.outbox.submit("metrics", trial.trial_id, rows=rows, epoch=result.get("epoch"))

    def on_trial_complete(self, iteration, trials, trial, **info):
        last = trial.last_result or {}
        run = RunConfig.from_dict(trial.config["run"])
        early = last.get(N.EPOCH, 0) < run.finetune.epochs
        self.outbox.submit("artifacts", trial.trial_id, folder=str(predictions_dir(run.storage, trial.trial_id)))
        self.outbox.submit("end", trial.trial_id, status="FINISHED",
                           tags={N.TAG_STOPPED_EARLY: str(early).lower()})

    def on_trial_error(self, iteration, trials, trial, **info):
        text = _error_text(trial)
        self.outbox.submit("end", trial.trial_id, status="FAILED",
                           reason=self.fatal.pop(trial.trial_id, None) or one_line(text), traceback=text)

    def on_experiment_end(self, trials, **info):
        flush_s = float(os.environ.get("XLT_TRACKING_FLUSH_S", 300))
        if self.outbox.pending:
            print(f"[xlt tracking] flushing {len(self.outbox.pending)} buffered call(s) "
                  f"(up to {flush_s:.0f} s)", file=sys.stderr)
        self.outbox.flush(wait_s=flush_s)
        self.outbox.save()
        stats = {**self.outbox.stats, "undelivered": len(self.outbox.pending), "errors": self.outbox.errors}
        try:
            Path(self.outbox.spill).with_name("tracking_stats.json").write_text(json.dumps(stats))
        except OSError as e:  # a full storage: the driver reports it; the figures are only lost
            print(f"[xlt tracking] could not write tracking_stats.json: {e.strerror or e}", file=sys.stderr)


def trial_dirname(trial) -> str:
    """Short trial folder names (Tune's default embeds the whole config and hits path limits)."""
    return f"trial_{trial.trial_id}"


def _error_text(trial) -> str:
    path = getattr(trial, "error_file", None)
    try:
        text = Path(path).read_text() if path else ""
    except OSError:
        text = ""
    return text.strip() or "trial failed (no error file)"


def _sampler(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    seed = spec.search.seed
    return {
        # group=True: the space is conditional (noise only in branches that use it).
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "qmc": lambda: optuna.samplers.QMCSampler(seed=seed),
        "gp": lambda: optuna.samplers.GPSampler(seed=seed),
    }[spec.search.sampler]()


def autoscaler_limits(config_path: str | Path | None) -> dict[str, float]:
    """What an autoscaling cluster can grow to: the head's resources plus, over the worker node
    types, ``max_workers`` x the type's ``resources`` (largest GPU types first, bounded by the
    cluster's ``max_workers``). Read from the cluster file ``ray up`` leaves on the head
    (``~/ray_bootstrap_config.yaml``); empty if there is none."""
    import yaml

    path = Path(config_path).expanduser() if config_path else None
    if path is None or not path.is_file():
        return {}
    cfg = yaml.safe_load(path.read_text()) or {}
    types = cfg.get("available_node_types", {})
    head = cfg.get("head_node_type")
    total: dict[str, float] = dict(types.get(head, {}).get("resources", {}))
    budget = cfg.get("max_workers", sum(t.get("max_workers", 0) for t in types.values()))
    workers = sorted((t for name, t in types.items() if name != head),
                     key=lambda t: -t.get("resources", {}).get("GPU", 0))
    for t in workers:
        n = min(t.get("max_workers", 0), budget)
        budget -= n
        for k, v in t.get("resources", {}).items():
            total[k] = total.get(k, 0) + n * v
    return total


def capacity(spec: SweepSpec, resources: dict, grown: dict | None = None) -> int:
    """How many trials the cluster holds at once (Tune does not count Train workers): from
    what it has now or, on an autoscaling cluster, what it can grow to (``grown``). A trial
    needs its workers' GPUs (or, without GPUs, CPUs) and their custom ``worker_resources``;
    the scarcest of those decides. Not counted: ``STRICT_SPREAD`` needs ``workers`` distinct
    nodes per trial; on a cluster with fewer nodes than that for every trial counted here,
    lower ``search.max_concurrent_trials`` (extra Train runs wait on worker-group timeouts)."""
    r = spec.resources
    need = {"GPU": r.workers * r.gpus_per_worker} if r.gpus_per_worker > 0 else {"CPU": r.workers * r.cpus_per_worker}
    need.update({k: r.workers * v for k, v in r.worker_resources.items()})
    have = {k: max(resources.get(k, 0), (grown or {}).get(k, 0)) for k in need}
    fit = min(have[k] // v for k, v in need.items())
    if fit < 1:
        short = ", ".join(f"{v:g} {k}" for k, v in need.items())
        raise RuntimeError(f"one trial needs {short} but the Ray cluster has {resources}"
                           + (f" and can grow to {grown}" if grown else ""))
    return int(fit)


# Ray Train's controller polls its workers every RAY_TRAIN_HEALTH_CHECK_INTERVAL_S (default 2 s)
# and only notices that training finished at a poll: up to one interval per phase of the
# worker group's life, for every stage (benchmarks/run.py: trial_overhead_train). A poll
# is one tiny actor task per worker; a poll that does not answer in time is awaited at the
# next one (workers are only declared dead after RAY_TRAIN_WORKER_HEALTH_CHECK_TIMEOUT_S).
TRAIN_POLL_ENV, TRAIN_POLL_S = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25"


def init_ray(address: str | None) -> dict:
    """Join ``address`` or start a local Ray (dashboard on 127.0.0.1: Tune needs its State API
    to clean the placement groups of stopped trials). The job's environment sets the Train
    controller's poll interval (``TRAIN_POLL_S`` unless the user set the variable)."""
    if ray.is_initialized():  # the next study of the same file: same Ray
        return ray.cluster_resources()
    env = {"runtime_env": {"env_vars": {"HF_HUB_DISABLE_PROGRESS_BARS": "1",
                                        "TRANSFORMERS_VERBOSITY": "error",
                                        "TOKENIZERS_PARALLELISM": "false",
                                        TRAIN_POLL_ENV: os.environ.get(TRAIN_POLL_ENV, TRAIN_POLL_S)}}}
    if address:
        ray.init(address=address, **env)
    else:
        ray.init(include_dashboard=True, dashboard_host="127.0.0.1",
                 resources={DRIVER_RESOURCE: 1000}, **env)
    return ray.cluster_resources()


def outbox_path(storage: Path, name: str) -> Path:
    """Where the sweep ``name`` keeps the tracking calls MLflow has not accepted yet."""
    return storage / "_xlt" / name / "tracking_outbox.json"


def tune_callbacks(callback: MlflowCallback) -> list:
    """MLflow, plus the CSV and JSON result files Tune's own analysis reads; not Tune's default
    TensorBoard logger (MLflow is where results are looked at, and ``tensorboardX`` imports
    torch into the driver before the first trial starts). A user who wants
    TensorBoard files sets ``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=0``."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    return [callback, CSVLoggerCallback(), JsonLoggerCallback()]


def trial_resources(spec: SweepSpec, pin: dict, in_trial: bool | None = None) -> dict:
    """What Tune reserves for one trial's process: the worker's CPUs, GPUs and custom
    resources when its stages train in it (``resources.executor: trial``); else a sliver of
    the head's ``driver_slot`` (its Train workers reserve their own). ``in_trial``: the
    sweep's recorded executor (``executor_of``), default: the spec's."""
    r = spec.resources
    if r.in_trial if in_trial is None else in_trial:
        return {"CPU": r.cpus_per_worker, **({"GPU": r.gpus_per_worker} if r.gpus_per_worker else {}),
                **r.worker_resources}
    return pin or {"CPU": 0}


def _record(storage: Path, name: str) -> Path:
    """What a sweep records when it starts (its executor, its config format), by its outbox."""
    return outbox_path(storage, name).with_name("executor.json")


def config_format_problem(storage: Path, name: str) -> str | None:
    """Why the saved sweep ``name`` cannot be resumed by this version, or None: its trials'
    configs were saved in another layout (``trainables.config.CONFIG_FORMAT``)."""
    record = _record(storage, name)
    saved = json.loads(record.read_text()).get("config_format", 1) if record.is_file() else 1
    if saved == CONFIG_FORMAT:
        return None
    return (f"sweep '{name}' was started by an xlt-sweep whose trial configs have format {saved}, "
            f"this one reads format {CONFIG_FORMAT} (Tune restores each trial's config as saved); "
            f"finish it with the version that started it, or start it again under another name or --storage")


def executor_of(storage: Path, spec: SweepSpec, resume: bool) -> bool:
    """Whether this sweep's stages train in the trial's process. Decided when the sweep starts
    and recorded next to its outbox: a resumed sweep runs the ``run`` block Tune restored
    (``trainables.trial.run_trial`` reads ``resources.in_trial`` there), so it keeps that
    executor and reserves what it needs, whatever the space file says now. A sweep started before the
    executor existed has no record: Ray Train."""
    record = _record(storage, spec.name)
    if not resume:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"in_trial": spec.resources.in_trial, "config_format": CONFIG_FORMAT}))
        return spec.resources.in_trial
    in_trial = bool(json.loads(record.read_text())["in_trial"]) if record.is_file() else False
    if in_trial != spec.resources.in_trial:
        print(f"note: this sweep started with resources.executor resolving to "
              f"{'trial' if in_trial else 'train'}; --resume keeps it", file=sys.stderr)
    return in_trial


def build_tuner(spec: SweepSpec, storage: Path, tracker: SweepTracker, resume: bool,
                max_concurrent: int) -> tune.Tuner:
    """The Tune ``Tuner`` of a sweep (restored from ``storage`` when ``resume``): Optuna search, ASHA or FIFO, the
    MLflow callback."""
    the_plan = plan(spec)
    pts = points(spec)
    pin = {DRIVER_RESOURCE: 0.001} if ray.cluster_resources().get(DRIVER_RESOURCE) else {}
    in_trial = executor_of(storage, spec, resume)
    trainable = tune.with_resources(run_trial, trial_resources(spec, pin, in_trial))
    max_failures = spec.search.max_failures + (spec.search.worker_failures if in_trial else 0)
    callback = MlflowCallback(tracker, the_plan, str(outbox_path(storage, spec.name)), max_failures)
    exp_path = storage / spec.name
    if resume:
        stage_cache.coordinator(str(storage / "stage_cache"), pin)
        tuner = tune.Tuner.restore(str(exp_path), trainable=trainable, resume_unfinished=True,
                                   resume_errored=True)
        # The restored run config carries the pickled callback of the first run; use this run's
        # (its tracking URI and fresh counters). Tuner.restore takes no callbacks argument.
        replace_restored_callbacks(tuner, tune_callbacks(callback))
        return tuner
    searcher = OptunaSearch(space=OptunaSpace(spec), metric=spec.search.metric,
                            mode=spec.search.mode, sampler=_sampler(spec), points_to_evaluate=pts)
    searcher = ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)
    scheduler = FIFOScheduler()
    if spec.search.asha.enabled:
        scheduler = ASHAScheduler(time_attr="epoch", metric=spec.search.metric,
                                  mode=spec.search.mode, max_t=spec.training.epochs,
                                  grace_period=spec.search.asha.grace_period,
                                  reduction_factor=spec.search.asha.reduction_factor)
    stage_cache.coordinator(str(storage / "stage_cache"), pin)  # before any trial: claims for all of them
    tuner = tune.Tuner(
        trainable,
        param_space={"run": run_config(spec, str(storage / "_xlt" / spec.name),
                                       str(storage / "stage_cache")).to_dict()},
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler,
                                    num_samples=len(pts), max_concurrent_trials=max_concurrent,
                                    trial_dirname_creator=trial_dirname,
                                    # Tune's actor cache keeps only healthy processes
                                    reuse_actors=spec.resources.reuse_processes),
        run_config=tune.RunConfig(name=spec.name, storage_path=str(storage), callbacks=tune_callbacks(callback),
                                  # in the trial's process a dead worker is a failed trial: its
                                  # restarts (search.worker_failures) become Tune retries
                                  failure_config=tune.FailureConfig(max_failures=max_failures),
                                  verbose=1),
    )
    return tuner


def trial_statuses(exp_path: Path) -> dict[str, str]:
    """Tune's own status of every trial (TERMINATED, ERROR, RUNNING, PENDING, ...), read from
    the experiment state it saved last; {} if it cannot be read."""
    try:
        return {t.trial_id: t.status for t in tune.ExperimentAnalysis(str(exp_path)).trials}
    except Exception:  # noqa: BLE001  (a truncated state on a full disk: fall back to the results)
        return {}


def summarize(results, metric: str, planned: int | None = None, statuses: dict | None = None) -> dict:
    """One row per trial Tune knows: FINISHED (Tune terminated it), FAILED (with the one-line
    reason) or INTERRUPTED (started or queued, not done: ``--resume`` continues it), from
    Tune's ``statuses`` (``trial_statuses``) or, without them, the last result's ``done``;
    ``left``: planned trials neither finished nor failed (those Tune never created count too)."""
    rows = []
    for r in results:
        cfg = r.config or {}
        m = r.metrics or {}
        tid = m.get("trial_id") or (Path(r.path).name.removeprefix("trial_") if r.path else "?")
        known = (statuses or {}).get(tid)
        done = known == "TERMINATED" if known else bool(m.get("done"))
        status = "FAILED" if r.error else "FINISHED" if done else "INTERRUPTED"
        reason = (m.get(FATAL_KEY) or one_line(str(r.error))) if r.error else ""
        score = N.task_score(RunConfig.from_dict(cfg["run"]).target.task) if "run" in cfg else None
        rows.append({"trial": tid, "cell": cfg.get("cell", "?"), "seed": cfg.get("seed"),
                     metric: m.get(metric), "score": m.get(score),
                     "status": status, "error": reason})
    failed = sum(r["status"] == "FAILED" for r in rows)
    finished = sum(r["status"] == "FINISHED" for r in rows)
    left = max(planned if planned is not None else len(rows), len(rows)) - failed - finished
    return {"trials": len(rows), "finished": finished, "failed": failed, "left": left,
            "interrupted": left > 0, "rows": rows}


def fmt(v) -> str:
    """A summary cell: ``-`` for a missing value, four decimals for a float."""
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else (
        f"{v:.4f}" if isinstance(v, float) else str(v))
