"""One trial: intermediate-task training -> [benchmark recipe] -> robust fine-tuning -> zero-shot
evaluation.

``run_trial(config)`` is the function Ray Tune runs per trial (the supported Train-in-Tune
shape in Ray 2.60: ``Tuner(TorchTrainer)`` no longer works). Each training stage is its own
``ray.train.torch.TorchTrainer`` with the trial's worker count (``resources.executor:
train``), or, for one worker, runs in the trial's own process (``trial``, the default for one
worker: ``trainables.executors.TrialExecutor``; the trial then holds the worker's resources);
evaluation of every target language happens once, at the end of the fine-tuning stage, in the
same worker group (or process). Heavy imports (torch, transformers, Ray Train) happen inside
the functions that need them: the sweep driver imports this module for ``run_trial`` and
never trains.

``config`` is the resolved trial as Tune carries it: the trial's choices
(``trainables.config.TrialChoices``: the sampled axes, the cell, the intermediate cache key)
and, under ``run``, the sweep's ``RunConfig`` (model, task, languages, training settings,
resources, storage paths), both read back into their typed form once, here;
``stage_configs`` then makes each stage's ``StageConfig`` (which settings the stages share:
``trainables.config``).

Stages (see ``trainables.tasks`` for how a target's recipe and ``train_from`` combine with
the domain axis): ``intermediate`` (domains other than ``none``), ``recipe-{key}`` for each
benchmark-recipe stage of the target (XCOPA: SocialIQA), ``finetune``. Each hands only its
encoder to the next. The fine-tuning stage writes the trial's predictions and gold files in
the official layout to ``{storage}/predictions/{trial_id}``; the driver logs them to MLflow.

Intermediate stage: shared through the stage cache (``trainables.stage_cache``): the first
trial that needs a (model, tasks, settings, seed) configuration trains it, concurrent trials
that need the same one wait for it, later ones (in this sweep, a resumed one or a later sweep
on the same storage) reuse it. Each trial reports ``intermediate/cache_hit``; the key is its config's
``intermediate_cache_key``, computed once by the driver (``orchestrator.space.trial_choices``)
and used as is, so the key MLflow logs is the key the trial used.

Retries and resume: Train runs are named ``{stage}-{trial_id}``, so a retried trial's
TorchTrainer finds its own checkpoints (in-trial stages: ``{stage}-{trial_id}/checkpoint_local``,
the same place for every retry); a stage that finished writes a small manifest entry
(``stages/{trial_id}/{stage}.json``) with its checkpoint and metrics, and a retried trial
skips it instead of training it again. A stage whose training diverged (non-finite loss or
gradients, see ``trainables.loop``) writes its manifest with the reason; the trial fails with
``TrainingDiverged`` and every retry fails at once with the same reason instead of training.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import ray.tune

from trainables import schema as N
from trainables.catalog import intermediate_task
from trainables.config import RobustChoice, RunConfig, StageConfig, TrialChoices
from trainables.executors import Executor, executor_for, manifest_path, predictions_dir, train_dir
from trainables.failures import FATAL_KEY, TrainingDiverged, deterministic
from trainables.stage_cache import StageCache
from trainables.tasks import target_task

PLAIN = RobustChoice("none", 0.0, {})
"""What the intermediate and recipe stages train with: no robust method."""
ONE_PART = "proportional"
"""The mixing of a one-task stage (recipe, fine-tuning): its batches in shuffled order."""


def _diverged_reason(choices: TrialChoices, cfg: StageConfig, m: dict) -> str:
    return (f"training diverged in stage '{cfg.stage}' at step {int(m[N.DIVERGED_STEP])} (epoch "
            f"{int(m[N.EPOCH])}): loss {m[N.DIVERGED_LOSS]}, gradient norm "
            f"{m[N.DIVERGED_GRAD_NORM]} (robust_method={cfg.robust.method}, "
            f"noise_magnitude={cfg.robust.magnitude}, learning_rate={cfg.schedule.learning_rate}); "
            f"lower the noise magnitude or the learning rate")


def _write_manifest(manifest: Path, done: dict) -> None:
    manifest.parent.mkdir(parents=True, exist_ok=True)
    tmp = manifest.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(done, default=float))
    os.replace(tmp, manifest)


def _stage(cfg: StageConfig, run: RunConfig, choices: TrialChoices, trial_id: str, report_to_tune: bool,
           executor: Executor) -> dict:
    """Run a stage unless its manifest says it finished (or diverged); return {checkpoint,
    metrics}. A diverged stage raises ``TrainingDiverged``, now and on every retry."""
    stage = cfg.stage
    manifest = manifest_path(run.storage, trial_id, stage)
    if manifest.is_file():
        done = json.loads(manifest.read_text())
        if done.get("diverged"):
            raise TrainingDiverged(done["diverged"])
        if report_to_tune:  # retried after the stage finished: hand Tune its final result again
            ray.tune.report(done["metrics"])
        return done
    marker = next(train_dir(run.storage, stage, trial_id).glob("checkpoint_*/diverged.json"), None)
    if marker is not None:  # diverged, but the driver died before writing the manifest
        reason = f"training diverged in stage '{stage}' (recorded in {marker}: {marker.read_text()})"
        _write_manifest(manifest, {"diverged": reason, "metrics": {}})
        raise TrainingDiverged(reason)
    result = executor.fit(cfg, run, f"{stage}-{trial_id}", report_to_tune)
    if result.metrics.get(N.DIVERGED):
        reason = _diverged_reason(choices, cfg, result.metrics)
        _write_manifest(manifest, {"diverged": reason, "metrics": result.metrics})
        raise TrainingDiverged(reason)
    done = {"checkpoint": result.checkpoint, "metrics": result.metrics}
    _write_manifest(manifest, done)
    return done


def resolve_data_dir(data_dir: str, assets: str, miniature: bool = False) -> str:
    """``builtin`` -> the demo data, written once under the sweep's assets (``miniature``: with the
    miniature world's files, about 2 MB, written only for a sweep that reads them); else unchanged."""
    if data_dir != "builtin":
        return data_dir
    from filelock import FileLock

    from trainables.demo_data import write_demo_data
    from trainables.miniature.data import write_miniature

    out = Path(assets) / "demo_data"
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not (out / "xnli").is_dir():
            write_demo_data(out)
        if miniature:
            write_miniature(out)  # a no-op once written
    return str(out)


