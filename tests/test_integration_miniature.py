"""The embedded default's study end to end: the miniature world through the real ``xlt-sweep``
and ``xlt-report`` (real local Ray, real MLflow store, ``builtin:mini-bert`` pretrained here).

A reduced ``search_spaces/smoke.yaml`` (domains none and general, plain fine-tuning, 3 seeds)
must show what the world plants: English is learnt, the nearest synthetic language (same word
order, other words) is far above chance, transfer falls with the number of switched word orders,
and intermediate training on the shared structure helps English and the near languages."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from scipy.stats import spearmanr

from tests.conftest import ROOT
from tests.sweep_runs import sweep_runs
from trainables.miniature.languages import LANGUAGES

pytestmark = pytest.mark.integration
SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def miniature(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("miniature")
    spec = yaml.safe_load((ROOT / "search_spaces" / "smoke.yaml").read_text())
    spec.update(name="mini", seeds=SEEDS)
    spec["intermediate"].update(domains=["none", "general"], tasks={"general": ["mini_general"]})
    spec["robust"] = {"methods": ["none"]}
    space, storage = tmp / "mini.yaml", tmp / "runs"
    space.write_text(yaml.safe_dump(spec))
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "--space", str(space),
                           "--storage", str(storage)], capture_output=True, text=True, timeout=900, cwd=ROOT)
    print(proc.stdout[-3000:], proc.stderr[-3000:])
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, _, trials = sweep_runs(storage / "mlflow.db", "mini")
    f1 = {}  # (domain, seed) -> {lang: chunk F1, in points as logged}
    for r in trials:
        p = r.data.params
        f1[p["domain"], int(p["seed"])] = {lg.code: r.data.metrics[f"roles/{lg.code}/f1"] for lg in LANGUAGES}
    return proc, storage, f1


def _mean(f1, domain, lang):
    return float(np.mean([f1[domain, s][lang] for s in SEEDS]))


def test_the_sweep_pretrains_the_encoder_once_and_finishes_every_trial(miniature):
    proc, storage, f1 = miniature
    assert f"{2 * len(SEEDS)}/{2 * len(SEEDS)} trials finished, 0 failed" in proc.stdout
    assert set(f1) == {(d, s) for d in ("none", "general") for s in SEEDS}
    built = next((storage / "_xlt" / "mini").glob("assets/models/mini-bert-*/pretraining.json"))
    record = json.loads(built.read_text())
    assert record["loss_last_50"] < record["loss_first_50"] - 1.0  # the encoder learnt its languages


def test_english_is_learnt_and_the_nearest_language_transfers(miniature):
    *_, f1 = miniature
    assert _mean(f1, "none", "en") > 60
    # xa has English's word order and none of its words (chunk F1 counts a chunk only when its
    # span and its role are both right)
    assert _mean(f1, "none", "xa") > 40 and _mean(f1, "general", "xa") > 70


def test_transfer_falls_with_the_switch_distance(miniature):
    *_, f1 = miniature
    targets = [lg for lg in LANGUAGES if lg.code != "en"]
    for domain in ("none", "general"):
        rho = spearmanr([lg.distance for lg in targets], [_mean(f1, domain, lg.code) for lg in targets])[0]
        assert rho <= -0.7, (domain, rho)


def test_intermediate_training_helps_where_the_structure_transfers(miniature):
    *_, f1 = miniature
    for lang in ("en", "xa"):
        assert all(f1["general", s][lang] > f1["none", s][lang] for s in SEEDS), lang


def test_the_report_reads_the_switches_as_its_typology(miniature, tmp_path):
    _, storage, _ = miniature
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "orchestrator.report.cli", "--experiment", "mini",
                           "--tracking-uri", f"sqlite:///{storage}/mlflow.db", "--out", str(out), "--no-log"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "general vs none (none, 3 seeds)" in proc.stdout
    assert "word-order switches" in proc.stdout
    effects = __import__("csv").DictReader((out / "effects.csv").open())
    en = [r for r in effects if r["domain"] == "general" and r["reference"] == "none" and r["lang"] == "en"]
    assert len(en) == 1 and float(en[0]["effect"]) > 0 and en[0]["seeds"] == "3"


def test_trial_processes_are_reused(miniature):
    """``resources.reuse_processes`` (default): 6 trials, 2 at a time, run in fewer processes
    than trials (Tune's result rows carry the trial process's pid)."""
    _, storage, _ = miniature
    rows = [json.loads(line) for f in (storage / "mini").glob("trial_*/result.json")
            for line in f.read_text().splitlines() if line.strip()]
    trials = {r["trial_id"] for r in rows}
    assert len(trials) == 2 * len(SEEDS) and len({r["pid"] for r in rows}) < len(trials)
