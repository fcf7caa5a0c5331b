"""Spec -> trials: categorical cells run exhaustively once per seed; Optuna samples the rest."""

from __future__ import annotations

import optuna
import pytest

from orchestrator.space import OptunaSpace, cells, plan, points
from orchestrator.spec import parse_spec


def _spec(**robust):
    return parse_spec({
        "name": "t",
        "intermediate": {"domains": ["none", "general", "legal"],
                         "tasks": {"general": ["mnli"], "legal": ["contract_nli"]}},
        "robust": {"methods": ["none", "rs_rp"], **robust},
        "training": {"learning_rate": {"low": 1e-5, "high": 1e-3, "log": True}},
        "seeds": [1, 2],
    })


def _run_study(spec, sampler):
    """Drive a real Optuna study exactly as Ray's OptunaSearch does (enqueue, ask, space)."""
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for p in points(spec):
        study.enqueue_trial(p)
    space, configs = OptunaSpace(spec), []
    for _ in range(len(points(spec))):
        trial = study.ask()
        cfg = space(trial)
        configs.append({**trial.params, **cfg})
        study.tell(trial, cfg["learning_rate"] * 1000)  # any finite objective
    return configs


def test_conditional_noise_grid_does_not_multiply_method_none():
    spec = _spec(noise_magnitude={"choice": [0.01, 0.1]})
    cs = cells(spec)
    assert len(cs) == 3 * (1 + 2)  # none is not multiplied by magnitudes
    assert len({c.id for c in cs}) == len(cs)
    assert all(c.noise_magnitude is None for c in cs if c.robust_method == "none")


def test_every_cell_runs_exactly_once_per_seed_with_tpe():
    spec = _spec(noise_magnitude={"choice": [0.01, 0.1]})
    configs = _run_study(spec, optuna.samplers.TPESampler(seed=0, multivariate=True, group=True))
    assert len(configs) == 9 * 2 == plan(spec)["trials"]
    keys = [(c["cell_id"], c["seed"]) for c in configs]
    assert len(set(keys)) == len(keys), "no (cell, seed) twice"
    assert {c["cell_id"] for c in configs} == {c.id for c in cells(spec)}
    for c in configs:
        assert 1e-5 <= c["learning_rate"] <= 1e-3  # sampled by TPE within bounds
        if c["robust_method"] == "none":
            assert c["noise_magnitude"] == 0.0
        else:
            assert c["noise_magnitude"] in (0.01, 0.1)


def test_continuous_noise_is_sampled_only_in_branches_that_use_it():
    spec = _spec(noise_magnitude={"low": 0.001, "high": 0.5, "log": True})
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=3, group=True))
    for p in points(spec):
        study.enqueue_trial(p)
    space = OptunaSpace(spec)
    seen = []
    for _ in range(len(points(spec))):
        t = study.ask()
        out = space(t)
        cfg = {**t.params, **out}
        seen.append((cfg["robust_method"], "noise_magnitude.rs_rp" in t.params, cfg["noise_magnitude"]))
        study.tell(t, 0.5)
    assert len(seen) == 6 * 2
    for method, suggested, value in seen:
        assert suggested == (method == "rs_rp")
        assert (0.001 <= value <= 0.5) if method == "rs_rp" else value == 0.0


def test_cell_id_is_deterministic_and_shared_across_seeds():
    a, b = _spec(noise_magnitude=0.1), _spec(noise_magnitude=0.1)
    assert [c.id for c in cells(a)] == [c.id for c in cells(b)]
    configs = _run_study(a, optuna.samplers.RandomSampler(seed=0))
    by_cell = {}
    for c in configs:
        by_cell.setdefault(c["cell_id"], set()).add(c["seed"])
    assert all(seeds == {1, 2} for seeds in by_cell.values())


@pytest.mark.parametrize("sampler", ["tpe", "random", "qmc", "gp"])
def test_each_configured_sampler_builds(sampler):
    from orchestrator.tuner import _sampler

    spec = parse_spec({"name": "t", "search": {"sampler": sampler}})
    assert isinstance(_sampler(spec), optuna.samplers.BaseSampler)


def test_space_is_picklable_for_resume():
    import pickle

    space = OptunaSpace(_spec(noise_magnitude=0.1))
    assert pickle.loads(pickle.dumps(space)).domains == ["none", "general", "legal"]


def test_every_config_ray_optuna_search_suggests_is_read_back_by_the_trial():
    """What Tune hands ``run_trial`` is ``OptunaSearch.suggest``'s dict: the space's return value
    plus every parameter it suggested (``noise_magnitude.<method>``); the trial reads its
    choices from it, whatever the method."""
    from ray.tune.search.optuna import OptunaSearch

    from orchestrator.space import run_config
    from trainables.config import RunConfig, TrialChoices

    spec = parse_spec({"name": "t", "robust": {"methods": ["none", "adversarial", "rs_rp", "rs_da"],
                                               "noise_magnitude": {"adversarial": {"choice": [0.1, 0.5]},
                                                                   "rs_rp": {"low": 0.01, "high": 0.1},
                                                                   "rs_da": 1.0}},
                       "seeds": [0, 1]})
    pts = points(spec)
    search = OptunaSearch(space=OptunaSpace(spec), metric="objective", mode="max", points_to_evaluate=pts,
                          sampler=optuna.samplers.TPESampler(seed=0))
    run = run_config(spec, "/s")
    seen = []
    for i in range(len(pts) + 2):  # the enqueued cells, then two sampled trials
        config = search.suggest(f"t{i}")
        swept = config["robust_method"] in ("adversarial", "rs_rp")  # a fixed magnitude is not suggested
        assert any(k.startswith("noise_magnitude.") for k in config) == swept
        choices = TrialChoices.of({"run": run.to_dict(), **config})
        assert choices.robust_method == config["robust_method"] and choices.noise_magnitude == config[
            "noise_magnitude"]
        if swept:
            assert choices.noise_magnitude == config[f"noise_magnitude.{choices.robust_method}"]
        assert RunConfig.from_dict(run.to_dict()) == run
        seen.append((choices.robust_method, choices.noise_magnitude, choices.seed))
        search.on_trial_complete(f"t{i}", {"objective": 0.5})
    grid = [(m, n, s) for m, n, s in seen[:len(pts)] if m != "rs_rp"]  # rs_rp: a range, sampled
    assert sorted(grid) == sorted((m, n, s) for m, n in [("none", 0.0), ("adversarial", 0.1), ("adversarial", 0.5),
                                                          ("rs_da", 1.0)] for s in (0, 1))
    assert all(0.01 <= n <= 0.1 for m, n, _ in seen if m == "rs_rp")
    with pytest.raises(TypeError, match="unknown typo"):  # anything else the trial does not know is refused
        TrialChoices.of({"run": run.to_dict(), **config, "typo": 1})
