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
from trainables.robust import METHODS
from trainables.stage_cache import intermediate_inputs, intermediate_key
from trainables.tasks import TASKS


@dataclass(frozen=True)
class Cell:
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


def noise_param(method: str) -> str:
    """The Optuna parameter of ``method``'s magnitude: one per method, so TPE never models
    epsilon, sigma and a substitution probability as one variable."""
    return f"noise_magnitude.{method}"


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
        self.run = run_block(spec, "")  # what the intermediate stage trains with (its cache key)

    def __call__(self, trial) -> dict:
        domain = trial.suggest_categorical("domain", self.domains)
        method = trial.suggest_categorical("robust_method", self.methods)
        seed = trial.suggest_categorical("seed", self.seeds)
        out = {"learning_rate": _suggest(trial, "learning_rate", self.lr), "seed": seed,
               "intermediate_tasks": self.tasks[domain], "noise_magnitude": 0.0}
        uses_noise = METHODS[method].uses_noise
        if uses_noise:
            out["noise_magnitude"] = _suggest(trial, noise_param(method), self.noise[method])
        cell = Cell(domain, method,
                    _grid_value(self.noise[method], out["noise_magnitude"]) if uses_noise else None,
                    _grid_value(self.lr, out["learning_rate"]))
        out.update(cell_id=cell.id, cell=cell.label)
        if domain != "none":
            out["intermediate_cache_key"] = intermediate_key(intermediate_inputs(self.run, self.tasks[domain], seed))
        return out


def run_block(spec: SweepSpec, storage: str, cache_root: str | None = None) -> dict:
    """The static part of every trial's config (everything not sampled). ``cache_root``: the
    stage cache, shared by the sweeps of one ``--storage`` (default: under ``storage``)."""
    t, i = spec.training, spec.intermediate
    return {
        "sweep": spec.name, "storage": storage, "assets": f"{storage}/assets",
        "stage_cache": cache_root or f"{storage}/stage_cache",
        "model": spec.model.name, "tokenizer": spec.model.tokenizer,
        "trust_remote_code": spec.model.trust_remote_code,
        "target_task": spec.target.task, "languages": spec.languages,
        "data_dir": spec.target.data_dir,
        "epochs": t.epochs, "batch_size": t.batch_size, "eval_batch_size": t.eval_batch_size,
        "max_length": t.max_length, "max_examples": t.max_examples,
        "doc_stride": t.doc_stride, "max_query_length": t.max_query_length,
        "weight_decay": t.weight_decay, "warmup_ratio": t.warmup_ratio, "select": t.select,
        "group_by_length": t.group_by_length, "precision": t.precision, "attention": t.attention,
        "compile": t.compile,
        "retrieval_layer": spec.target.retrieval_layer, "generalized": spec.target.generalized,
        "recipe": spec.target.recipe.model_dump(),
        "intermediate": {"epochs": i.epochs, "learning_rate": i.learning_rate,
                         "max_examples": i.max_examples, "data_dir": spec.intermediate_data_dir,
                         "mixing": i.mixing, "max_steps": i.max_steps},
        "robust_options": spec.robust.options,
        "resources": {**spec.resources.model_dump(), "in_trial": spec.resources.in_trial},
        "worker_failures": spec.search.worker_failures,
        "keep_weights": spec.storage.keep_weights,
    }


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
        "methods": {m: {"noise_magnitude": _describe(spec.robust.magnitude(m)),
                        "options": spec.robust.options.get(m, {})} for m in spec.robust.methods},
    }


def _describe(param) -> float | list | dict | None:
    """A magnitude param for the plan: a number, its choices, or its range."""
    if param is None or isinstance(param, Range):
        return None if param is None else param.model_dump()
    vals = param_values(param)
    return vals[0] if len(vals) == 1 else vals
