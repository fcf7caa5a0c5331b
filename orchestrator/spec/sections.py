"""The sections of a space file (``model``, ``target``, ``intermediate``, ``robust``, ``training``,
``search``, ``resources``, ``storage``), each a strict pydantic model holding its keys' defaults:
the one place a setting's default is written."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from orchestrator.spec.params import (
    Magnitude,
    Param,
    Range,
    _registry_keys,
    _Strict,
    _unique_list,
    param_values,
)
from trainables.catalog import CATALOG, DOMAINS
from trainables.known_models import model_name_problem
from trainables.names import unknown
from trainables.robust import METHODS
from trainables.robust.options import MAX_MAGNITUDE, OPTIONS, parse_options
from trainables.tasks import TASKS


class Model(_Strict):
    """``model``: the encoder (and tokenizer) every trial starts from."""
    name: str = "builtin:tiny-bert"
    """Hub id (e.g. xlm-roberta-base), a local directory, or builtin:tiny-bert."""
    tokenizer: str | None = None
    """Defaults to the model's own."""
    trust_remote_code: bool = False

    @field_validator("name", "tokenizer")
    @classmethod
    def _loadable(cls, v, info):
        why = None if v is None else model_name_problem(v, "tokenizer" if info.field_name == "tokenizer" else "model")
        if why:
            raise ValueError(why)
        return v


class Recipe(_Strict):
    """The benchmark's own English stages before fine-tuning (XCOPA: SocialIQA)."""
    enabled: bool = True
    epochs: int = Field(default=5, ge=1)
    """train_xcopa.sh: 5 epochs of SocialIQA before the 5 of English COPA."""
    learning_rate: float = Field(default=2e-5, gt=0)
    max_examples: int | None = Field(default=None, ge=1)


class Target(_Strict):
    """``target``: the XTREME-R task evaluated zero-shot, its languages and where its data lives."""
    task: str = "xnli"
    languages: list[str] | None = None
    """Evaluation languages; default: every language of the task (or of the demo data)."""
    data_dir: str = "builtin"
    """builtin (embedded demo data), hub (Hugging Face hub), or a local mirror directory."""
    recipe: Recipe = Recipe()
    generalized: bool = False
    """Sentence-pair tasks with parallel test sets (XNLI, PAWS-X): also score every (first-
    sentence language, second-sentence language) pair (generalized cross-lingual transfer)."""
    retrieval_layer: int | None = Field(default=None, ge=0)
    """Tatoeba: the hidden-state index to mean-pool (0 = embeddings). Default: run_tatoeba.sh's,
    8 for a 12-layer encoder (mBERT, XLM-R base), 14 for a 24-layer one (XLM-R large), else the
    last layer (``trainables.evaluation.retrieval_layer``). LAReQA and Mewsli-X encode with the
    last layer, the one their dual encoder trains."""

    @model_validator(mode="after")
    def _layer(self):
        if self.retrieval_layer is not None and self.task != "tatoeba":
            raise ValueError(f"retrieval_layer: a layer setting is Tatoeba's (run_tatoeba.sh); {self.task} "
                             f"encodes with the layer it is trained on (allowed with task: tatoeba)")
        return self

    @model_validator(mode="after")
    def _generalized(self):
        if self.generalized and self.task in TASKS and TASKS[self.task].family != "classification":
            pairs = [k for k, t in TASKS.items() if t.family == "classification"]
            raise ValueError(f"generalized: needs a sentence-pair task with parallel test sets "
                             f"({', '.join(pairs)}), not {self.task}")
        return self

    @model_validator(mode="after")
    def _builtin(self):
        if self.task in TASKS and self.data_dir == "builtin" and not TASKS[self.task].demo_languages:
            with_demo = [k for k, t in TASKS.items() if t.demo_languages]
            raise ValueError(f"task '{self.task}' has no built-in demo data (only {', '.join(with_demo)} "
                             f"has); set target.data_dir to a local mirror directory or 'hub'")
        return self

    @field_validator("task")
    @classmethod
    def _task(cls, v):
        if v not in TASKS:
            raise ValueError(unknown("target task", v, TASKS))
        return v

    @model_validator(mode="after")
    def _languages(self):
        if self.task not in TASKS or self.languages is None:
            return self
        task = TASKS[self.task]
        allowed = task.demo_languages if self.data_dir == "builtin" else task.languages
        bad = [x for x in self.languages if x not in allowed]
        if bad:
            where = "the built-in demo data of " if self.data_dir == "builtin" else ""
            raise ValueError(f"languages {bad} are not in {where}{self.task}; allowed: "
                             f"{', '.join(allowed)}")
        if not self.languages:
            raise ValueError("languages must not be empty")
        _unique_list(self.languages, "languages")
        return self