def finetune_config(run: RunConfig, choices: TrialChoices, trial_id: str) -> StageConfig:
    """The fine-tuning stage of a trial, starting from the sweep's model (the stages before it
    replace ``encoder``); the other stages are made from it (``stage_configs``). Resolves the
    built-in model and data (written once under the sweep's assets)."""
    from trainables.models import resolve_model

    model = resolve_model(run.model.name, run.assets)
    return StageConfig(
        stage="finetune", encoder=model, tokenizer=run.model.tokenizer or model,
        trust_remote_code=run.model.trust_remote_code,
        data_dir=resolve_data_dir(run.target.data_dir, run.assets,
                                  miniature=target_task(run.target.task).benchmark == "miniature"),
        cache_dir=str(Path(run.assets) / "features"),
        target_task=run.target.task, languages=run.target.languages, generalized=run.target.generalized,
        retrieval_layer=run.target.retrieval_layer, seed=choices.seed,
        cpus_per_worker=run.resources.cpus_per_worker, training=run.training,
        schedule=replace(run.finetune, learning_rate=choices.learning_rate),
        intermediate_tasks=(), mixing=ONE_PART, recipe_task=None,
        robust=RobustChoice(choices.robust_method, choices.noise_magnitude,
                            dict(run.robust_options.get(choices.robust_method, {}))),
        select=run.select, keep_weights=run.keep_weights,
        predictions_dir=str(predictions_dir(run.storage, trial_id)), report_extra={}, fatal_file=None)


def stage_configs(run: RunConfig, choices: TrialChoices, trial_id: str) -> dict[str, StageConfig]:
    """Every stage of a trial, in order: ``intermediate`` (domains other than ``none``),
    ``recipe-{key}`` per benchmark-recipe stage, ``finetune``. Each later stage's ``encoder``
    is the earlier stage's output, set when that stage has run."""
    finetune = finetune_config(run, choices, trial_id)
    earlier = dict(robust=PLAIN, select="last", keep_weights="none", predictions_dir=None)
    out = {}
    if choices.domain != "none":
        out["intermediate"] = replace(
            finetune, stage="intermediate",
            data_dir=resolve_data_dir(run.intermediate.data_dir, run.assets, miniature=any(
                intermediate_task(k).miniature for k in choices.intermediate_tasks)),
            schedule=run.intermediate.schedule, intermediate_tasks=choices.intermediate_tasks,
            mixing=run.intermediate.mixing, **earlier)
    if run.recipe is not None:
        for key in target_task(run.target.task).recipe:
            out[f"recipe-{key}"] = replace(finetune, stage=f"recipe-{key}", recipe_task=key, schedule=run.recipe,
                                           **earlier)
    out["finetune"] = finetune
    return out


def _summary(prefix: str, done: dict) -> dict[str, float]:
    """An earlier stage's training summary, passed on to the fine-tuning stage's reports."""
    return {N.stage_summary(prefix, k): float(v) for k, v in done["metrics"].items() if N.is_summarised(k)}


