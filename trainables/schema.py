"""The names of everything a sweep records: metrics, params and tags, written and parsed here.

The trainables write metrics into their reports, the driver logs them to MLflow
(``orchestrator.tracking``), and the report and the CLI read them back; all of them build and
parse names with this module only, so a renamed metric cannot be written one way and read
another.

Metrics (a trial's child run; ``@`` becomes ``_at_`` in MLflow, ``mlflow_name``):

==================================  ==========================================================
``objective``                       English dev score of the fine-tuning data (``task_summary``
                                    of ``dev/{task}/en/*``): model selection, Optuna, ASHA
``epoch``, ``global_step``          the report's epoch and optimiser step (MLflow's step)
``{task}/{lang}/{metric}``          a target language's test score (``lang_metric``)
``{task}/{l1}-{l2}/{metric}``       a generalized cross-lingual pair (``pair_metric``)
``{task}/generalized/{x}/{metric}`` the pairs' mean (``x`` = ``avg``) or per first language
``{task}/avg/{metric}``, ``{task}/score``  the mean over languages, the benchmark's task score
``train/*``                         training: ``loss``, ``{part}/loss`` (several tasks),
                                    ``epoch_s``, ``examples_per_s``, ``padding_fraction``,
                                    ``nodes``, ``resumed_at_epoch``, ``replayed``, ``diverged*``
``robust/*``, ``perf/*``            the robust method's diagnostics; which fast paths ran
``select/best_epoch``, ``select/best_objective``   ``training.select: best``
``intermediate/*``, ``recipe/{task}/*``  earlier stages' summaries; ``intermediate/cache_hit``
==================================  ==========================================================

Params of a trial run: ``TRIAL_PARAMS`` (the cell's choices and seed), ``RUN_PARAMS`` (what
the sweep trains) and ``intermediate/cache_key``; tags: ``TAG_*`` below.
"""

from __future__ import annotations

from typing import NamedTuple

OBJECTIVE, EPOCH, GLOBAL_STEP = "objective", "epoch", "global_step"
TRAIN_LOSS = "train/loss"
CACHE_HIT, CACHE_KEY = "intermediate/cache_hit", "intermediate/cache_key"
BEST_EPOCH, BEST_OBJECTIVE = "select/best_epoch", "select/best_objective"
FATAL = "xlt/fatal"
"""A trial's last result before a deterministic failure carries its reason (``trainables.failures``)."""
DIVERGED, DIVERGED_STEP = "train/diverged", "train/diverged_step"
DIVERGED_LOSS, DIVERGED_GRAD_NORM = "train/diverged_loss", "train/diverged_grad_norm"
TRAIN_NODES, RESUMED_AT_EPOCH, REPLAYED = "train/nodes", "train/resumed_at_epoch", "train/replayed"
EPOCH_S, EXAMPLES_PER_S, PADDING_FRACTION = "train/epoch_s", "train/examples_per_s", "train/padding_fraction"
SUMMARIES = ("avg", "generalized")
"""Second parts of ``{task}/.../{metric}`` names that are not a language."""

TAG_ROLE, TAG_SWEEP_KEY, TAG_TRIAL_ID = "xlt.role", "xlt.sweep_key", "xlt.trial_id"
TAG_CELL, TAG_CELL_NAME = "xlt.cell", "xlt.cell_name"
TAG_ERROR, TAG_STOPPED_EARLY, TAG_RETRIES = "xlt.error", "xlt.stopped_early", "xlt.retries"
TAG_PARENT = "mlflow.parentRunId"
ROLE_SWEEP, ROLE_TRIAL = "sweep", "trial"

TRIAL_PARAMS = ("domain", "intermediate_tasks", "robust_method", "noise_magnitude", "learning_rate", "seed")
NOISE_PARAM_PREFIX = "noise_magnitude."
"""Optuna's parameter of one method's magnitude is ``noise_magnitude.<method>`` (``noise_param``)."""


def noise_param(method: str) -> str:
    """The Optuna parameter of ``method``'s magnitude: one per method, so TPE never models
    epsilon, sigma and a substitution probability as one variable."""
    return NOISE_PARAM_PREFIX + method


def is_searcher_param(key: str) -> bool:
    """Whether a key of a Tune trial config is only the searcher's. Ray's ``OptunaSearch`` puts
    every value the define-by-run space suggested into the config next to what the space
    returned; the magnitude's per-method parameter is one of them (the trial reads
    ``noise_magnitude``)."""
    return key.startswith(NOISE_PARAM_PREFIX)


RUN_PARAMS = ("model", "target_task", "languages", "epochs", "batch_size", "max_length", "max_examples",
              "data_dir")