class Intermediate(_Strict):
    """``intermediate``: the domain axis and how each domain's intermediate model is trained."""
    domains: list[str] = Field(default=["none"], min_length=1)
    """The domain axis; 'none' skips the intermediate stage."""
    tasks: dict[str, list[str]] = {}
    """Override a domain's catalogue tasks: {domain: [task keys]}."""
    epochs: int = Field(default=1, ge=1)
    learning_rate: float = Field(default=5e-5, gt=0)
    max_examples: int | None = Field(default=None, ge=1)
    """The same cap for every domain (shared between a domain's tasks), so dataset size does not
    masquerade as domain."""
    mixing: Literal["proportional", "uniform"] = "proportional"
    """How a domain's tasks are mixed: examples-proportional batches, or a uniform draw per step."""
    max_steps: int | None = Field(default=None, ge=1)
    """The same optimiser-step budget for every domain (overrides epochs)."""
    data_dir: str | None = None
    """builtin, hub or a local directory (raw files or an xlt-data parquet mirror); default:
    target.data_dir."""

    @field_validator("domains")
    @classmethod
    def _domains(cls, v):
        return _registry_keys(v, DOMAINS, "domain")

    @model_validator(mode="after")
    def _tasks(self):
        problems = []
        for domain, keys in self.tasks.items():
            if domain == "none" or domain not in self.domains:
                problems.append(f"tasks.{domain}: only domains listed in domains (other than "
                                f"none) take tasks; listed: {', '.join(self.domains)}")
            problems += [f"tasks.{domain}: {unknown('intermediate task', k, CATALOG)}"
                         for k in keys if k not in CATALOG]
            if not keys:
                problems.append(f"tasks.{domain}: empty task list")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def tasks_of(self, domain: str) -> list[str]:
        return list(self.tasks.get(domain, DOMAINS.get(domain, ())))


