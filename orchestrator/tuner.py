"""Ray Tune setup: the only ``ray.tune`` importer on the driver side.

- Search: ``OptunaSearch`` over the define-by-run space of ``orchestrator.space`` with every
  (cell, seed, sample) enqueued, wrapped in a ``ConcurrencyLimiter``; ``num_samples`` equals
  the number of enqueued points, so each cell runs exactly once per seed and sample.
- Scheduler: ASHA on the trainable's own ``epoch`` (Tune's ``training_iteration`` restarts at
  1 when a Train run resumes), or FIFO.
- Resources: Tune does not reserve the Train workers' resources, so ``max_concurrent_trials``
  is what the cluster can hold (GPUs, or CPUs, divided by one trial's need) unless the space
  file says otherwise. The per-trial driver function asks for a sliver of the custom
  ``driver_slot`` resource (the head node has it, so on a cluster drivers stay on the
  on-demand head and GPU workers only run Train workers); a local Ray gets the resource too.
- Failures: ``FailureConfig(max_failures)`` retries a trial; the retried driver finds its
  stages' checkpoints. An interrupted sweep continues with ``Tuner.restore``.
- MLflow: ``MlflowCallback`` adapts Tune's callback hooks to ``tracking.SweepTracker``.
"""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from orchestrator.space import OptunaSpace, plan, points, run_block
from orchestrator.spec import SweepSpec
from orchestrator.tracking import SweepTracker
from trainables import stage_cache
from trainables.trial import predictions_dir, run_trial

DRIVER_RESOURCE = "driver_slot"


class MlflowCallback(tune.Callback):
    """Tune hooks -> SweepTracker; run ids are re-found by tag after a restore."""

    def __init__(self, tracker: SweepTracker, plan: dict):
        self.tracker = tracker
        self.plan = plan
        self.runs: dict[str, str] = {}

    def setup(self, **info):
        self.tracker.start_sweep(self.plan)

    def _run(self, trial) -> str:
        if trial.trial_id not in self.runs:
            self.runs[trial.trial_id] = self.tracker.trial_run(trial.trial_id, trial.config)
        return self.runs[trial.trial_id]

    def on_trial_start(self, iteration, trials, trial, **info):
        self.runs.pop(trial.trial_id, None)  # re-resolve by tag: the run may have ended
        self._run(trial)

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.tracker.tag(self._run(trial), "xlt.retries", trial.run_metadata.num_failures)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.tracker.log_result(self._run(trial), result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        last = trial.last_result or {}
        early = last.get("epoch", 0) < trial.config["run"]["epochs"]
        run_id = self._run(trial)
        self.tracker.log_predictions(run_id, predictions_dir(trial.config["run"], trial.trial_id))
        self.tracker.end_trial(run_id, "FINISHED", tags={"xlt.stopped_early": str(early).lower()})

    def on_trial_error(self, iteration, trials, trial, **info):
        self.tracker.end_trial(self._run(trial), "FAILED", reason=_error_text(trial))


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


def capacity(spec: SweepSpec, resources: dict) -> int:
    """How many trials the cluster holds at once (Tune does not count Train workers)."""
    r = spec.resources
    if r.gpus_per_worker > 0:
        fit = resources.get("GPU", 0) // (r.workers * r.gpus_per_worker)
    else:
        fit = resources.get("CPU", 0) // (r.workers * r.cpus_per_worker)
    if fit < 1:
        need = f"{r.workers * r.gpus_per_worker} GPU" if r.gpus_per_worker else \
            f"{r.workers * r.cpus_per_worker} CPU"
        raise RuntimeError(f"one trial needs {need} but the Ray cluster has {resources}")
    return int(fit)


def init_ray(address: str | None) -> dict:
    """Join ``address`` or start a local Ray (dashboard on 127.0.0.1: Tune needs its State API
    to clean the placement groups of stopped trials)."""
    if ray.is_initialized():  # the next study of the same file: same Ray
        return ray.cluster_resources()
    env = {"runtime_env": {"env_vars": {"HF_HUB_DISABLE_PROGRESS_BARS": "1",
                                        "TRANSFORMERS_VERBOSITY": "error",
                                        "TOKENIZERS_PARALLELISM": "false"}}}
    if address:
        ray.init(address=address, **env)
    else:
        ray.init(include_dashboard=True, dashboard_host="127.0.0.1",
                 resources={DRIVER_RESOURCE: 1000}, **env)
    return ray.cluster_resources()


def build_tuner(spec: SweepSpec, storage: Path, tracker: SweepTracker, resume: bool,
                max_concurrent: int) -> tune.Tuner:
    the_plan = plan(spec)
    pts = points(spec)
    resources = {DRIVER_RESOURCE: 0.001} if ray.cluster_resources().get(DRIVER_RESOURCE) else {"CPU": 0}
    trainable = tune.with_resources(run_trial, resources)
    callback = MlflowCallback(tracker, the_plan)
    exp_path = storage / spec.name
    if resume:
        stage_cache.coordinator(str(storage / "stage_cache"))
        tuner = tune.Tuner.restore(str(exp_path), trainable=trainable, resume_unfinished=True,
                                   resume_errored=True)
        # The restored run config carries the pickled callback of the first run; use this run's
        # (its tracking URI and fresh counters). Tuner.restore takes no callbacks argument.
        tuner._local_tuner._run_config.callbacks = [callback]
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
    stage_cache.coordinator(str(storage / "stage_cache"))  # before any trial: claims for all of them
    tuner = tune.Tuner(
        trainable,
        param_space={"run": run_block(spec, str(storage / "_xlt" / spec.name), str(storage / "stage_cache"))},
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler,
                                    num_samples=len(pts), max_concurrent_trials=max_concurrent,
                                    trial_dirname_creator=trial_dirname),
        run_config=tune.RunConfig(name=spec.name, storage_path=str(storage), callbacks=[callback],
                                  failure_config=tune.FailureConfig(
                                      max_failures=spec.search.max_failures),
                                  verbose=1),
    )
    return tuner


def summarize(results, metric: str) -> dict:
    rows = []
    for r in results:
        cfg = r.config or {}
        m = r.metrics or {}
        tid = m.get("trial_id") or (Path(r.path).name if r.path else "?")
        status = "FAILED" if r.error else "FINISHED"
        rows.append({"trial": tid, "cell": cfg.get("cell", "?"), "seed": cfg.get("seed"),
                     metric: m.get(metric), "score": m.get(f"{cfg.get('run', {}).get('target_task')}/score"),
                     "status": status, "error": str(r.error).splitlines()[0] if r.error else ""})
    failed = sum(r["status"] == "FAILED" for r in rows)
    return {"trials": len(rows), "finished": len(rows) - failed, "failed": failed, "rows": rows}


def fmt(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else (
        f"{v:.4f}" if isinstance(v, float) else str(v))
