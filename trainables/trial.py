"""One trial: intermediate-task training -> [benchmark recipe] -> robust fine-tuning -> zero-shot
evaluation.

``run_trial(config)`` is the function Ray Tune runs per trial (the supported Train-in-Tune
shape in Ray 2.60: ``Tuner(TorchTrainer)`` no longer works). Each training stage is its own
``ray.train.torch.TorchTrainer`` with the trial's worker count (``resources.executor:
train``), or, for one worker, runs in the trial's own process (``trial``, the default for one
worker: ``trainables.session.TrialSession``; the trial then holds the worker's resources);
evaluation of every target language happens once, at the end of the fine-tuning stage, in the
same worker group (or process). Heavy imports (torch, transformers, Ray Train) happen inside
the functions that need them: the sweep driver imports this module for ``run_trial`` and
never trains.

``config`` is the resolved trial: the sampled axes (``domain``, ``robust_method``,
``noise_magnitude``, ``learning_rate``, ``seed``) merged with the static ``run`` block built
by the orchestrator (model, task, languages, training knobs, resources, storage paths).

Stages (see ``trainables.tasks`` for how a target's recipe and ``train_from`` combine with
the domain axis): ``intermediate`` (domains other than ``none``), ``recipe-{key}`` for each
benchmark-recipe stage of the target (XCOPA: SocialIQA), ``finetune``. Each hands only its
encoder to the next. The fine-tuning stage writes the trial's predictions and gold files in
the official layout to ``{storage}/predictions/{trial_id}``; the driver logs them to MLflow.

Intermediate stage: shared through the stage cache (``trainables.stage_cache``): the first
trial that needs a (model, tasks, settings, seed) configuration trains it, concurrent trials
that need the same one wait for it, later ones (in this sweep, a resumed one or a later sweep
on the same storage) reuse it. Each trial reports ``intermediate/cache_hit``; its config
carries ``intermediate_cache_key`` (computed by the driver from the same inputs).

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
from pathlib import Path

import ray.tune

from trainables.failures import FATAL_KEY, StageFailed, TrainingDiverged, deterministic
from trainables.stage_cache import StageCache, intermediate_inputs, intermediate_key
from trainables.tasks import target_task

STAGE_KEYS = ("epochs", "learning_rate", "max_examples")


def _manifest_path(run: dict, trial_id: str, stage: str) -> Path:
    return Path(run["storage"]) / "stages" / trial_id / f"{stage}.json"


def _fit(cfg: dict, run: dict, name: str, report_to_tune: bool):
    """A stage in a Ray Train worker group (``resources.executor: train``)."""
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    from trainables.loop import train_loop_per_worker

    res = run["resources"]
    fatal = _train_dir(run, name) / "fatal.json"
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={**cfg, "fatal_file": str(fatal)},
        torch_config=TorchConfig(backend="nccl" if res["gpus_per_worker"] > 0 else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=res["workers"], use_gpu=res["gpus_per_worker"] > 0,
            resources_per_worker={"CPU": res["cpus_per_worker"],
                                  **({"GPU": res["gpus_per_worker"]} if res["gpus_per_worker"] else {}),
                                  **res.get("worker_resources", {})},
            placement_strategy=res.get("placement_strategy", "PACK"),
        ),
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=str(Path(run["storage"]) / "train"),
            failure_config=ray.train.FailureConfig(max_failures=run["worker_failures"]),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1),
            callbacks=[TuneReportCallback()] if report_to_tune else [],
        ),
    )
    fatal.unlink(missing_ok=True)
    result = trainer.fit()
    if fatal.is_file():  # rank 0 recorded a deterministic failure: no worker-group restart was spent on it
        record = json.loads(fatal.read_text())
        fatal.unlink()
        raise StageFailed(record["reason"]) from StageFailed(f"in the Train worker (rank 0):\n{record['traceback']}")
    if result.error is not None:
        raise result.error
    return result


def _diverged_reason(cfg: dict, stage: str, m: dict) -> str:
    return (f"training diverged in stage '{stage}' at step {int(m['train/diverged_step'])} (epoch "
            f"{int(m['epoch'])}): loss {m['train/diverged_loss']}, gradient norm "
            f"{m['train/diverged_grad_norm']} (robust_method={cfg.get('robust_method')}, "
            f"noise_magnitude={cfg.get('noise_magnitude')}, learning_rate={cfg.get('learning_rate')}); "
            f"lower the noise magnitude or the learning rate")


def _write_manifest(manifest: Path, done: dict) -> None:
    manifest.parent.mkdir(parents=True, exist_ok=True)
    tmp = manifest.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(done, default=float))
    os.replace(tmp, manifest)


class LocalResult:
    """What ``local_fit`` returns: the shape of a Ray Train ``Result`` the stages read."""

    def __init__(self, metrics: dict, checkpoint: str):
        self.metrics, self.error = metrics, None
        self.checkpoint = type("LocalCheckpoint", (), {"path": checkpoint})()


def _in_process(cfg: dict, run: dict, name: str, session_of):
    """The stage in this process with ``session_of(device, checkpoint_dir)``; returns
    (result, session)."""
    from trainables.loop import train_loop_per_worker

    ckpt = _train_dir(run, name) / "checkpoint_local"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    device = "cuda" if run["resources"]["gpus_per_worker"] > 0 else "cpu"
    session = session_of(device, str(ckpt))
    try:
        train_loop_per_worker(cfg, session)
    finally:
        if device == "cuda":  # a reused trial process starts its next stage with the memory free
            import torch

            torch.cuda.empty_cache()
    return LocalResult(session.last_metrics(), str(ckpt)), session


def local_fit(cfg: dict, run: dict, name: str, report_to_tune: bool) -> LocalResult:
    """A stage run directly in this process (``trainables.session.LocalSession``): no Ray, no
    Train worker group; the benchmarks' baseline for what a sweep adds around its stages."""
    from trainables.session import LocalSession

    return _in_process(cfg, run, name, LocalSession)[0]


