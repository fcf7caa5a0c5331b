"""Typed configuration of a sweep's trials and stages: built once, frozen, handed down.

How a setting travels from the space file to the worker loop::

    space file -> orchestrator.spec.SweepSpec      every key validated, every default defined (once)
               -> orchestrator.space.run_config     RunConfig: what every trial of the sweep shares
    Optuna     -> orchestrator.space.OptunaSpace    TrialChoices: one trial's cell, seed and samples,
                                                    its intermediate cache key computed here, once
    trial      -> trainables.trial.stage_configs    one StageConfig per stage -> trainables.loop

The classes here hold no defaults: a value is either in the spec (which owns every default) or
computed from it, so no reader further down can disagree about what a missing key means.
Tune carries a trial's configuration as plain data (its ``param_space``, the experiment state
``--resume`` reads, ``params.json``), so ``to_dict`` / ``from_dict`` exist for that one
boundary; ``from_dict`` is strict: a missing or unknown key raises ``TypeError`` naming it.

Which settings the stages share (``training.*`` applies to every stage unless listed here):

==================  ==========================================================================
every stage         ``batch_size``, ``eval_batch_size``, ``max_length``, ``doc_stride``,
                    ``max_query_length``, ``weight_decay``, ``warmup_ratio``,
                    ``warmup_steps``, ``max_grad_norm``, ``group_by_length``, ``precision``, ``attention``,
                    ``compile`` (``Training``), and the seed
per stage           ``epochs``, ``learning_rate``, ``max_examples`` (``Schedule``): the
                    intermediate stage's from ``intermediate.*`` (plus its ``max_steps``
                    and ``mixing``), a recipe stage's from ``target.recipe.*``, fine-tuning's
                    from ``training.*`` (its learning rate is the trial's, possibly sampled)
fine-tuning only    the robust method and its magnitude and options, ``training.select``,
                    ``storage.keep_weights``, the target languages' final evaluation
==================  ==========================================================================
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, fields
from typing import Any


class _Plain:
    """``to_dict`` / ``from_dict`` for a frozen dataclass of plain values and nested ones."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        """Strict: every field present, no other key (nested dataclasses and tuples rebuilt)."""
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in data]
        extra = sorted(set(data) - set(names))
        if missing or extra:
            problems = [f"missing {', '.join(missing)}"] * bool(missing) + [f"unknown {', '.join(extra)}"] * bool(extra)
            raise TypeError(f"{cls.__name__}: {'; '.join(problems)}")
        hints = typing.get_type_hints(cls)
        return cls(**{n: _build(hints[n], data[n]) for n in names})


def _build(hint, value):
    """``value`` (plain data) as the annotated type: nested configs and tuples rebuilt."""
    if value is None:
        return None
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
        else (hint,)
    for option in options:
        if isinstance(option, type) and issubclass(option, _Plain):
            return option.from_dict(value)
        if typing.get_origin(option) is tuple:
            return tuple(value)
    return value



CONFIG_FORMAT = 3
"""The layout of a trial's Tune config (``{"run": RunConfig dict, **TrialChoices}``). A sweep
records it when it starts; ``--resume`` of a sweep saved with another layout is refused before
Ray starts (Tune restores each trial's config as it was saved). 1: the flat ``run`` dict before
the typed configurations; 2: this module; 3: ``Optimiser.warmup_steps`` and
``Training.negatives_pool``."""


@dataclass(frozen=True)
class Encoding(_Plain):
    """How examples become model inputs (the feature cache's key holds all of it)."""
    max_length: int
    doc_stride: int
    """QA: the step, in sub-tokens, from one context window to the next (squad.py)."""
    max_query_length: int


@dataclass(frozen=True)
class Speed(_Plain):
    """The fast paths (``trainables.performance``) and their plain alternatives."""
    group_by_length: bool
    precision: str
    attention: str
    compile: bool


@dataclass(frozen=True)
class Optimiser(_Plain):
    """AdamW and its linear warm-up / linear decay schedule, as every stage uses them."""
    weight_decay: float
    warmup_ratio: float
    warmup_steps: int | None
    """Warm-up steps; when set, instead of ``warmup_ratio`` of the stage's steps."""
    max_grad_norm: float
    """The global L2 norm gradients are clipped to before each step."""


@dataclass(frozen=True)
class Training(_Plain):
    """What every stage of a trial trains with (``training.*`` but the per-stage schedule)."""
    batch_size: int
    """The global batch, split across the Train workers."""
    negatives_pool: int | None
    """Retrieval fine-tuning (LAReQA, Mewsli-X): pairs per in-batch-negative pool of the global
    batch; None: one pool (``trainables.tasks.retrieval.Retrieval.loss``)."""
    eval_batch_size: int
    encoding: Encoding
    optimiser: Optimiser
    speed: Speed


@dataclass(frozen=True)
class Schedule(_Plain):
    """How long and how fast one stage trains."""
    epochs: int
    learning_rate: float | None
    """None in ``RunConfig.finetune`` only: fine-tuning's learning rate is the trial's."""
    max_examples: int | None
    max_steps: int | None
    """An optimiser-step budget that overrides ``epochs`` (the intermediate stage's)."""


@dataclass(frozen=True)
class ModelRef(_Plain):
    """The encoder a trial starts from."""
    name: str
    """Hub id, local directory or ``builtin:tiny-bert`` (resolved to a path in the trial)."""
    tokenizer: str | None
    trust_remote_code: bool


@dataclass(frozen=True)
class TargetConfig(_Plain):
    """The target task, its evaluation languages and data."""
    task: str
    languages: tuple[str, ...]
    data_dir: str
    generalized: bool
    retrieval_layer: int | None


@dataclass(frozen=True)
class Resources(_Plain):
    """What each stage's workers get, and where the stage trains."""
    workers: int
    cpus_per_worker: float
    gpus_per_worker: float
    placement_strategy: str
    worker_resources: dict[str, float]
    in_trial: bool
    """Stages train in the Tune trial's own process (``resources.executor``)."""
    worker_failures: int
    """Train-level restarts of a stage's worker group before the trial fails."""


@dataclass(frozen=True)
class IntermediateConfig(_Plain):
    """How a domain's intermediate model is trained (its tasks are the trial's choice)."""
    schedule: Schedule
    data_dir: str
    mixing: str


@dataclass(frozen=True)
class RunConfig(_Plain):
    """The part of a trial's configuration every trial of a sweep shares."""
    sweep: str
    storage: str
    """The sweep's own folder (``<--storage>/_xlt/<sweep>``): manifests, train runs, predictions."""
    assets: str
    """Built-in model and data, the feature cache."""
    stage_cache: str
    """The intermediate models, shared by the sweeps of one ``--storage``."""
    model: ModelRef
    target: TargetConfig
    training: Training
    finetune: Schedule
    intermediate: IntermediateConfig
    recipe: Schedule | None
    """The target's benchmark-recipe stages (XCOPA: SocialIQA), or None when disabled."""
    robust_options: dict[str, dict[str, Any]]
    select: str
    keep_weights: str
    resources: Resources


@dataclass(frozen=True)
class TrialChoices(_Plain):
    """One trial's cell, seed and sampled values (what ``OptunaSpace`` returns)."""
    domain: str
    robust_method: str
    noise_magnitude: float
    learning_rate: float
    seed: int
    intermediate_tasks: tuple[str, ...]
    cell_id: str
    cell: str
    intermediate_cache_key: str | None
    """The stage-cache key of this trial's intermediate model (None for domain ``none``),
    computed once by the driver and used as is by the trial."""
    intermediate_inputs: dict | None
    """What that key hashes (``trainables.stage_cache.intermediate_inputs``)."""

    @classmethod
    def of(cls, config: dict) -> TrialChoices:
        """The choices of a Tune trial config (``{"run": ..., **choices}``, plus the searcher's
        own parameters, ``trainables.schema.is_searcher_param``, which are left out)."""
        from trainables.schema import is_searcher_param

        return cls.from_dict({k: v for k, v in config.items() if k != "run" and not is_searcher_param(k)})


@dataclass(frozen=True)
class RobustChoice(_Plain):
    """The fine-tuning stage's robust method, magnitude and options."""
    method: str
    magnitude: float
    options: dict[str, Any]


@dataclass(frozen=True)
class StageConfig(_Plain):
    """Everything one stage's worker loop reads (``trainables.loop.train_loop_per_worker``)."""
    stage: str
    """``intermediate``, ``recipe-<task>`` or ``finetune``."""
    encoder: str
    """The encoder to start from: a local directory."""
    tokenizer: str
    trust_remote_code: bool
    data_dir: str
    cache_dir: str | None
    """The Arrow feature cache (None: features are not cached)."""
    target_task: str
    languages: tuple[str, ...]
    generalized: bool
    retrieval_layer: int | None
    seed: int
    cpus_per_worker: float
    training: Training
    schedule: Schedule
    intermediate_tasks: tuple[str, ...]
    mixing: str
    recipe_task: str | None
    robust: RobustChoice
    select: str
    keep_weights: str
    predictions_dir: str | None
    report_extra: dict[str, float]
    """Earlier stages' summaries, added to every report of this stage."""
    fatal_file: str | None
    """Set by the Train executor: where rank 0 records a deterministic failure."""

    def with_schedule(self, **changes) -> StageConfig:
        return dataclasses.replace(self, schedule=dataclasses.replace(self.schedule, **changes))
