"""Typed configurations for tests, made the way a sweep makes them: a space-file mapping
validated by ``parse_spec`` (every default from the spec), then ``run_config``,
``trial_choices`` and the trial's own stage builder."""

from __future__ import annotations

from orchestrator.space import Cell, run_config, trial_choices
from orchestrator.spec import parse_spec
from trainables.config import RunConfig, StageConfig, TrialChoices
from trainables.trial import finetune_config


def trial(space: dict | None = None, storage: str = "/s", domain: str = "none", method: str = "none",
          magnitude: float = 0.0, learning_rate: float = 5e-5, seed: int = 0,
          cache_root: str | None = None) -> tuple[RunConfig, TrialChoices]:
    """The RunConfig of the space ``{"name": "t", **space}`` and one trial's choices in it."""
    spec = parse_spec({"name": "t", **(space or {})})
    run = run_config(spec, storage, cache_root)
    cell = Cell(domain, method, None, None)
    return run, trial_choices(run, domain, method, magnitude, learning_rate, seed,
                              spec.intermediate.tasks_of(domain), cell)


def tune_config(space: dict | None = None, **choices) -> dict:
    """What Tune hands ``run_trial``: ``{"run": RunConfig dict, **choices}``."""
    run, chosen = trial(space, **choices)
    return {"run": run.to_dict(), **chosen.to_dict()}


def finetune(model: str, data_dir, storage, space: dict | None = None, trial_id: str = "t",
             **choices) -> StageConfig:
    """The fine-tuning stage of one trial on a local model and data directory."""
    space = dict(space or {})
    space["model"] = {"name": str(model), **space.get("model", {})}
    space["target"] = {"data_dir": str(data_dir), **space.get("target", {})}
    run, chosen = trial(space, str(storage), **choices)
    return finetune_config(run, chosen, trial_id)


def logged_config(domain: str, method: str, seed: int, languages: list[str], learning_rate: float = 2e-5,
                  magnitude: float = 0.0, epochs: int = 1) -> dict:
    """A trial's Tune config for tests that log hand-made runs through the real tracker; its cell
    is named ``domain=..,robust_method=..`` (id = name)."""
    space = {"target": {"languages": languages, "data_dir": "hub"}, "training": {"epochs": epochs},
             "intermediate": {"domains": sorted({"none", domain}), "data_dir": "/d"},
             "robust": {"methods": sorted({"none", method}),
                        **({"noise_magnitude": magnitude} if method != "none" else {})}}
    cell = f"domain={domain},robust_method={method}"
    return {**tune_config(space, domain=domain, method=method, magnitude=magnitude, learning_rate=learning_rate,
                          seed=seed), "cell": cell, "cell_id": cell}