def trial_fit(cfg: dict, run: dict, name: str, report_to_tune: bool) -> LocalResult:
    """A stage in the Tune trial's own process (``resources.executor: trial``): the loop runs
    with a ``TrialSession``; its checkpoint under ``train/{stage}-{trial_id}/checkpoint_local``
    is what a retried trial resumes from. After a resume that found every epoch done, the
    final report is handed to Tune again from the checkpoint."""
    from trainables.session import TrialSession

    result, session = _in_process(cfg, run, name, lambda device, ckpt: TrialSession(device, ckpt, report_to_tune))
    if report_to_tune and not session.reports and result.metrics:
        ray.tune.report(result.metrics)
    return result


def _stage(cfg: dict, run: dict, trial_id: str, stage: str, report_to_tune: bool, fit=_fit) -> dict:
    """Run a stage unless its manifest says it finished (or diverged); return {checkpoint,
    metrics}. A diverged stage raises ``TrainingDiverged``, now and on every retry."""
    manifest = _manifest_path(run, trial_id, stage)
    if manifest.is_file():
        done = json.loads(manifest.read_text())
        if done.get("diverged"):
            raise TrainingDiverged(done["diverged"])
        if report_to_tune:  # retried after the stage finished: hand Tune its final result again
            ray.tune.report(done["metrics"])
        return done
    marker = next(_train_dir(run, stage, trial_id).glob("checkpoint_*/diverged.json"), None)
    if marker is not None:  # diverged, but the driver died before writing the manifest
        reason = f"training diverged in stage '{stage}' (recorded in {marker}: {marker.read_text()})"
        _write_manifest(manifest, {"diverged": reason, "metrics": {}})
        raise TrainingDiverged(reason)
    result = fit({**cfg, "stage": stage}, run, f"{stage}-{trial_id}", report_to_tune)
    if (result.metrics or {}).get("train/diverged"):
        reason = _diverged_reason(cfg, stage, result.metrics)
        _write_manifest(manifest, {"diverged": reason, "metrics": result.metrics})
        raise TrainingDiverged(reason)
    done = {"checkpoint": result.checkpoint.path, "metrics": result.metrics}
    _write_manifest(manifest, done)
    return done


