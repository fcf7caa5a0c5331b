"""One real CPU sweep per task family through the CLI: real local Ray, real MLflow store.

One space file holds a study per family (``studies:``), so one CLI call runs them all in
turn. Each study targets one task of a family on the raw-format test mirror (real XQuAD, XCOPA,
UD and Tatoeba fixtures; synthetic Mewsli-X), with the tiny built-in model, rs_rp and one
epoch: the family's loader, head, loss, decoding and metric run inside Ray Train; every
language's metrics reach MLflow; the predictions artifact re-scores with ``xlt-score`` to
the logged numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import ROOT
from trainables.schema import mlflow_name
from trainables.scoring.cli import main as xlt_score

pytestmark = pytest.mark.integration

CASES = {  # task: (languages, metrics logged per language)
    "xcopa": (["it", "zh"], ["accuracy"]),                  # multiple choice, SocialIQA recipe first
    "udpos": (["en", "yo", "wo"], ["f1", "precision", "recall"]),   # tagging
    "xquad": (["en", "de", "zh"], ["exact_match", "f1"]),   # extractive QA (trained on SQuAD)
    "tatoeba": (["de", "sw", "ja"], ["accuracy"]),          # retrieval with the SQuAD-trained encoder
    "mewslix": (["en", "ja"], ["map@20"]),                  # retrieval, dual encoder
}


@pytest.fixture(scope="module")
def family_sweeps(mirror_dir, tmp_path_factory):
    """All families in ONE space file with a study per task, run by one CLI call (one Ray)."""
    tmp = tmp_path_factory.mktemp("families")
    space = tmp / "families.yaml"
    space.write_text(yaml.safe_dump({
        "name": "fam", "model": {"name": "builtin:tiny-bert"},
        "target": {"data_dir": str(mirror_dir), "recipe": {"epochs": 1, "learning_rate": 1e-3}},
        "intermediate": {"domains": ["none"]},
        "robust": {"methods": ["rs_rp"], "noise_magnitude": 0.01},
        "training": {"learning_rate": 1e-3, "epochs": 1, "batch_size": 16, "max_length": 128,
                     "max_query_length": 32, "doc_stride": 32, "max_examples": 200},
        "seeds": [0], "resources": {"workers": 1, "cpus_per_worker": 1},
        "studies": {task: {"target": {"task": task, "languages": langs}} for task, (langs, _) in CASES.items()}}))
    storage = tmp / "runs"
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "--space", str(space), "--storage",
                           str(storage)], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    return proc, storage


def test_one_file_runs_every_study(family_sweeps):
    proc, _ = family_sweeps
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"{len(CASES)} studies: " + ", ".join(f"fam-{t} ok" for t in sorted(CASES)) in proc.stdout


@pytest.mark.parametrize("task", sorted(CASES))
def test_sweep_targets_each_family(task, family_sweeps, tmp_path):
    langs, metrics = CASES[task]
    proc, storage = family_sweeps
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{storage}/mlflow.db")
    exp = client.get_experiment_by_name(f"fam-{task}")
    (run,) = client.search_runs([exp.experiment_id], "tags.`xlt.role` = 'trial'")
    assert run.info.status == "FINISHED"
    m = run.data.metrics
    for lang in langs:
        for metric in metrics:
            assert 0 <= m[mlflow_name(f"{task}/{lang}/{metric}")] <= 100
    assert f"{task}/score" in m and "objective" in m
    if task == "xcopa":
        assert "recipe/siqa/train/loss" in m
    local = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "art")))
    out = tmp_path / "scores.json"
    assert xlt_score(["--predictions", str(local / "predictions"), "--labels", str(local / "labels"),
                      "--partial", "--json", str(out)]) == 0
    scored = json.loads(out.read_text())["tasks"][task]
    for lang in langs:
        for metric in metrics:
            assert scored["per_language"][lang][metric] == pytest.approx(
                m[mlflow_name(f"{task}/{lang}/{metric}")], abs=1e-4)
    assert scored["score"] == pytest.approx(m[f"{task}/score"], abs=1e-4)
