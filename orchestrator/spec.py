"""The sweep spec: a space file (YAML) -> validated, typed objects, before Ray starts.

One space file describes one sweep. Sections:

- ``name``: the sweep; names the MLflow experiment and the Tune run folder.
- ``model``: encoder (hub id, local path, or ``builtin:tiny-bert``), tokenizer, remote code.
- ``target``: target task (registry key), its evaluation languages, where its data lives.
- ``intermediate``: the domain axis (``none`` = no intermediate stage) and its stage knobs.
- ``robust``: the method axis, ``noise_magnitude`` (for methods that use noise only), options.
- ``training``: fine-tuning knobs; ``learning_rate`` may be swept.
- ``seeds``: replicate seeds; every cell runs once per seed.
- ``search``: Optuna sampler, samples per cell, metric/mode, ASHA, concurrency, retries.
- ``resources``: Train workers per trial, CPUs/GPUs (and custom resources) per worker, and
  how the workers are placed across nodes.
- ``storage``: what a finished trial keeps on ``--storage`` (``keep_weights``).
- ``studies`` (optional): several sweeps in one file, each the rest of the file with a few
  keys overridden (``load_sweeps``), e.g. a paper's model x task grid.

Swept values (``learning_rate``, ``noise_magnitude``) take one of three forms: a number
(fixed), ``{choice: [...]}`` (a categorical axis: every value runs, like domains and methods),
or ``{low: .., high: .., log: true}`` (continuous, sampled by Optuna).

Every problem is collected and raised once as ``SpecError`` whose lines each name the key
path, what is wrong and what is allowed. Registry keys (tasks, domains, methods) are checked
against the registries in ``trainables`` with "did you mean" suggestions.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from orchestrator.spacefile import Positions, find_space, read_space, shipped_spaces
from trainables.catalog import CATALOG, DOMAINS
from trainables.registry import encoder_depth, max_positions, model_name_problem, unknown
from trainables.robust import METHODS
from trainables.robust.options import MAX_MAGNITUDE, OPTIONS, parse_options
from trainables.tasks import TASKS


class SpecError(ValueError):
    """All problems of one space file, one per line; ``where`` gives the ``(line, column)``
    of the problems that have a place in the file (shown as ``line:column:`` before them)."""

    def __init__(self, source: str, problems: list[str], where: dict[str, tuple[int, int]] | None = None):
        self.problems = problems
        self.where = dict(where or {})
        head = f"{source}: {len(problems)} problem{'s' * (len(problems) != 1)}"
        lines = [f"  - {'{}:{}: '.format(*self.where[p]) if p in self.where else ''}{p}" for p in problems]
        super().__init__("\n".join([head, *lines]))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Strict):
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _order(self):
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0, got {self.low}")
        return self


class Choice(_Strict):
    choice: list[float] = Field(min_length=1)

    @field_validator("choice")
    @classmethod
    def _unique(cls, v):
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate values in {v}: every value would run twice")
        return v


def _param_form(v: Any) -> str | None:
    if isinstance(v, dict):
        return "choice" if "choice" in v else "range" if {"low", "high"} & v.keys() else None
    return "fixed"


Param = Annotated[
    Annotated[float, Tag("fixed")] | Annotated[Choice, Tag("choice")] | Annotated[Range, Tag("range")],
    Discriminator(
        _param_form,
        custom_error_type="param_form",
        custom_error_message="expected a number, {choice: [v1, v2, ...]} or "
                             "{low: x, high: y, log: true|false} (noise_magnitude also takes "
                             "{method: one of those} per robust method)",
    ),
]
"""A swept knob: fixed number, categorical choice (grid axis), or continuous range (Optuna)."""


def _magnitude_form(v: Any) -> str:
    if isinstance(v, dict) and v.keys() & METHODS.keys() and not ({"choice", "low", "high", "log"} & v.keys()):
        return "per_method"
    return "shared"


Magnitude = Annotated[
    Annotated[Param, Tag("shared")] | Annotated[dict[str, Param], Tag("per_method")],
    Discriminator(_magnitude_form),
]
"""``noise_magnitude``: one Param shared by every noisy method, or ``{method: Param}`` (each
method on its own scale: epsilon, sigma and a probability rarely share a range)."""


def param_values(p: Param) -> list[float] | None:
    """The finite values of a fixed or choice param; None for a range."""
    if isinstance(p, Range):
        return None
    return list(p.choice) if isinstance(p, Choice) else [float(p)]


def _unique_list(v: list, what: str) -> list:
    dup = sorted({x for x in v if v.count(x) > 1}, key=str)
    if dup:
        raise ValueError(f"duplicate {what} {dup}: every {what[:-1]} runs once")
    return v


def _registry_keys(v: list[str], registry, kind: str) -> list[str]:
    """A categorical axis: every key known to its registry, none twice."""
    bad = [unknown(kind, k, registry) for k in v if k not in registry]
    if bad:
        raise ValueError("\n".join(bad))
    return _unique_list(v, kind.split()[-1] + "s")


class Model(_Strict):
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
    epochs: int = Field(default=1, ge=1)
    learning_rate: float = Field(default=2e-5, gt=0)
    max_examples: int | None = Field(default=None, ge=1)


class Target(_Strict):
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
    """Retrieval tasks: hidden-state index to mean-pool (0 = embeddings; None = last layer).
    XTREME-R: 8 for mBERT/XLM-R base, 14 for XLM-R large."""

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
    learning_rate: Param = 5e-5
    epochs: int = Field(default=3, ge=1)
    batch_size: int = Field(default=32, ge=1)
    """Global batch size, split across Train workers."""
    eval_batch_size: int = Field(default=128, ge=1)
    max_length: int = Field(default=128, ge=8)
    max_examples: int | None = Field(default=None, ge=1)
    doc_stride: int = Field(default=128, ge=1)
    """QA: tokens of overlap between windows over a long context."""
    max_query_length: int = Field(default=64, ge=1)
    """QA: questions are cut to this many tokens."""
    weight_decay: float = Field(default=0.01, ge=0)
    """AdamW weight decay (the XTREME scripts Huang et al. 2021 used: 0)."""
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    """Fraction of steps of linear warm-up before the linear decay (XTREME scripts: 0)."""
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
    enabled: bool = False
    grace_period: int = Field(default=1, ge=1)
    reduction_factor: float = Field(default=2.0, gt=1)


class Search(_Strict):
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
    keep_weights: Literal["none", "last", "best"] = "none"
    """What a finished trial keeps of its fine-tuned model: ``none`` (its predictions and gold
    files only: what re-scoring and the report read), ``last`` (the last epoch's weights) or
    ``best`` (the epoch with the best English dev objective; the last where the task has no
    English dev set). No finished stage keeps optimizer state; intermediate models live in
    the stage cache only."""


class SweepSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    model: Model = Model()
    target: Target = Target()
    intermediate: Intermediate = Intermediate()
    robust: Robust = Robust()
    training: Training = Training()
    seeds: list[int] = Field(default=[0], min_length=1)
    search: Search = Search()
    resources: Resources = Resources()
    storage: Storage = Storage()

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        return _unique_list(v, "seeds")

    @model_validator(mode="after")
    def _cross(self):
        problems = []
        source = self.intermediate_data_dir
        for d in self.intermediate.domains:
            for k in self.intermediate.tasks_of(d):
                entry = CATALOG.get(k)
                if entry and source == "builtin" and not entry.demo:
                    demo = [t for t in self.intermediate.tasks_of(d) if CATALOG[t].demo]
                    problems.append(f"intermediate: task '{k}' (domain {d}) has no built-in demo data; set "
                                    f"intermediate.data_dir to a mirror or hub, or name demo tasks with "
                                    f"intermediate.tasks.{d}: [{', '.join(demo) or '...'}]")
                if entry and source == "hub" and (not entry.hub or entry.local_only):
                    problems.append(f"intermediate: task '{k}' (domain {d}) cannot come from "
                                    f"the hub ({entry.access}); set intermediate.data_dir")
        rs_rp = self.robust.options.get("rs_rp", {})
        task = TASKS.get(self.target.task)
        if rs_rp.get("smoothed_eval") and task and task.family not in ("classification", "multiple_choice"):
            problems.append(f"robust.options.rs_rp.smoothed_eval: the smoothed classifier votes over classes; "
                            f"{self.target.task} is a {task.family} task (allowed: classification and "
                            f"multiple-choice targets)")
        for method in ("adversarial", "rs_rp"):
            layer = self.robust.options.get(method, {}).get("layer")
            depth = encoder_depth(self.model.name)
            if isinstance(layer, int) and depth is not None and layer > depth:
                problems.append(f"robust.options.{method}.layer: {layer} exceeds the depth of {self.model.name} "
                                f"(allowed: 0 = input word embeddings, 1..{depth} = output of that layer)")
        longest = max_positions(self.model.name)
        if longest is not None and self.training.max_length > longest:
            problems.append(f"training.max_length: {self.training.max_length} exceeds the {longest} positions "
                            f"of {self.model.name} (allowed: 8..{longest})")
        continuous = isinstance(self.training.learning_rate, Range) or any(
            isinstance(self.robust.magnitude(m), Range) for m in self.robust.methods)
        if self.search.samples_per_cell > 1 and not continuous:
            problems.append("search.samples_per_cell > 1 needs a continuous knob "
                            "({low, high}); without one every sample of a cell is identical")
        if self.search.asha.enabled and self.search.asha.grace_period > self.training.epochs:
            problems.append(f"search.asha.grace_period ({self.search.asha.grace_period}) exceeds "
                            f"training.epochs ({self.training.epochs})")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def intermediate_data_dir(self) -> str:
        return self.intermediate.data_dir or self.target.data_dir

    @property
    def languages(self) -> list[str]:
        task = TASKS[self.target.task]
        default = task.demo_languages if self.target.data_dir == "builtin" else task.languages
        return list(self.target.languages or default)


_TAGS = {"fixed": None, "choice": Choice, "range": Range}
_PARAM_KEYS = ("learning_rate", "noise_magnitude")


def _clean(loc: tuple) -> tuple:
    """Drop the union-member tags and validator names pydantic puts into error locations."""
    out: list = []
    for part in loc:
        if isinstance(part, str) and part.startswith("function-"):
            continue
        if part in ("shared", "per_method") and out and out[-1] == "noise_magnitude":
            continue
        if part in _TAGS and out and (out[-1] in _PARAM_KEYS or out[-2:-1] == ["noise_magnitude"]):
            out += ["__tag__", part]
            continue
        out.append(part)
    return tuple(out)


def _path(loc: tuple) -> str:
    out = ""
    parts = list(_clean(loc))
    i = 0
    while i < len(parts):
        part = parts[i]
        if part == "__tag__":
            i += 2
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        i += 1
    return out or "(top level)"


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class that owns the key at ``loc`` (for listing allowed keys)."""
    parts = list(_clean(loc))[:-1]
    if len(parts) >= 2 and parts[-2] == "__tag__":
        return _TAGS[parts[-1]]
    model: Any = SweepSpec
    for part in parts:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        ann = field.annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if model is None:
            return None
    return model


def _message(err: dict) -> str:
    kind, loc, msg = err["type"], err["loc"], err["msg"]
    if kind == "extra_forbidden":
        owner = _model_at(loc)
        allowed = sorted(owner.model_fields) if owner else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown key{hint}; allowed keys: {', '.join(allowed)}"
    if kind == "missing":
        return "required key is missing"
    msg = msg.removeprefix("Value error, ")
    if kind in ("float_parsing", "int_parsing", "float_type", "int_type", "bool_parsing",
                "string_type", "list_type", "dict_type", "model_type"):
        msg += f" (got {err.get('input')!r})"
    return msg


_KEY_PATH = r"[A-Za-z_][\w-]*(?:\.[\w-]+|\[\d+\])*"
"""A dotted key path with list indices (``robust.options.rs_rp.layer``, ``seeds[2]``)."""
_SUBPATH = re.compile(rf"^{_KEY_PATH}: ")
"""A validator's problem that starts with its own key path (``options.rs_rp.layer: ...``)."""


_LEAD = re.compile(r"^\[studies [^\]]*\] |^")
_KEYPATH = re.compile(rf"^({_KEY_PATH})(?=[: ])")


def _key_path(problem: str) -> tuple:
    """The key path a problem line starts with, as a tuple (``a.b[2]`` -> ``('a', 'b', 2)``)."""
    m = _KEYPATH.match(problem[_LEAD.match(problem).end():])
    if not m:
        return ()
    return tuple(int(x[1:-1]) if x.startswith("[") else x
                 for x in re.findall(r"\[\d+\]|[^.\[\]]+", m.group(1)))


def _locate(problems: list[str], positions: Positions | None, prefixes: list[tuple]) -> dict:
    """``{problem: (line, column)}`` for the problems whose key path (or a parent of it) is
    written in the file; ``prefixes``: where to look first (a study's overrides)."""
    if positions is None:
        return {}
    where = {}
    for problem in problems:
        path = _key_path(problem)
        if not path:
            continue
        for prefix in [*prefixes, ()]:
            at = positions.at.get((*prefix, *path)) if prefix else positions.of(path)
            if at is not None:
                where[problem] = at
                break
    return where


def parse_spec(data: Any, source: str = "<spec>", positions: Positions | None = None,
               prefixes: list[tuple] | None = None) -> SweepSpec:
    """Validate a parsed YAML document; raise SpecError listing every problem (with its
    ``line:column`` where ``positions`` has one)."""
    if not isinstance(data, dict):
        raise SpecError(source, ["(top level): expected a mapping of sections"])
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as e:
        problems, seen = [], set()
        for err in e.errors():
            path = _path(err["loc"])
            for part in _message(err).split("\n"):  # a validator may report several problems
                if path == "(top level)" and _SUBPATH.match(part):
                    line = part
                elif _SUBPATH.match(part):
                    line = f"{path}.{part}"
                else:
                    line = f"{path}: {part}"
                if line not in seen:  # union branches can repeat one problem
                    seen.add(line)
                    problems.append(line)
        raise SpecError(source, problems, _locate(problems, positions, prefixes or [])) from None


def resolve_space(path: str | Path) -> Path:
    """The space file ``path`` names: a path, or a space shipped with the package."""
    found = find_space(path)
    if found is None:
        shipped = ", ".join(sorted(shipped_spaces())) or "none installed"
        raise SpecError(str(path), [f"file not found (from {Path.cwd()}); shipped spaces, usable by name "
                                    f"from any directory: {shipped}"])
    return found


class _Source:
    """A read space file: its data, key positions and the problems found while reading."""

    def __init__(self, path: str | Path):
        found = resolve_space(path)
        self.path = str(found)
        try:
            self.data, self.positions, dups = read_space(found)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            problem = f"not valid YAML: {getattr(e, 'problem', None) or e}"
            raise SpecError(self.path, [problem], {} if mark is None else {
                problem: (mark.line + 1, mark.column + 1)}) from None
        self.problems = [m for m, _ in dups]
        self.where = dict(dups)

    def fail(self, problems: list[str] = (), where: dict | None = None):
        """Raise every problem of the file: those found reading it, then ``problems``."""
        everything = [*self.problems, *(p for p in problems if p not in self.problems)]
        raise SpecError(self.path, everything, {**self.where, **(where or {})}) from None

    def parse(self, data: Any, prefixes: list[tuple] | None = None) -> SweepSpec:
        try:
            spec = parse_spec(data, self.path, self.positions, prefixes)
        except SpecError as e:
            self.fail(e.problems, e.where)
        if self.problems:
            self.fail()
        return spec


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a space file of one sweep (safe YAML only)."""
    src = _Source(path)
    if isinstance(src.data, dict) and "studies" in src.data:
        src.fail(["studies: this file holds several sweeps; load it with load_sweeps"])
    return src.parse(src.data)


def deep_merge(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``: mappings merge key by key, anything else is replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_sweeps(path: str | Path, only: list[str] | None = None, data_dir: str | None = None) -> list[SweepSpec]:
    """The sweeps of a space file: itself, or one per entry of its ``studies`` section.

    ``studies: {key: overrides}`` makes a file hold several sweeps that differ in a few keys
    (the model, the target task and what depends on them: a paper's model x task grid). Each
    study is the rest of the file deep-merged with its overrides, named ``{name}-{key}``, and
    validated as a whole sweep; problems are reported for all studies at once, a problem
    shared by every study once. ``only`` picks studies by key (``xlt-sweep --study``);
    ``data_dir`` (``xlt-sweep --data-dir``) replaces ``target.data_dir`` and
    ``intermediate.data_dir`` everywhere (an offline mirror)."""
    src = _Source(path)
    data = src.data
    if data_dir is not None and isinstance(data, dict):
        over = {"target": {"data_dir": data_dir}, "intermediate": {"data_dir": data_dir}}
        data = deep_merge(data, over)
        if isinstance(data.get("studies"), dict):
            data["studies"] = {k: deep_merge(v, over) if isinstance(v, dict) else v
                               for k, v in data["studies"].items()}
    if not (isinstance(data, dict) and "studies" in data):
        if only:
            src.fail([f"--study {', '.join(only)}: this file has no studies section"])
        return [src.parse(data)]
    studies = data.get("studies")
    base = {k: v for k, v in data.items() if k != "studies"}
    if not isinstance(studies, dict) or not studies or not all(isinstance(v, dict) for v in studies.values()):
        src.fail(["studies: expected a mapping {study key: {overrides}} with at least one study"])
    problems = [f"studies.{k}: a study key must match [A-Za-z0-9][A-Za-z0-9_.-]*" for k in studies
                if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", str(k))]
    problems += [f"--study {k}: no such study; allowed: {', '.join(map(str, studies))}"
                 for k in only or [] if k not in studies]
    if problems:
        src.fail(problems, _locate(problems, src.positions, []))
    specs, found, where = [], {}, {}
    selected = [k for k in studies if not only or k in only]
    for key in selected:
        merged = deep_merge(base, studies[key])
        merged["name"] = f"{merged.get('name', '')}-{key}"
        try:
            specs.append(parse_spec(merged, src.path, src.positions, [("studies", key)]))
        except SpecError as e:
            for problem in e.problems:
                found.setdefault(problem, []).append(str(key))
                if problem in e.where:
                    where.setdefault(problem, e.where[problem])
    if found or src.problems:
        lines = {p: p if len(keys) == len(selected) > 1 else f"[studies {', '.join(keys)}] {p}"
                 for p, keys in found.items()}
        src.fail(list(lines.values()), {lines[p]: at for p, at in where.items()})
    return specs
