"""A real sweep through the CLI: real local Ray (Tune + Train, DDP on gloo), real MLflow store.

Uses the built-in NLI demo space (nli_demo.yaml) with fewer epochs and 2 Train workers per trial, so the DDP paths
(distributed sampler, gathered evaluation) run for real. Minutes on a 2-core CPU.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import ROOT
from tests.sweep_runs import sweep_runs

pytestmark = pytest.mark.integration
LANGS = ["en", "de", "ru", "ar", "zh"]


def _space(tmp: Path, name: str, **over) -> Path:
    spec = yaml.safe_load((ROOT / "search_spaces" / "nli_demo.yaml").read_text())
    spec.update(name=name, seeds=[0])
    spec["intermediate"].update(domains=["none", "legal"], epochs=1, max_examples=300)
    spec["training"].update(epochs=2, max_examples=300)
    spec["target"]["languages"] = LANGS
    spec["resources"] = {"workers": 2, "cpus_per_worker": 1}
    for section, values in over.items():
        spec[section].update(values)
    inter = spec["intermediate"]
    inter["tasks"] = {d: t for d, t in inter.get("tasks", {}).items() if d in inter["domains"]}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _sweep(space: Path, storage: Path, *extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "--space", str(space), "--storage", str(storage),
         "--tracking-uri", f"sqlite:///{storage}/mlflow.db", *extra],
        capture_output=True, text=True, timeout=900, cwd=ROOT)
    print(proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


def _runs(storage: Path, name: str):
    return sweep_runs(storage / "mlflow.db", name)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    space, storage = _space(tmp, "itest"), tmp / "runs"
    proc = _sweep(space, storage)
    return proc, space, storage


def test_sweep_finishes_with_one_parent_and_a_child_per_cell(sweep):
    proc, _, storage = sweep
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"MLflow tracking URI: sqlite:///{storage}/mlflow.db" in proc.stdout
    assert "8/8 trials finished, 0 failed" in proc.stdout
    client, parents, children = _runs(storage, "itest")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 8
    assert len({c.data.tags["xlt.cell"] for c in children}) == 8
    cells = {(c.data.params["domain"], c.data.params["robust_method"]) for c in children}
    assert cells == {(d, m) for d in ("none", "legal") for m in ("none", "adversarial", "rs_rp", "rs_da")}
    for c in children:
        assert c.info.status == "FINISHED"
        assert c.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        for p in ("domain", "intermediate_tasks", "robust_method", "noise_magnitude",
                  "learning_rate", "seed", "model", "target_task"):
            assert p in c.data.params, p
        for lang in LANGS:
            assert 0.0 <= c.data.metrics[f"xnli/{lang}/accuracy"] <= 100.0
        avg = sum(c.data.metrics[f"xnli/{lang}/accuracy"] for lang in LANGS) / len(LANGS)
        assert c.data.metrics["xnli/avg/accuracy"] == pytest.approx(avg)
        pairs = [f"xnli/{a}-{b}/accuracy" for a in LANGS for b in LANGS]  # generalized transfer, as Robust-XLT
        assert all(0 <= c.data.metrics[k] <= 100 for k in pairs)
        assert c.data.metrics["xnli/generalized/avg/accuracy"] == pytest.approx(
            sum(c.data.metrics[k] for k in pairs) / len(pairs))
        assert "objective" in c.data.metrics and "pid" not in c.data.metrics
        history = client.get_metric_history(c.info.run_id, "objective")
        assert len(history) == 2, "one point per fine-tuning epoch"
        arts = {a.path for a in client.list_artifacts(c.info.run_id)}
        assert {"trial_config.json", "predictions", "labels"} <= arts
        method = c.data.params["robust_method"]
        assert (float(c.data.params["noise_magnitude"]) > 0) == (method != "none")
        diagnostics = {"none": set(), "rs_rp": {"robust/noise_norm_mean"}, "rs_da": {"robust/substitution_rate"},
                       "adversarial": {"robust/delta_norm_max", "robust/clean_loss", "robust/adv_loss"}}[method]
        assert {k for k in c.data.metrics if k.startswith("robust/")} == diagnostics
        if method == "adversarial":  # the largest perturbation of one vector never exceeds epsilon
            assert c.data.metrics["robust/delta_norm_max"] <= float(c.data.params["noise_magnitude"]) * (1 + 1e-5)
        assert ("intermediate/train/loss" in c.data.metrics) == (c.data.params["domain"] == "legal")


def test_the_legal_trials_share_one_intermediate_model(sweep):
    _, _, storage = sweep
    _, parents, children = _runs(storage, "itest")
    m = parents[0].data.metrics
    assert (m["stage_cache/trainings"], m["stage_cache/distinct_keys"], m["stage_cache/hits"]) == (1, 1, 3)
    legal = [c for c in children if c.data.params["domain"] == "legal"]
    assert len({c.data.params["intermediate/cache_key"] for c in legal}) == 1
    assert sorted(c.data.metrics["intermediate/cache_hit"] for c in legal) == [0, 1, 1, 1]
    assert all(c.data.params["intermediate/cache_key"] == "-" for c in children if c.data.params["domain"] == "none")


def test_stage_cache_trains_each_intermediate_model_once_with_concurrent_trials(tmp_path):
    """2 domains x 2 methods, 2 trials at a time (the two trials of a domain start together and
    contend for its key): exactly 2 intermediate models; a later sweep on the same storage trains
    none."""
    spec = yaml.safe_load((ROOT / "search_spaces" / "nli_demo.yaml").read_text())
    spec.update(name="icache", seeds=[0], resources={"workers": 1, "cpus_per_worker": 1})
    spec["target"].update(languages=["en", "de"], generalized=False)
    spec["intermediate"].update(domains=["general", "legal"], epochs=1, max_examples=200)
    spec["training"].update(epochs=1, max_examples=200, learning_rate=1e-3)
    spec["robust"] = {"methods": ["adversarial", "rs_rp"], "noise_magnitude": 0.02}
    spec["search"]["max_concurrent_trials"] = 2
    space, storage = tmp_path / "icache.yaml", tmp_path / "runs"
    space.write_text(yaml.safe_dump(spec))
    proc = _sweep(space, storage)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "4/4 trials finished" in proc.stdout
    assert "stage cache: 2 intermediate model(s) trained by this sweep, 2 reuse(s), 2 configuration(s)" in proc.stdout
    _, parents, children = _runs(storage, "icache")
    m = parents[0].data.metrics
    assert (m["stage_cache/trainings"], m["stage_cache/distinct_keys"], m["stage_cache/hits"]) == (2, 2, 2)
    by_key: dict = {}
    for c in children:
        by_key.setdefault(c.data.params["intermediate/cache_key"], []).append(c)
    assert len(by_key) == 2 and all(len(v) == 2 for v in by_key.values())
    for runs in by_key.values():
        assert len({r.data.params["domain"] for r in runs}) == 1
        assert sorted(r.data.metrics["intermediate/cache_hit"] for r in runs) == [0, 1]
        # every trial reports the one training's summary
        assert len({r.data.metrics["intermediate/train/loss"] for r in runs}) == 1
    entries = sorted(p.parent.name for p in (storage / "stage_cache").glob("*/entry.json"))
    assert entries == sorted(by_key)
    trained = sorted((storage / "_xlt" / "icache" / "stages").glob("*/intermediate.json"))
    assert len(trained) == 2, trained  # two trainings of the intermediate stage, not four
    # the intermediate models live in the stage cache only: no training folder is left
    assert not list((storage / "_xlt" / "icache" / "train").glob("intermediate-*"))

    spec.update(name="icache-later")  # a later sweep on the same storage: all hits
    spec["robust"] = {"methods": ["none"]}
    spec["intermediate"].update(domains=["legal"], tasks={"legal": ["contract_nli"]})
    space.write_text(yaml.safe_dump(spec))
    proc = _sweep(space, storage)
    assert proc.returncode == 0, proc.stderr[-2000:]
    _, parents, _ = _runs(storage, "icache-later")
    m = parents[0].data.metrics
    assert (m["stage_cache/trainings"], m["stage_cache/hits"]) == (0, 1)


def test_a_run_is_rescored_from_its_artifacts_to_the_logged_numbers(sweep, tmp_path):
    _, _, storage = sweep
    client, _, children = _runs(storage, "itest")
    run = children[0]
    local = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path)))
    # the run covers 5 of XNLI's 15 languages: score them language by language
    from trainables.scoring.evaluator import BENCHMARKS

    bench = BENCHMARKS["xtreme-r"]["xnli"]
    for lang in LANGS:
        got = bench.metric(bench.reader(local / "labels" / "xnli" / f"test-{lang}.tsv"),
                           bench.reader(local / "predictions" / "xnli" / f"test-{lang}.tsv"), lang)
        assert got["accuracy"] == pytest.approx(run.data.metrics[f"xnli/{lang}/accuracy"], abs=1e-4)


def test_the_report_of_the_sweep_is_written_and_logged(sweep, tmp_path):
    from orchestrator.report.cli import main as xlt_report

    _, _, storage = sweep
    out = tmp_path / "report"
    assert xlt_report(["--experiment", "itest", "--tracking-uri", f"sqlite:///{storage}/mlflow.db",
                       "--out", str(out), "--bootstrap", "300"]) == 0
    for name in ("report.html", "heatmap.png", "effect_vs_distance.png", "groups.png", "runs_by_language.parquet"):
        assert (out / name).is_file(), name
    import json

    report = json.loads((out / "report.json").read_text())
    assert report["info"]["analysed_runs"] == 8 and report["info"]["per_example_runs"] == 8
    legal = [r for r in report["effects"] if (r["reference"], r["domain"]) == ("none", "legal")]
    assert {r["lang"] for r in legal} == set(LANGS) and all(r["examples"] > 0 for r in legal)
    _, parents, _ = _runs(storage, "itest")
    client = MlflowClient(f"sqlite:///{storage}/mlflow.db")
    assert "report/report.html" in {a.path for a in client.list_artifacts(parents[0].info.run_id, "report")}


def test_resume_adds_no_duplicate_runs(sweep):
    proc, space, storage = sweep
    assert proc.returncode == 0
    again = _sweep(space, storage, "--resume")
    assert again.returncode == 0, again.stderr[-2000:]
    _, parents, children = _runs(storage, "itest")
    assert len(parents) == 1 and len(children) == 8
    assert all(r.info.status == "FINISHED" for r in parents + children)


def test_rerun_without_resume_refuses(sweep):
    _, space, storage = sweep
    proc = _sweep(space, storage)
    assert proc.returncode == 2 and "pass --resume" in proc.stderr


def test_failed_trial_is_marked_failed_with_its_reason_and_the_sweep_goes_on(tmp_path, demo_dir):
    mirror = tmp_path / "mirror"
    shutil.copytree(demo_dir, mirror)
    bad = mirror / "intermediate" / "contract_nli" / "train.tsv"
    lines = bad.read_text(encoding="utf-8").splitlines()
    lines[899] = lines[899].rsplit("\t", 1)[0] + "\tperhaps"  # beyond the lines the preflight reads
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    space = _space(tmp_path, "ifail", target={"data_dir": str(mirror)},
                   robust={"methods": ["none"], "noise_magnitude": None},
                   search={"max_failures": 0}, resources={"workers": 1, "cpus_per_worker": 1})
    spec = yaml.safe_load(space.read_text())
    spec["robust"] = {"methods": ["none"]}
    space.write_text(yaml.safe_dump(spec))
    storage = tmp_path / "runs"
    proc = _sweep(space, storage)
    assert proc.returncode == 1
    assert "1/2 trials finished, 1 failed" in proc.stdout
    _, parents, children = _runs(storage, "ifail")
    status = {c.data.params["domain"]: c for c in children}
    assert status["none"].info.status == "FINISHED"
    assert status["legal"].info.status == "FAILED"
    assert "train.tsv:900: label 'perhaps' is not one of" in status["legal"].data.tags["xlt.error"]
    assert parents[0].info.status == "FAILED"