def _intermediate(cfg: StageConfig, run: RunConfig, choices: TrialChoices, trial_id: str,
                  executor: Executor) -> tuple[str, dict[str, float]]:
    """The trial's intermediate encoder from the stage cache: trained here if no trial has
    trained this configuration yet (and none is training it now), else reused."""

    def build() -> tuple[str, dict]:
        done = _stage(cfg, run, choices, trial_id, report_to_tune=False, executor=executor)
        return str(Path(done["checkpoint"]) / "encoder"), done["metrics"]

    if not executor.shares_stage_cache:  # no Ray, so no cache coordinator: train it
        encoder, record = build()
        return encoder, {**_summary("intermediate", {"metrics": record}), N.CACHE_HIT: 0.0}

    cache = StageCache(run.stage_cache, lease_s=float(os.environ.get("XLT_STAGE_CACHE_LEASE_S", 60)),
                       local_dir=run.assets)
    encoder, hit, record = cache.get_or_build(choices.intermediate_cache_key, choices.intermediate_inputs,
                                              owner=trial_id, build=build)
    _remove(train_dir(run.storage, "intermediate", trial_id))  # the model lives in the stage cache only
    return encoder, {**_summary("intermediate", record), N.CACHE_HIT: float(hit)}


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def retain(run: RunConfig, trial_id: str, stages: list[str], finetune: dict) -> None:
    """What a finished trial leaves on storage (``storage.keep_weights``): its predictions and
    manifests always; the fine-tuned weights for ``last`` (the last epoch's) or ``best`` (the
    best English dev epoch's, written over the last one's); never optimizer state, and never
    the recipe stages' models (each is only the next stage's start). Idempotent."""
    for stage in stages:
        _remove(train_dir(run.storage, stage, trial_id))
    ckpt = Path(finetune.get("checkpoint") or "")
    keep = run.keep_weights
    if keep == "none" or not ckpt.is_dir():
        _remove(train_dir(run.storage, "finetune", trial_id))
        return
    best = ckpt / "best.pt"
    if keep == "best" and best.is_file():
        import torch

        from trainables.models import load_encoder

        state = torch.load(best, weights_only=True)["state"]
        encoder = load_encoder(str(ckpt / "encoder"))
        encoder.load_state_dict({k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")})
        encoder.save_pretrained(ckpt / "encoder")
        torch.save({k[len("head."):]: v for k, v in state.items() if k.startswith("head.")}, ckpt / "head.pt")
    for name in ("state.pt", "best.pt"):
        (ckpt / name).unlink(missing_ok=True)


def run_trial(config: dict) -> None:
    """What Tune runs per trial. A deterministic failure (``trainables.failures``: bad data,
    a configuration refused at run time, divergence, a full storage) is handed to Tune as a
    last result carrying its one-line reason before it is raised: the sweep's callback then
    gives the trial no retries."""
    run, choices = RunConfig.from_dict(config["run"]), TrialChoices.of(config)
    try:
        run_stages(run, choices, ray.tune.get_context().get_trial_id(), executor_for(run))
    except Exception as e:
        reason = deterministic(e, run.storage)
        if reason is not None:
            ray.tune.report({FATAL_KEY: reason, N.OBJECTIVE: float("nan"), N.TRAIN_LOSS: float("nan"), N.EPOCH: 0})
        raise


def run_stages(run: RunConfig, choices: TrialChoices, trial_id: str, executor: Executor) -> dict:
    """Every stage of a trial (``stage_configs``) on ``executor``; returns the fine-tuning
    stage's {checkpoint, metrics}."""
    stages = stage_configs(run, choices, trial_id)
    extra: dict[str, float] = {}
    encoder = stages["finetune"].encoder
    if "intermediate" in stages:
        encoder, extra = _intermediate(stages["intermediate"], run, choices, trial_id, executor)
    recipes = [name for name in stages if name.startswith("recipe-")]
    for name in recipes:
        done = _stage(replace(stages[name], encoder=encoder), run, choices, trial_id, report_to_tune=False,
                      executor=executor)
        encoder = str(Path(done["checkpoint"]) / "encoder")
        extra.update(_summary(f"recipe/{name.removeprefix('recipe-')}", done))
    done = _stage(replace(stages["finetune"], encoder=encoder, report_extra=extra), run, choices, trial_id,
                  report_to_tune=executor.reports_to_tune, executor=executor)
    if executor.retains:  # benchmarks and tests read the checkpoints of an in-process run
        retain(run, trial_id, recipes, done)
    return done
