"""Where a training stage runs: a Ray Train worker group, the Tune trial's process, or here.

An ``Executor`` runs one stage's worker loop (``trainables.loop.train_loop_per_worker``) and
returns a ``StageResult`` (the last report and the checkpoint directory). It declares what it
can do instead of being recognised by identity:

=================  ==============  =================  ==================================
executor           where            stage cache        for
=================  ==============  =================  ==================================
``TrainExecutor``  a TorchTrainer   shared (Ray actor)  ``resources.executor: train``:
                   per stage, N                        several workers (DDP; NCCL on GPU,
                   workers                             gloo on CPU)
``TrialExecutor``  the Tune trial's shared (Ray actor)  ``trial``: one worker, no Train
                   own process                         controller (the default for one)
``LocalExecutor``  this process,    none: it trains    benchmarks and tests: the same
                   no Ray           the stage          stages without a cluster
=================  ==============  =================  ==================================

``TrainExecutor`` names each Train run ``{stage}-{trial_id}`` under ``<storage>/train``, so a
retried trial's TorchTrainer finds its own checkpoints; the in-process executors keep theirs in
``train/{stage}-{trial_id}/checkpoint_local`` (``trainables.sessions.CheckpointDir``), the same
place for every retry. A deterministic failure in a Train worker (``trainables.failures``) is
written by rank 0 to ``fatal.json`` and raised here as ``StageFailed``, without spending a
worker-group restart on it.

Storage layout of a trial (``layout``): ``stages/{trial_id}/{stage}.json`` (the manifest of a
finished stage), ``train/{stage}-{trial_id}/`` (where it trains), ``predictions/{trial_id}/``
(predictions and gold in the official layout).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from trainables.config import RunConfig, StageConfig
from trainables.failures import StageFailed


def manifest_path(storage: str, trial_id: str, stage: str) -> Path:
    """The record of a trial's finished (or diverged) stage."""
    return Path(storage) / "stages" / trial_id / f"{stage}.json"


def train_dir(storage: str, stage: str, trial_id: str | None = None) -> Path:
    """Where a stage trains: ``train/{stage}-{trial_id}`` (the Train run's name, and the
    in-trial checkpoint's folder); ``stage`` alone when it is that name already."""
    return Path(storage) / "train" / (stage if trial_id is None else f"{stage}-{trial_id}")


def predictions_dir(storage: str, trial_id: str) -> Path:
    """A trial's predictions and gold files (``predictions/``, ``labels/``)."""
    return Path(storage) / "predictions" / trial_id


@dataclass(frozen=True)
class StageResult:
    """What a finished stage hands back."""
    metrics: dict
    """The stage's last report."""
    checkpoint: str | None
    """Its last checkpoint's directory (``encoder/``, ``head.pt``, ``state.pt``)."""


class Executor(Protocol):
    """Where a stage trains, and what it can do there."""
    name: str
    shares_stage_cache: bool
    """Intermediate models go through the cluster-wide stage cache (needs Ray)."""
    reports_to_tune: bool
    """The fine-tuning stage's epochs are Tune results (ASHA, MLflow)."""
    retains: bool
    """``storage.keep_weights`` is applied after the trial (False: the caller reads every
    stage's checkpoint afterwards)."""

    def fit(self, cfg: StageConfig, run: RunConfig, name: str, report_to_tune: bool) -> StageResult:
        """Train the stage ``cfg`` as the run named ``name`` (``{stage}-{trial_id}``)."""
        ...


class TrainExecutor:
    """A stage in a Ray Train worker group (``ray.train.torch.TorchTrainer``)."""

    name, shares_stage_cache, reports_to_tune, retains = "train", True, True, True

    def fit(self, cfg: StageConfig, run: RunConfig, name: str, report_to_tune: bool) -> StageResult:
        import ray.train
        from ray.train.torch import TorchConfig, TorchTrainer
        from ray.tune.integration.ray_train import TuneReportCallback

        from trainables.loop import train_loop_per_worker

        res = run.resources
        fatal = train_dir(run.storage, name) / "fatal.json"
        trainer = TorchTrainer(
            train_loop_per_worker,
            train_loop_config={"stage": replace(cfg, fatal_file=str(fatal))},
            torch_config=TorchConfig(backend="nccl" if res.gpus_per_worker > 0 else "gloo"),
            scaling_config=ray.train.ScalingConfig(
                num_workers=res.workers, use_gpu=res.gpus_per_worker > 0,
                resources_per_worker={"CPU": res.cpus_per_worker,
                                      **({"GPU": res.gpus_per_worker} if res.gpus_per_worker else {}),
                                      **res.worker_resources},
                placement_strategy=res.placement_strategy,
            ),
            run_config=ray.train.RunConfig(
                name=name,
                storage_path=str(Path(run.storage) / "train"),
                failure_config=ray.train.FailureConfig(max_failures=res.worker_failures),
                checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1),
                callbacks=[TuneReportCallback()] if report_to_tune else [],
            ),
        )
        fatal.unlink(missing_ok=True)
        result = trainer.fit()
        if fatal.is_file():  # rank 0 recorded a deterministic failure: no worker-group restart was spent on it
            record = json.loads(fatal.read_text())
            fatal.unlink()
            raise StageFailed(record["reason"]) from StageFailed(
                f"in the Train worker (rank 0):\n{record['traceback']}")
        if result.error is not None:
            raise result.error
        return StageResult(result.metrics or {}, result.checkpoint.path if result.checkpoint else None)


def _in_process(cfg: StageConfig, run: RunConfig, name: str, session_of):
    """The stage in this process with ``session_of(device, checkpoint_dir)``; returns
    (result, session)."""
    from trainables.loop import run_stage

    ckpt = train_dir(run.storage, name) / "checkpoint_local"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    device = "cuda" if run.resources.gpus_per_worker > 0 else "cpu"
    session = session_of(device, str(ckpt))
    try:
        run_stage(cfg, session)
    finally:
        if device == "cuda":  # a reused trial process starts its next stage with the memory free
            import torch

            torch.cuda.empty_cache()
    return StageResult(session.last_metrics(), str(ckpt)), session


class TrialExecutor:
    """A stage in the Tune trial's own process: the loop runs with a ``TrialSession``. After a
    resume that found every epoch done, the final report is handed to Tune again from the
    checkpoint."""

    name, shares_stage_cache, reports_to_tune, retains = "trial", True, True, True

    def fit(self, cfg: StageConfig, run: RunConfig, name: str, report_to_tune: bool) -> StageResult:
        import ray.tune

        from trainables.sessions import TrialSession

        result, session = _in_process(cfg, run, name, lambda device, ckpt: TrialSession(device, ckpt, report_to_tune))
        if report_to_tune and not session.reports and result.metrics:
            ray.tune.report(result.metrics)
        return result


class LocalExecutor:
    """A stage in this process (``trainables.sessions.LocalSession``): no Ray, no Train worker
    group, no stage cache; the benchmarks' baseline for what a sweep adds around its stages."""

    name, shares_stage_cache, reports_to_tune, retains = "local", False, False, False

    def fit(self, cfg: StageConfig, run: RunConfig, name: str, report_to_tune: bool) -> StageResult:
        from trainables.sessions import LocalSession

        return _in_process(cfg, run, name, LocalSession)[0]


def executor_for(run: RunConfig) -> Executor:
    """The executor a sweep's trial uses (``resources.executor``, resolved in the spec)."""
    return TrialExecutor() if run.resources.in_trial else TrainExecutor()
