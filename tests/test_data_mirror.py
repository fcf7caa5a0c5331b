"""xlt-data: the catalogue table, and an offline parquet mirror read back through the loaders.

The "hub" here is a directory of dataset repos in the hub's own layout built on the spot
(tests/hub_repos.py), read by the real ``datasets.load_dataset`` through ``--hub-dir``; the
mirror is written by ``xlt-data mirror`` and read by the same family loaders a sweep uses.
"""

from __future__ import annotations

import pytest

from orchestrator.data_cli import main as xlt_data
from trainables import data as D
from trainables.catalog import CATALOG, DOMAINS, FORMAT_FAMILY, intermediate_task
from trainables.tasks import family, target_task


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from hub_repos import build_hub

    return build_hub(tmp_path_factory.mktemp("hub"))


@pytest.fixture(scope="module")
def mirrored(hub, tmp_path_factory):
    out = tmp_path_factory.mktemp("mirror")
    code = xlt_data(["mirror", "--tasks", "general,ledgar,case_hold,mednli,contract_nli", "--out", str(out),
                     "--hub-dir", str(hub)])
    return out, code


def test_catalogue_covers_the_domains_and_formats():
    assert set(DOMAINS) >= {"none", "general", "legal", "medical", "science", "finance"}
    assert set(DOMAINS["general"]) == {"mnli", "squad", "hellaswag"}  # Phang et al.'s best three
    assert {e.format for e in CATALOG.values()} == set(FORMAT_FAMILY)
    for e in CATALOG.values():
        assert e.size and e.license and e.access, e.key
        assert e.hub or e.mirror, f"{e.key} has no source at all"
    mednli = CATALOG["mednli"]
    assert mednli.local_only and not mednli.hub and "credentialed" in mednli.access


def test_list_prints_every_entry(capsys):
    assert xlt_data(["list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["domain", "key", "source", "format", "size", "licence", "access"]
    for e in CATALOG.values():
        assert any(line.split()[:2] == [e.domain, e.key] for line in out.splitlines()), e.key
    assert "* mednli: local path only, never mirror it openly" in out


def test_mirror_writes_parquet_and_names_what_it_cannot(mirrored, capsys):
    out, code = mirrored
    assert code == 1  # mednli (credentialed) and contract_nli (script-only) are listed, not skipped silently
    for hub_id, config in [("nyu-mll/glue", "mnli"), ("rajpurkar/squad", "plain_text"), ("Rowan/hellaswag", None),
                           ("coastalcph/lex_glue", "ledgar"), ("coastalcph/lex_glue", "case_hold")]:
        assert D.parquet_path(str(out), hub_id, config, "train").is_file()
    assert not (out / "hub" / "kiddothe2b").exists() and not any(out.rglob("*mednli*"))
    assert xlt_data(["mirror", "--tasks", "general", "--out", str(out)]) == 0  # already there: nothing fetched
    assert "0 split(s) written, 3 already there" in capsys.readouterr().out


@pytest.mark.parametrize("key", ["mnli", "squad", "hellaswag", "ledgar", "case_hold"])
def test_mirror_loads_back_exactly_as_the_hub_does(key, hub, mirrored, monkeypatch):
    out, _ = mirrored
    monkeypatch.setenv(D.HUB_DIR_ENV, str(hub))
    entry = intermediate_task(key)
    fam = family(entry.family)
    from_mirror_task = D.resolve_labels(entry.task, str(out))
    from_hub_task = D.resolve_labels(entry.task, "hub")
    assert from_mirror_task.labels == from_hub_task.labels  # ClassLabel names survive the mirror
    if key == "ledgar":
        assert from_mirror_task.labels == ("Adjustments", "Agreements", "Amendments")
    a = fam.load(from_mirror_task, "train", "en", str(out))
    b = fam.load(from_hub_task, "train", "en", "hub")
    assert len(a) == 48 and a == b


def test_target_mirror_takes_english_train_and_every_test_language(hub, tmp_path):
    out = tmp_path / "m"
    assert xlt_data(["mirror", "--tasks", "xnli", "--languages", "en,de", "--out", str(out),
                     "--hub-dir", str(hub)]) == 0
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet"))
    assert files == ["hub/facebook/xnli/de/test.parquet", "hub/facebook/xnli/en/test.parquet",
                     "hub/facebook/xnli/en/train.parquet", "hub/facebook/xnli/en/validation.parquet"]
    task = target_task("xnli")
    assert task.from_hub(str(out), "test", "de") and not task.from_hub(str(out), "test", "sw")
    assert len(family("classification").load(task, "test", "de", str(out))) == 48


def test_data_dir_flag_points_a_space_at_the_mirror(mirrored, capsys):
    from orchestrator.cli import main as xlt_sweep
    from orchestrator.spec import load_sweeps
    from tests.conftest import ROOT

    out, _ = mirrored
    (spec,) = load_sweeps(ROOT / "search_spaces" / "domains.yaml", data_dir=str(out))
    assert spec.target.data_dir == str(out) and spec.intermediate_data_dir == str(out)
    assert xlt_sweep(["--space", str(ROOT / "search_spaces" / "domains.yaml"), "--data-dir", str(out),
                      "--dry-run"]) == 0


def test_unknown_keys_are_named_with_suggestions(tmp_path, capsys):
    assert xlt_data(["mirror", "--tasks", "mnil,legl", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown task or domain 'mnil' (did you mean 'mnli'?)" in err and "'legl' (did you mean 'legal'?)" in err


@pytest.mark.integration
def test_a_sweep_trains_mixed_domains_from_the_parquet_mirror(mirrored, tmp_path):
    """general = MNLI + SQuAD + HellaSwag (3 families, 3 heads) and legal = LEDGAR + CaseHOLD,
    read from the mirror, mixed under one cap, on 2 DDP workers; one intermediate model each."""
    import subprocess
    import sys

    import yaml
    from mlflow.tracking import MlflowClient

    from tests.conftest import ROOT

    out, _ = mirrored
    space = tmp_path / "mixed.yaml"
    space.write_text(yaml.safe_dump({
        "name": "mixed", "target": {"task": "xnli", "languages": ["en", "de"]},
        "intermediate": {"domains": ["general", "legal"], "tasks": {"legal": ["ledgar", "case_hold"]},
                         "data_dir": str(out), "max_examples": 60, "mixing": "proportional",
                         "learning_rate": 1e-3},
        "training": {"epochs": 1, "max_examples": 200, "learning_rate": 1e-3, "max_length": 64,
                     "max_query_length": 16, "doc_stride": 16},
        "resources": {"workers": 2, "cpus_per_worker": 1}}))
    storage = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "--space", str(space), "--storage",
                           str(storage)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{storage}/mlflow.db")
    exp = client.get_experiment_by_name("mixed")
    runs = {r.data.params["domain"]: r for r in client.search_runs([exp.experiment_id], "tags.`xlt.role` = 'trial'")}
    parts = {"general": ("mnli", "squad", "hellaswag"), "legal": ("ledgar", "case_hold")}
    for domain, keys in parts.items():
        m = runs[domain].data.metrics
        assert runs[domain].info.status == "FINISHED"
        for key in keys:  # every task of the domain trained through its own head
            assert m[f"intermediate/train/{key}/loss"] > 0
        assert m["intermediate/cache_hit"] == 0
    (parent,) = client.search_runs([exp.experiment_id], "tags.`xlt.role` = 'sweep'")
    assert parent.data.metrics["stage_cache/trainings"] == 2