def resolve_data_dir(data_dir: str, assets: str) -> str:
    """``builtin`` -> the demo data, written once under the sweep's assets; else unchanged."""
    if data_dir != "builtin":
        return data_dir
    from filelock import FileLock

    from trainables.demo_data import write_demo_data

    out = Path(assets) / "demo_data"
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not (out / "xnli").is_dir():
            write_demo_data(out)
    return str(out)


def predictions_dir(run: dict, trial_id: str) -> Path:
    return Path(run["storage"]) / "predictions" / trial_id


def stage_config(config: dict) -> dict:
    """The worker-loop config shared by all stages, from a resolved trial config."""
    from trainables import performance as perf
    from trainables.models import resolve_model

    run = config["run"]
    data_dir = resolve_data_dir(run["data_dir"], run["assets"])
    model = resolve_model(run["model"], run["assets"])
    return {
        "target_task": run["target_task"], "languages": run["languages"], "data_dir": data_dir,
        "encoder": model, "tokenizer": run.get("tokenizer") or model,
        "max_length": run["max_length"], "batch_size": run["batch_size"],
        "eval_batch_size": run["eval_batch_size"], "seed": int(config["seed"]),
        "doc_stride": run.get("doc_stride", 128), "max_query_length": run.get("max_query_length", 64),
        "retrieval_layer": run.get("retrieval_layer"), "generalized": run.get("generalized", False),
        "cache_dir": str(Path(run["assets"]) / "features"),
        "cpus_per_worker": run["resources"]["cpus_per_worker"],
        "trust_remote_code": run.get("trust_remote_code", False),
        **{k: run.get(k, v) for k, v in perf.DEFAULTS.items()},
    }


def _summary(prefix: str, done: dict) -> dict[str, float]:
    """An earlier stage's training summary, passed on to the fine-tuning stage's reports."""
    return {f"{prefix}/{k}": float(v) for k, v in done["metrics"].items()
            if k in ("train/loss", "train/epoch_s", "global_step") or (k.startswith("train/") and k.endswith("/loss"))}


def _intermediate(config: dict, run: dict, base: dict, trial_id: str, fit) -> tuple[str, dict[str, float]]:
    """The trial's intermediate encoder from the stage cache: trained here if no trial has
    trained this configuration yet (and none is training it now), else reused."""
    inter, tasks = run["intermediate"], config["intermediate_tasks"]
    inputs = intermediate_inputs(run, tasks, config["seed"])
    key = intermediate_key(inputs)

    def build() -> tuple[str, dict]:
        done = _stage({**base, "intermediate_tasks": tasks,
                       "data_dir": resolve_data_dir(inter["data_dir"], run["assets"]),
                       "robust_method": "none", "noise_magnitude": 0.0,
                       "epochs": inputs["epochs"], "learning_rate": inputs["learning_rate"],
                       "max_examples": inputs["max_examples"], "weight_decay": inputs["weight_decay"],
                       "warmup_ratio": inputs["warmup_ratio"], "mixing": inputs["mixing"],
                       "max_steps": inputs["max_steps"]},
                      run, trial_id, "intermediate", report_to_tune=False, fit=fit)
        return str(Path(done["checkpoint"]) / "encoder"), done["metrics"]

    if fit is local_fit:  # no Ray, so no cache coordinator: train it
        encoder, record = build()
        return encoder, {**_summary("intermediate", {"metrics": record}), "intermediate/cache_hit": 0.0}

    cache = StageCache(run["stage_cache"], lease_s=float(os.environ.get("XLT_STAGE_CACHE_LEASE_S", 60)),
                       local_dir=run["assets"])
    encoder, hit, record = cache.get_or_build(key, inputs, owner=trial_id, build=build)
    _remove(_train_dir(run, "intermediate", trial_id))  # the model lives in the stage cache only
    return encoder, {**_summary("intermediate", record), "intermediate/cache_hit": float(hit)}