def lang_set(task: str, lang: str) -> str:
    """The evaluation-set name of a target language (its metrics: ``lang_metric``)."""
    return f"{task}/{lang}"


def pair_set(task: str, l1: str, l2: str) -> str:
    """The evaluation-set name of a generalized pair (first sentence in l1, second in l2)."""
    return f"{task}/{l1}-{l2}"


def set_metric(eval_set: str, metric: str) -> str:
    """A metric of an evaluation set (``xnli/de`` -> ``xnli/de/accuracy``)."""
    return f"{eval_set}/{metric}"


def lang_metric(task: str, lang: str, metric: str) -> str:
    """A metric of a target language (``xnli/de/accuracy``)."""
    return set_metric(lang_set(task, lang), metric)


def pair_metric(task: str, l1: str, l2: str, metric: str) -> str:
    """A metric of a generalized pair (``xnli/de-zh/accuracy``)."""
    return set_metric(pair_set(task, l1, l2), metric)


def generalized_metric(task: str, which: str, metric: str) -> str:
    """``which``: ``avg`` or a first-sentence language."""
    return f"{task}/generalized/{which}/{metric}"


def avg_metric(task: str, metric: str) -> str:
    """A metric averaged over the target languages (``xnli/avg/accuracy``)."""
    return f"{task}/avg/{metric}"


def task_score(task: str) -> str:
    """The task's official score (``xnli/score``)."""
    return f"{task}/score"


def dev_set(task: str) -> str:
    """The evaluation-set name of a task's English dev set (its metrics: ``dev/{task}/en/*``)."""
    return f"dev/{task}/en"


def part_loss(part: str) -> str:
    """The training loss of one task of a stage (``train/mnli/loss``)."""
    return f"train/{part}/loss"


def robust_metric(name: str) -> str:
    """A robust method's diagnostic (``robust/<name>``)."""
    return f"robust/{name}"


def perf_metric(name: str) -> str:
    """A fast-path diagnostic (``perf/<name>``)."""
    return f"perf/{name}"


def stage_summary(stage: str, name: str) -> str:
    """An earlier stage's metric in the fine-tuning stage's reports (``intermediate/train/loss``)."""
    return f"{stage}/{name}"


def is_summarised(name: str) -> bool:
    """Whether an earlier stage's metric is passed on to the fine-tuning stage's reports."""
    return name in (TRAIN_LOSS, EPOCH_S, GLOBAL_STEP) or (name.startswith("train/") and name.endswith("/loss"))


class LangMetric(NamedTuple):
    """A per-language metric name, parsed (``parse_lang_metric``)."""
    task: str
    lang: str
    metric: str


def parse_lang_metric(name: str) -> LangMetric | None:
    """``{task}/{lang}/{metric}`` of one target language (not a pair, mean or summary), else None.
    Accepts the logged (``_at_``) and the reported (``@``) spelling alike."""
    parts = name.split("/")
    if len(parts) != 3 or parts[1] in SUMMARIES or "-" in parts[1] or parts[0] in ("dev", "train", "robust"):
        return None
    return LangMetric(*parts)


def is_trainable_metric(name: str) -> bool:
    """A metric of the trainable's own (not Tune's bookkeeping: ``pid``, ``config/...``)."""
    return (name in (OBJECTIVE, EPOCH, GLOBAL_STEP) or "/" in name) and not name.startswith("config/")


def mlflow_name(name: str) -> str:
    """MLflow metric names allow no ``@``: ``mewslix/ja/map@20`` is logged as ``map_at_20``."""
    return name.replace("@", "_at_")


def _param_str(v) -> str:
    if isinstance(v, list | tuple):
        return ",".join(map(str, v)) if v else "-"
    return str(v)


def trial_params(config: dict) -> dict[str, str]:
    """The params of a trial's run, from its Tune config (``{"run": RunConfig dict, **choices}``)."""
    from trainables.config import RunConfig, TrialChoices

    run, choices = RunConfig.from_dict(config["run"]), TrialChoices.of(config)
    values = {"model": run.model.name, "target_task": run.target.task, "languages": run.target.languages,
              "epochs": run.finetune.epochs, "batch_size": run.training.batch_size,
              "max_length": run.training.encoding.max_length, "max_examples": run.finetune.max_examples,
              "data_dir": run.target.data_dir}
    out = {k: _param_str(getattr(choices, k)) for k in TRIAL_PARAMS}
    out[CACHE_KEY] = choices.intermediate_cache_key or "-"
    out.update({k: _param_str(values[k]) for k in RUN_PARAMS})
    return out


def param_list(values) -> str:
    """A list param (``languages``, ``seeds``) as MLflow holds it."""
    return _param_str(values)
