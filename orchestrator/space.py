"""Spec -> the sweep's trials: categorical cells enumerated exhaustively, continuous knobs by Optuna.

A *cell* is one combination of the categorical (ablation) choices: domain x method, times
the noise-magnitude choices for methods that use noise (conditional: ``none`` is never
multiplied by magnitudes), times learning-rate choices. Seeds replicate cells and are not
part of the cell id, so all seeds of a cell share ``xlt.cell`` in MLflow.

Optuna cannot consume ``tune.grid_search``, so every (cell, seed, sample) is enqueued as an
Optuna trial with its categorical params fixed (``points_to_evaluate`` ->
``study.enqueue_trial``) and ``num_samples`` is exactly their count: every cell runs, none
twice. The define-by-run ``optuna_space`` then asks the sampler (TPE by default) for the
continuous knobs only; a conditional knob (noise) is only suggested in branches that use it,
and constants are returned for the rest. Each method's magnitude is its own Optuna parameter
(``noise_magnitude.<method>``; epsilon, sigma and a probability are different variables even
when the space file gives them one shared range); the trial config carries it as
``noise_magnitude``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from orchestrator.spec import Range, SweepSpec, param_values
from trainables.config import (
    Encoding,
    IntermediateConfig,
    ModelRef,
    Optimiser,
    Resources,
    RunConfig,
    Schedule,
    Speed,
    TargetConfig,
    Training,
    TrialChoices,
)
from trainables.robust import METHODS
from trainables.schema import noise_param
from trainables.stage_cache import intermediate_inputs, intermediate_key
from trainables.tasks import TASKS


@dataclass(frozen=True)
class Cell:
    """One cell of the design: a domain and a robust method, with the magnitude and learning rate when those are
    grids."""
    domain: str
    robust_method: str
    noise_magnitude: float | None
    """The categorical magnitude, or None when the method has none or it is sampled."""
    learning_rate: float | None
    """The categorical learning rate, or None when it is sampled."""

    def choices(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @property
    def id(self) -> str:
        """Deterministic short id of the categorical choices (the MLflow ``xlt.cell`` tag)."""
        blob = json.dumps(self.choices(), sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:10]

    @property
    def label(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.choices().items())


def _grid_value(param, value):
    """``value`` if ``param`` is a categorical axis (several choices), else None."""
    vals = param_values(param)
    return value if vals is not None and len(vals) > 1 else None


def cells(spec: SweepSpec) -> list[Cell]:
    """Every cell of the sweep: domains x methods x (grid) magnitudes x (grid) learning rates."""
    lrs = param_values(spec.training.learning_rate)
    lr_axis = lrs if lrs is not None and len(lrs) > 1 else [None]
    out = []
    for domain in spec.intermediate.domains:
        for method in spec.robust.methods:
            mags: list = [None]
            if METHODS[method].uses_noise:
                vals = param_values(spec.robust.magnitude(method))
                mags = vals if vals is not None and len(vals) > 1 else [None]
            for mag in mags:
                for lr in lr_axis:
                    out.append(Cell(domain, method, mag, lr))
    return out


def points(spec: SweepSpec) -> list[dict]:
    """Optuna points to enqueue: every cell x seed x sample, categorical params fixed."""
    pts = []
    for cell in cells(spec):
        fixed = cell.choices()
        if "noise_magnitude" in fixed:
            fixed[noise_param(cell.robust_method)] = fixed.pop("noise_magnitude")
        for seed in spec.seeds:
            for _ in range(spec.search.samples_per_cell):
                pts.append({**fixed, "seed": seed})
    return pts


def _suggest(trial, name: str, param):
    if isinstance(param, Range):
        return trial.suggest_float(name, param.low, param.high, log=param.log)
    vals = param_values(param)
    return vals[0] if len(vals) == 1 else trial.suggest_categorical(name, vals)


class OptunaSpace:
    """The define-by-run space for OptunaSearch. A class, not a closure: Tune pickles the
    searcher (and so this) into the experiment state for ``--resume``."""

    def __init__(self, spec: SweepSpec):
        self.domains, self.methods, self.seeds = (
            spec.intermediate.domains, spec.robust.methods, spec.seeds)
        self.lr = spec.training.learning_rate
        self.noise = {m: spec.robust.magnitude(m) for m in self.methods}
        self.tasks = {d: spec.intermediate.tasks_of(d) for d in self.domains}
        self.run = run_config(spec, "")  # what the intermediate stage trains with (its cache key)

    def __call__(self, trial) -> dict:
        domain = trial.suggest_categorical("domain", self.domains)
        method = trial.suggest_categorical("robust_method", self.methods)
        seed = trial.suggest_categorical("seed", self.seeds)
        lr = _suggest(trial, "learning_rate", self.lr)
        noise = _suggest(trial, noise_param(method), self.noise[method]) if METHODS[method].uses_noise else 0.0
        cell = Cell(domain, method, _grid_value(self.noise[method], noise) if METHODS[method].uses_noise else None,
                    _grid_value(self.lr, lr))
        return trial_choices(self.run, domain, method, noise, lr, seed, self.tasks[domain], cell).to_dict()


def run_config(spec: SweepSpec, storage: str, cache_root: str | None = None) -> RunConfig:
    """The static part of every trial's config (everything not sampled), typed. ``cache_root``:
    the stage cache, shared by the sweeps of one ``--storage`` (default: under ``storage``)."""
    t, i, r, recipe = spec.training, spec.intermediate, spec.resources, spec.target.recipe
    return RunConfig(
        sweep=spec.name, storage=storage, assets=f"{storage}/assets",
        stage_cache=cache_root or f"{storage}/stage_cache",
        model=ModelRef(spec.model.name, spec.model.tokenizer, spec.model.trust_remote_code),
        target=TargetConfig(spec.target.task, tuple(spec.languages), spec.target.data_dir,
                            spec.target.generalized, spec.target.retrieval_layer),
        training=Training(
            batch_size=t.batch_size, negatives_pool=t.negatives_pool, eval_batch_size=t.eval_batch_size,
            encoding=Encoding(t.max_length, t.doc_stride, t.max_query_length),
            optimiser=Optimiser(weight_decay=t.weight_decay, warmup_ratio=t.warmup_ratio,
                                warmup_steps=t.warmup_steps, max_grad_norm=t.max_grad_norm),
            speed=Speed(t.group_by_length, t.precision, t.attention, t.compile)),
        finetune=Schedule(t.epochs, None, t.max_examples, None),
        intermediate=IntermediateConfig(Schedule(i.epochs, i.learning_rate, i.max_examples, i.max_steps),
                                        spec.intermediate_data_dir, i.mixing),
        recipe=Schedule(recipe.epochs, recipe.learning_rate, recipe.max_examples, None) if recipe.enabled else None,
        robust_options={m: dict(o) for m, o in spec.robust.options.items()},
        select=t.select, keep_weights=spec.storage.keep_weights,
        resources=Resources(r.workers, r.cpus_per_worker, r.gpus_per_worker, r.placement_strategy,
                            dict(r.worker_resources), r.in_trial, spec.search.worker_failures),
    )


def trial_choices(run: RunConfig, domain: str, robust_method: str, noise_magnitude: float, learning_rate: float,
                  seed: int, tasks: list[str], cell: Cell) -> TrialChoices:
    """One trial's choices, its intermediate cache key computed here (statting the data files
    once): the trial trains under exactly this key."""
    inputs = intermediate_inputs(run, tasks, seed) if domain != "none" else None
    return TrialChoices(domain=domain, robust_method=robust_method, noise_magnitude=float(noise_magnitude),
                        learning_rate=float(learning_rate), seed=int(seed), intermediate_tasks=tuple(tasks),
                        cell_id=cell.id, cell=cell.label,
                        intermediate_cache_key=intermediate_key(inputs) if inputs is not None else None,
                        intermediate_inputs=inputs)


PLAN_TRAINING = ("epochs", "learning_rate", "batch_size", "max_length", "doc_stride", "weight_decay",
                 "warmup_ratio")
"""The fine-tuning settings the plan shows (where the file is silent: the target's benchmark values)."""


def plan(spec: SweepSpec) -> dict:
    """What a sweep would run: cells, trials and resources (for --dry-run and the log)."""
    r = spec.resources
    cs = cells(spec)
    knobs = [("learning_rate", spec.training.learning_rate),
             *((noise_param(m), spec.robust.magnitude(m)) for m in spec.robust.methods)]
    sampled = [k for k, p in knobs if isinstance(p, Range)]
    recipe = len(TASKS[spec.target.task].recipe) if spec.target.recipe.enabled else 0
    # intermediate stages: one per (domain, seed), whatever the cells (the stage cache)
    inter = sum(d != "none" for d in spec.intermediate.domains) * len(spec.seeds)
    stages = inter + sum(1 + recipe for c in cs) * len(spec.seeds) * spec.search.samples_per_cell
    return {
        "sweep": spec.name, "model": spec.model.name, "target_task": spec.target.task,
        "languages": spec.languages,
        "cells": [{"id": c.id, **c.choices(),
                   "intermediate_tasks": spec.intermediate.tasks_of(c.domain)} for c in cs],
        "seeds": spec.seeds, "samples_per_cell": spec.search.samples_per_cell,
        "trials": len(points(spec)), "training_stages": stages, "intermediate_models": inter,
        "sampled_by_optuna": {k: f"{spec.search.sampler}" for k in sampled},
        "per_trial": {"train_workers": r.workers, "executor": "trial" if r.in_trial else "train",
                      "cpus": r.workers * r.cpus_per_worker,
                      "gpus": r.workers * r.gpus_per_worker},
        "asha": spec.search.asha.enabled, "metric": spec.search.metric, "mode": spec.search.mode,
        "training": {k: _describe(getattr(spec.training, k)) if k == "learning_rate" else getattr(spec.training, k)
                     for k in PLAN_TRAINING if k != "doc_stride" or TASKS[spec.target.task].family == "qa"},
        "methods": {m: {"noise_magnitude": _describe(spec.robust.magnitude(m)),
                        "options": spec.robust.options.get(m, {})} for m in spec.robust.methods},
    }


def _describe(param) -> float | list | dict | None:
    """A magnitude param for the plan: a number, its choices, or its range."""
    if param is None or isinstance(param, Range):
        return None if param is None else param.model_dump()
    vals = param_values(param)
    return vals[0] if len(vals) == 1 else vals