def _train_dir(run: dict, stage: str, trial_id: str | None = None) -> Path:
    """Where a stage trains: ``train/{stage}-{trial_id}`` (the Train run's name, and the
    in-trial checkpoint's folder); ``stage`` alone when it is that name already."""
    return Path(run["storage"]) / "train" / (stage if trial_id is None else f"{stage}-{trial_id}")


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def retain(run: dict, trial_id: str, stages: list[str], finetune: dict, keep: str) -> None:
    """What a finished trial leaves on storage (``storage.keep_weights``): its predictions and
    manifests always; the fine-tuned weights for ``last`` (the last epoch's) or ``best`` (the
    best English dev epoch's, written over the last one's); never optimizer state, and never
    the recipe stages' models (each is only the next stage's start). Idempotent."""
    for stage in stages:
        _remove(_train_dir(run, stage, trial_id))
    ckpt = Path(finetune.get("checkpoint") or "")
    if keep == "none" or not ckpt.is_dir():
        _remove(_train_dir(run, "finetune", trial_id))
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
    fit = trial_fit if config["run"]["resources"].get("in_trial") else _fit
    try:
        run_stages(config, ray.tune.get_context().get_trial_id(), fit)
    except Exception as e:
        reason = deterministic(e, config["run"]["storage"])
        if reason is not None:
            ray.tune.report({FATAL_KEY: reason, "objective": float("nan"), "train/loss": float("nan"), "epoch": 0})
        raise


def run_stages(config: dict, trial_id: str, fit=_fit) -> dict:
    """Every stage of a trial; returns the fine-tuning stage's {checkpoint, metrics}. ``fit``:
    ``_fit`` (a TorchTrainer per stage, inside Tune), ``trial_fit`` (in the Tune trial's
    process) or ``local_fit`` (in this process, no Ray)."""
    run = config["run"]
    base = stage_config(config)
    extra: dict[str, float] = {}
    encoder = base["encoder"]
    if config["domain"] != "none":
        encoder, extra = _intermediate(config, run, base, trial_id, fit)
    recipe, stages = run.get("recipe") or {}, []
    if recipe.get("enabled", True):
        for key in target_task(run["target_task"]).recipe:
            stages.append(f"recipe-{key}")
            done = _stage({**base, "encoder": encoder, "recipe_task": key, "robust_method": "none",
                           "noise_magnitude": 0.0, "epochs": recipe["epochs"],
                           "learning_rate": recipe["learning_rate"], "max_examples": recipe["max_examples"]},
                          run, trial_id, f"recipe-{key}", report_to_tune=False, fit=fit)
            encoder = str(Path(done["checkpoint"]) / "encoder")
            extra.update(_summary(f"recipe/{key}", done))
    done = _stage({**base, "encoder": encoder, "robust_method": config["robust_method"],
                   "noise_magnitude": float(config["noise_magnitude"]),
                   "robust_options": run["robust_options"].get(config["robust_method"], {}),
                   "epochs": run["epochs"], "learning_rate": float(config["learning_rate"]),
                   "max_examples": run["max_examples"], "report_extra": extra,
                   "weight_decay": run.get("weight_decay", 0.01), "warmup_ratio": run.get("warmup_ratio", 0.1),
                   "select": run.get("select", "last"),
                   "keep_weights": run.get("keep_weights", "none"),
                   "predictions_dir": str(predictions_dir(run, trial_id))},
                  run, trial_id, "finetune", report_to_tune=fit is not local_fit, fit=fit)
    if fit is not local_fit:  # benchmarks and tests read the checkpoints of an in-process run
        retain(run, trial_id, stages, done, run.get("keep_weights", "none"))
    return done
