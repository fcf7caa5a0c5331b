"""xlt-report on a real MLflow store with a planted effect: the report recovers its sign, size
and dependence on typological distance, and finds nothing where nothing was planted. Then the
reviewer's toy cases: several samples per (cell, seed), ASHA-stopped trials, one seed.

Runs are written by the real ``SweepTracker`` (the same parent/child layout, params and metric
names a sweep writes). Planted, per language l with syntactic distance d_l to English:
legal - general = 12 * (d_l - 0.3) points (helps far languages, hurts near ones), general -
none = 0, and under rs_rp the legal effect is 2 points larger (a method x domain interaction).
Seed noise: N(0, 0.4) per run and language, 5 seeds.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from configs import logged_config
from mlflow.tracking import MlflowClient

from orchestrator.report import stats as S
from orchestrator.report.cli import build, main
from orchestrator.report.collect import ReportError
from orchestrator.report.typology import LANGUAGES, distance_to_english, typology_table
from orchestrator.tracking import SweepTracker

LANGS = ["en", "ar", "bg", "de", "el", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh"]


def planted(domain: str, method: str, lang: str) -> float:
    d = distance_to_english(lang, "syntax_knn")
    base = 75 - 20 * d
    if domain == "legal":
        base += 12 * (d - 0.3) + (2.0 if method == "rs_rp" else 0.0)
    return base


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    uri = f"sqlite:///{tmp}/mlflow.db"
    tracker = SweepTracker(uri, "planted", sweep_key=str(tmp / "planted"), artifact_root=str(tmp / "art"))
    tracker.start_sweep({"trials": 30, "cells": [None] * 6, "model": "m", "target_task": "xnli",
                         "languages": LANGS, "seeds": list(range(5))})
    rng = np.random.default_rng(7)
    k = 0
    for domain in ("none", "general", "legal"):
        for method in ("none", "rs_rp"):
            for seed in range(5):
                config = logged_config(domain, method, seed, LANGS, magnitude=0.01 if method == "rs_rp" else 0.0)
                run = tracker.trial_run(f"t{k}", config)
                k += 1
                metrics = {f"xnli/{lang}/accuracy": planted(domain, method, lang) + rng.normal(0, 0.4)
                           for lang in LANGS}
                tracker.log_result(run, {**metrics, "objective": 60.0, "global_step": 10})
                tracker.end_trial(run, "FINISHED")
    tracker.end_sweep({"trials": 30, "finished": 30, "failed": 0})
    return MlflowClient(uri), tmp


@pytest.fixture(scope="module")
def report(store):
    client, tmp = store
    return build(client, "planted", tmp / "out", n_boot=1000), tmp / "out", client


def _effects(report, ref, domain, variant="robust_method=none"):
    return {r["lang"]: r for r in report["effects"]
            if (r["reference"], r["domain"], r["variant"]) == (ref, domain, variant)}


def test_recovers_the_planted_effect_language_by_language(report):
    result, _, _ = report
    legal = _effects(result, "general", "legal")
    assert len(legal) == len(LANGS)
    for lang, r in legal.items():
        truth = 12 * (distance_to_english(lang, "syntax_knn") - 0.3)
        assert r["effect"] == pytest.approx(truth, abs=0.8), lang
        assert r["low"] <= r["effect"] <= r["high"] and r["seeds"] == 5
        if abs(truth) > 1.5:  # clearly planted: significant with the right sign
            assert r["significant"] and np.sign(r["effect"]) == np.sign(truth), lang


def test_finds_no_effect_where_none_was_planted(report):
    result, _, _ = report
    general = _effects(result, "none", "general")
    assert general and not any(r["significant"] for r in general.values())
    assert all(abs(r["effect"]) < 1.0 for r in general.values())


def test_correlation_with_distance_and_groups(report):
    result, _, _ = report
    corr = {c["distance"]: c for c in result["correlations"]
            if (c["reference"], c["domain"], c["variant"]) == ("general", "legal", "robust_method=none")}
    syntax = corr["syntax_knn"]
    assert syntax["rho"] > 0.9 and syntax["p"] < 0.01 and syntax["low"] > 0.5 and syntax["languages"] == 14
    tert = {g["group"]: g for g in result["groups"] if g["grouping"] == "distance tertile"
            and (g["reference"], g["domain"], g["variant"]) == ("general", "legal", "robust_method=none")}
    assert tert["far"]["low"] > 0 and tert["near"]["high"] < 0  # helps far, hurts near
    assert {g["grouping"] for g in result["groups"]} == {"all", "distance tertile", "family", "script"}


def test_interaction_is_recovered(report):
    result, _, _ = report
    inter = {(r["reference"], r["domain"]): r for r in result["interaction"]}
    legal = inter[("general", "legal")]
    assert legal["interaction"] == pytest.approx(2.0, abs=0.5) and legal["low"] > 0
    none_ref = inter[("none", "general")]
    assert none_ref["low"] < 0 < none_ref["high"]  # nothing planted


def test_writes_and_logs_every_output(report):
    result, out, client = report
    for name in ("report.html", "heatmap.png", "effect_vs_distance.png", "groups.png", "effects.csv",
                 "runs_by_language.parquet", "report.json"):
        assert (out / name).is_file(), name
    import pandas as pd

    joined = pd.read_parquet(out / "runs_by_language.parquet")
    assert len(joined) == 30 * len(LANGS) and {"dist_syntax_knn", "family", "script", "seed"} <= set(joined.columns)
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "Benjamini-Hochberg" in page
    parent = result["info"]["parent_run_id"]
    logged = {a.path for a in client.list_artifacts(parent, "report")}
    assert "report/report.html" in logged and "report/heatmap.png" in logged
    assert json.loads((out / "report.json").read_text())["info"]["task"] == "xnli"


def test_refuses_clearly(store, capsys):
    client, tmp = store
    with pytest.raises(ReportError, match="no MLflow experiment 'nope'; experiments: .*planted"):
        build(client, "nope", tmp / "x")
    with pytest.raises(ReportError, match="metric 'f1' is not logged per language for xnli .* logged: accuracy"):
        build(client, "planted", tmp / "x", metric="f1")
    assert main(["--experiment", "nope", "--tracking-uri", f"sqlite:///{tmp}/mlflow.db", "--out", str(tmp / "y")]) == 2
    assert "no MLflow experiment 'nope'" in capsys.readouterr().err


def test_typology_mapping_and_reference_distances():
    assert len(LANGUAGES) == 50
    assert {LANGUAGES[x][0] for x in ("sw", "zh", "fa", "ar", "ms", "et", "az", "qu")} == {
        "swh", "cmn", "pes", "arb", "zsm", "ekk", "azj", "quz"}  # individual languages, not macrolanguages
    expected = {"nl": 0.076, "de": 0.097, "fr": 0.188, "ru": 0.188, "yo": 0.400, "ko": 0.447, "tr": 0.493,
                "ja": 0.500, "kk": 0.552, "my": 0.605}  # cosine distance to English over syntax_knn
    for lang, d in expected.items():
        assert distance_to_english(lang, "syntax_knn") == pytest.approx(d, abs=0.001), lang
    table = typology_table(["eu", "en", "sw"]).set_index("lang")
    assert np.isnan(table.loc["eu", "dist_fam"]) and abs(table.loc["en", "dist_syntax_knn"]) < 1e-12
    assert table.loc["sw", "family"] == "Niger-Congo" and table.loc["eu", "family"] == "Isolate"


def _toy_sweep(uri, tmp, name: str, runs: list[dict], plan: dict | None = None) -> None:
    """A sweep of hand-made runs: each {domain, seed, value(lang) or values, objective, tags}."""
    langs = ["en", "de", "fr", "ru", "zh", "ar"]
    tracker = SweepTracker(uri, name, sweep_key=str(tmp / name), artifact_root=str(tmp / f"art-{name}"))
    tracker.start_sweep({"trials": len(runs), "cells": [None] * 2, "model": "m", "target_task": "xnli",
                         "languages": langs, "seeds": sorted({r["seed"] for r in runs}), **(plan or {})})
    for k, r in enumerate(runs):
        config = logged_config(r["domain"], "none", r["seed"], langs, learning_rate=r.get("lr", 2e-5), epochs=2)
        run = tracker.trial_run(f"{name}{k}", config)
        tracker.log_result(run, {**{f"xnli/{lg}/accuracy": r["value"] + r.get("jitter", 0) * (i - 2.5)
                                    for i, lg in enumerate(langs)}, "objective": r["objective"], "global_step": 1})
        tracker.end_trial(run, "FINISHED", tags={"xlt.stopped_early": str(r.get("stopped", False)).lower()})
    tracker.end_sweep({"trials": len(runs), "finished": len(runs), "failed": 0})


@pytest.fixture(scope="module")
def samples(store):
    """Two legal samples per seed at different sampled learning rates (72 with the better
    English dev objective, 60), general at 70; seed noise so the tests are defined."""
    client, tmp = store
    noise = {0: -0.3, 1: 0.1, 2: 0.4}
    runs = []
    for seed in range(3):
        runs += [{"domain": "general", "seed": seed, "value": 70 + noise[seed], "objective": 60.0},
                 {"domain": "legal", "seed": seed, "value": 72 + noise[seed] / 2, "objective": 61.0, "lr": 3e-5},
                 {"domain": "legal", "seed": seed, "value": 60 + noise[seed], "objective": 58.0, "lr": 1e-5}]
    runs.append({"domain": "legal", "seed": 0, "value": 0.0, "objective": 90.0, "stopped": True})  # ASHA-stopped
    _toy_sweep(f"sqlite:///{tmp}/mlflow.db", tmp, "samples", runs,
               {"samples_per_cell": 2, "sampled_by_optuna": {"learning_rate": "tpe"}, "asha": True})
    return client, tmp


def _legal_vs_general(result) -> dict:
    return _effects(result, "general", "legal")


def test_several_samples_per_cell_select_the_best_dev_sample(samples):
    client, tmp = samples
    result = build(client, "samples", tmp / "best", n_boot=200)
    legal = _legal_vs_general(result)
    for r in legal.values():  # 72 - 70 on each seed (+-0.2): the sample with the better English dev
        assert r["effect"] == pytest.approx(2.0, abs=0.05) and r["seeds"] == 3
        assert r["low"] < 2.0 < r["high"]
    cells = {c["domain"]: c for c in json.loads((tmp / "best" / "report.json").read_text())["cells"]
             if c["lang"] == "de"}
    assert cells["legal"]["seeds"] == 3 and cells["legal"]["samples"] == 2  # not "6 seeds"
    assert cells["legal"]["mean"] == pytest.approx(72 + 0.1 / 3, abs=0.01)
    page = (tmp / "best" / "report.html").read_text()
    assert "best English dev objective" in page and "--select best" in page and "up to 2 sample(s)" in page
    assert "learning_rate" in page


def test_several_samples_per_cell_mean_or_refuse(samples, capsys):
    client, tmp = samples
    legal = _legal_vs_general(build(client, "samples", tmp / "mean", n_boot=200, select="mean"))
    assert all(r["effect"] == pytest.approx(-4.0, abs=0.5) for r in legal.values())  # (72 + 60) / 2 - 70
    with pytest.raises(ReportError, match=r"3 \(cell, seed\)s have more than one completed run .*legal"):
        build(client, "samples", tmp / "refuse", select="refuse")
    uri = f"sqlite:///{tmp}/mlflow.db"
    assert main(["--experiment", "samples", "--tracking-uri", uri, "--out", str(tmp / "r2"), "--select", "refuse"]) == 2
    assert "--select best or --select mean" in capsys.readouterr().err


def test_asha_stopped_trials_are_excluded_and_flagged(samples):
    client, tmp = samples
    result = build(client, "samples", tmp / "asha", n_boot=200)
    info = result["info"]
    assert info["asha"] and info["stopped_early"] == 1 and info["excluded"] == {"stopped early by ASHA": 1}
    assert info["analysed_runs"] == 9 and info["trials"] == 10
    page = (tmp / "asha" / "report.html").read_text()
    assert "ASHA was on" in page and "1 trial(s) stopped early are excluded" in page


def test_one_seed_is_descriptive_only(store):
    client, tmp = store
    _toy_sweep(f"sqlite:///{tmp}/mlflow.db", tmp, "oneseed", [
        {"domain": "general", "seed": 0, "value": 70.0, "objective": 60.0, "jitter": 1.0},
        {"domain": "legal", "seed": 0, "value": 72.0, "objective": 60.0, "jitter": -1.0}])
    result = build(client, "oneseed", tmp / "one", n_boot=200)
    rows = result["effects"] + result["groups"] + result["correlations"]
    assert rows and all(np.isnan(r["low"]) and np.isnan(r["p"]) and not r["significant"] for r in rows)
    assert all(r["note"] == S.DESCRIPTIVE for r in result["effects"] + result["groups"])
    page = (tmp / "one" / "report.html").read_text()
    assert "1 seed: descriptive only" in page and result["info"]["tests"] == 0
    assert any("1 seed: descriptive only" in s for s in result["summary"])


def test_every_test_on_the_page_is_in_one_family(report):
    result, out, _ = report
    tables = [result[k] for k in ("effects", "groups", "interaction", "correlations")]
    tested = [r for t in tables for r in t if not np.isnan(r["p"])]
    assert result["info"]["tests"] == len(tested) > len(result["effects"])
    assert all(r["p"] > 0 for r in tested)
    assert all(r["significant"] == (r["q"] < 0.05) for r in tested)
    assert all(0 < c["p"] <= 1 for c in result["correlations"] if not np.isnan(c["p"]))
    page = (out / "report.html").read_text()
    assert f"over all {len(tested)} tests on this page" in page


def test_the_page_leads_with_the_answer(report):
    _, out, _ = report
    page = (out / "report.html").read_text()
    answer, heatmap = page.index("The answer: effect of the domain by language group"), page.index('alt="heatmap"')
    assert answer < heatmap < page.index("<details>")
    assert page.index("<h3>By distance to English</h3>") < heatmap
    head = page[answer:heatmap]
    for col in ("all targets", "near", "mid", "far", "Indo-European", "Latin", "seeds"):
        assert col in head, col
    assert page.count("<details>") >= 4  # the long tables, folded