class Robust(_Strict):
    """``robust``: the method axis, each method's magnitude and options."""
    methods: list[str] = Field(default=["none"], min_length=1)
    noise_magnitude: Magnitude | None = None
    """Required when a method uses noise; each method's own magnitude knob. One Param for
    all noisy methods, or ``{method: Param}`` per method."""
    options: dict[str, dict[str, Any]] = {}
    """Fixed per-method settings, {method: {option: value}}."""

    @field_validator("methods")
    @classmethod
    def _methods(cls, v):
        return _registry_keys(v, METHODS, "robust method")

    def magnitude(self, method: str) -> Param | None:
        """The magnitude param of ``method`` (None for methods without noise)."""
        if not METHODS[method].uses_noise or self.noise_magnitude is None:
            return None
        if isinstance(self.noise_magnitude, dict):
            return self.noise_magnitude.get(method)
        return self.noise_magnitude

    @model_validator(mode="after")
    def _noise(self):
        noisy = [m for m in self.methods if METHODS[m].uses_noise]
        mag = self.noise_magnitude
        if noisy and mag is None:
            raise ValueError(f"noise_magnitude is required: method(s) {', '.join(noisy)} use noise "
                             f"({METHODS[noisy[0]].magnitude_meaning})")
        if not noisy and mag is not None:
            raise ValueError("noise_magnitude is set but none of the methods "
                             f"({', '.join(self.methods)}) uses noise; remove it")
        problems = []
        if isinstance(mag, dict):
            for m in mag:
                if m not in noisy:
                    problems.append(f"noise_magnitude.{m}: not a method of this sweep that uses noise; "
                                    f"allowed keys: {', '.join(noisy)}")
            problems += [f"noise_magnitude.{m}: missing; every method that uses noise needs its magnitude "
                         f"({METHODS[m].magnitude_meaning})" for m in noisy if m not in mag]
        for method in noisy:
            p = self.magnitude(method)
            if p is None:
                continue
            where = f"noise_magnitude.{method}" if isinstance(mag, dict) else "noise_magnitude"
            vals = param_values(p) or [p.low, p.high]
            if min(vals) < 0:
                problems.append(f"{where}: must be >= 0")
            cap = MAX_MAGNITUDE.get(method)
            if cap is not None and max(vals) > cap:
                problems.append(f"{where}: {method} reads it as a probability; values above {cap} "
                                f"(got {max(vals)}) are invalid")
        bad = [m for m in self.options if m not in self.methods]
        if bad:
            problems.append(f"options for {bad}, which are not in methods ({', '.join(self.methods)})")
        for method, opts in self.options.items():
            if method not in OPTIONS:
                continue
            try:
                parse_options(method, opts)
            except ValidationError as e:
                for err in e.errors():
                    where = ".".join(str(x) for x in err["loc"])
                    allowed = f"; allowed keys: {', '.join(OPTIONS[method].model_fields)}" \
                        if err["type"] == "extra_forbidden" else ""
                    problems.append(f"options.{method}.{where}: {err['msg']}{allowed}")
        if problems:
            raise ValueError("\n".join(dict.fromkeys(problems)))
        return self


class Training(_Strict):
    """``training``: fine-tuning's schedule and the settings every stage shares (``trainables.config``)."""
    learning_rate: Param = 5e-5
    epochs: int = Field(default=3, ge=1)
    batch_size: int = Field(default=32, ge=1)
    """Global batch size, split across Train workers."""
    eval_batch_size: int = Field(default=128, ge=1)
    max_length: int = Field(default=128, ge=8)
    max_examples: int | None = Field(default=None, ge=1)
    doc_stride: int = Field(default=128, ge=1)
    """QA: the step, in sub-tokens, from one context window to the next (squad.py's meaning)."""
    max_query_length: int = Field(default=64, ge=1)
    """QA: questions are cut to this many tokens."""
    weight_decay: float = Field(default=0.01, ge=0)
    """AdamW weight decay (the XTREME scripts Huang et al. 2021 used: 0)."""
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    """Fraction of steps of linear warm-up before the linear decay (XTREME scripts: 0)."""
    warmup_steps: int | None = Field(default=None, ge=0)
    """Warm-up as a number of optimiser steps (QA's train_qa.sh: 500); when set, it replaces
    ``warmup_ratio``."""
    max_grad_norm: float = Field(default=1.0, gt=0)
    """Gradients are clipped to this global L2 norm before each optimiser step (XTREME scripts: 1.0)."""
    negatives_pool: int | None = Field(default=None, ge=1)
    """LAReQA / Mewsli-X fine-tuning: pairs per in-batch-negative pool. Each query is scored
    against the candidates of its own pool of the global batch, as each forward pass of the
    scripts' gradient accumulation is its own pool (their per-GPU micro-batch: LAReQA 4,
    Mewsli-X 64). None: the whole global batch is one pool."""
    select: Literal["last", "best"] = "last"
    """Weights evaluated zero-shot: the last epoch's, or the epoch with the best English dev
    objective (never target-language dev data)."""
    group_by_length: bool = True
    """Training batches of examples of similar length (less padding; trainables.performance)."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """auto: bf16 autocast on a GPU that supports it, fp32 on CPU."""
    attention: Literal["sdpa", "eager"] = "sdpa"
    compile: bool = False
    """torch.compile the encoder (pays on long GPU stages only)."""

    @field_validator("learning_rate")
    @classmethod
    def _lr_positive(cls, lr):
        vals = param_values(lr)
        if (vals and min(vals) <= 0) or (isinstance(lr, Range) and lr.low <= 0):
            raise ValueError(f"must be > 0 (got {min(vals) if vals else lr.low})")
        return lr


class Asha(_Strict):
    """``search.asha``: early stopping of bad trials by epoch."""
    enabled: bool = False
    grace_period: int = Field(default=1, ge=1)
    reduction_factor: float = Field(default=2.0, gt=1)


class Search(_Strict):
    """``search``: the Optuna sampler, the objective, samples per cell, concurrency and retries."""
    sampler: Literal["tpe", "random", "qmc", "gp"] = "tpe"
    samples_per_cell: int = Field(default=1, ge=1)
    """Optuna-sampled settings of the continuous knobs per (cell, seed)."""
    metric: Literal["objective", "train/loss"] = "objective"
    """objective = English dev accuracy of the target task (zero-shot model selection)."""
    mode: Literal["max", "min"] = "max"
    asha: Asha = Asha()
    max_concurrent_trials: int | None = Field(default=None, ge=1)
    """Default: what the cluster can hold (its CPUs or GPUs / one trial's need)."""
    max_failures: int = Field(default=2, ge=0)
    """Tune-level retries of a failed trial."""
    worker_failures: int = Field(default=1, ge=0)
    """Train-level restarts of a stage's worker group before the trial fails."""
    seed: int = 0
    """Seed of the Optuna sampler."""


class Resources(_Strict):
    """``resources``: the workers of a trial's stages, their CPUs, GPUs and placement, and the executor."""
    workers: int = Field(default=1, ge=1)
    cpus_per_worker: float = Field(default=1, gt=0)
    gpus_per_worker: float = Field(default=0, ge=0)
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = "PACK"
    """How a stage's Train workers are placed: PACK (fewest nodes: NVLink/shared memory),
    SPREAD, or STRICT_SPREAD (one worker per node, e.g. one GPU node per worker)."""
    executor: Literal["auto", "train", "trial"] = "auto"
    """Where a stage trains: ``train`` (a Ray Train worker group, ``TorchTrainer``, per stage),
    ``trial`` (in the Tune trial's own process, which then holds the worker's resources; one
    worker only), ``auto`` (``trial`` for one worker, ``train`` for several)."""
    reuse_processes: bool = True
    """A finished trial's process runs the next trial of the same resources (Tune's
    ``reuse_actors``), so torch and transformers are imported once per process, not once per
    trial (6-9 s each on 2 CPU cores; benchmark ``trial_reuse``). A failed trial's process
    is never reused. ``false``: a fresh process per trial."""
    worker_resources: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")],
                           Annotated[float, Field(gt=0)]] = {}
    """Custom Ray resources each Train worker also needs (e.g. ``{a100: 1}`` to pick a node
    type of the cluster file); CPU and GPU go in the two keys above."""

    @model_validator(mode="after")
    def _executor(self):
        if self.executor == "trial" and self.workers > 1:
            raise ValueError(f"executor: 'trial' runs one worker in the trial's own process, but "
                             f"resources.workers is {self.workers}; use 'train' or 'auto' "
                             f"(allowed: auto, train, trial)")
        return self

    @property
    def in_trial(self) -> bool:
        """Whether stages train in the Tune trial's process (see ``executor``)."""
        return self.executor == "trial" or (self.executor == "auto" and self.workers == 1)

    @field_validator("worker_resources")
    @classmethod
    def _no_builtin(cls, v):
        clash = sorted(set(v) & {"CPU", "GPU", "memory", "object_store_memory"})
        if clash:
            raise ValueError(f"{clash} are set by cpus_per_worker/gpus_per_worker, not here")
        return v


class Storage(_Strict):
    """``storage``: what a finished trial keeps."""
    keep_weights: Literal["none", "last", "best"] = "none"
    """What a finished trial keeps of its fine-tuned model: ``none`` (its predictions and gold
    files only: what re-scoring and the report read), ``last`` (the last epoch's weights) or
    ``best`` (the epoch with the best English dev objective; the last where the task has no
    English dev set). No finished stage keeps optimizer state; intermediate models live in
    the stage cache only."""
