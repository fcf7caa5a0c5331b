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
        from hub_repos import LEDGAR_LABELS

        assert from_mirror_task.labels == tuple(LEDGAR_LABELS) and len(LEDGAR_LABELS) == 100
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


# --- every hub dataset the project reads, in its real schema ----------------------------------

def _hub_entries():
    """Every task with a hub source datasets can load: catalogue entries and target/training tasks."""
    from trainables.tasks import ALL_TASKS

    cat = [e for e in CATALOG.values() if e.hub and not e.local_only and e.access == "open"]
    return [(e.key, e) for e in cat] + [(f"target:{t.key}", t) for t in ALL_TASKS.values() if t.hub]


def _languages(task) -> list[str]:
    from hub_repos import HUB_LANGUAGES

    return [lg for lg in HUB_LANGUAGES.get(task.key, ("en",)) if lg in task.languages]


def test_every_hub_dataset_the_project_reads_has_a_test_repo(hub):
    from orchestrator.data_cli import planned

    seen = set()
    for _, entry in _hub_entries():
        task = entry.task if hasattr(entry, "task") else entry
        for t, split, lang in planned(entry, _languages(task)):
            if t.hub_serves(split, lang):
                hub_id, config, hub_split = t.hub_source(split, lang)
                assert (hub / hub_id / (config or "default") / f"{hub_split}-00000-of-00001.parquet").is_file(), \
                    (entry.key, hub_id, config, hub_split)
                seen.add(hub_id)
    assert len(seen) == 16  # 8 for intermediate tasks, 9 for targets and their training (SQuAD in both)


@pytest.mark.parametrize("key", [k for k, _ in _hub_entries()])
def test_every_task_loads_the_same_from_the_hub_and_from_its_mirror(key, hub, tmp_path, monkeypatch):
    """``xlt-data mirror`` writes every split a sweep reads; each loads through the family's
    loader with the same examples as from the hub itself, labels in range."""
    from orchestrator.data_cli import planned

    entry = dict(_hub_entries())[key]
    task = entry.task if hasattr(entry, "task") else entry
    langs = _languages(task)
    out = tmp_path / "m"
    assert xlt_data(["mirror", "--tasks", entry.key, "--languages", ",".join(langs), "--out", str(out),
                     "--hub-dir", str(hub)]) == 0
    monkeypatch.setenv(D.HUB_DIR_ENV, str(hub))
    for t, split, lang in planned(entry, langs):
        t_hub, t_mirror = D.resolve_labels(t, "hub"), D.resolve_labels(t, str(out))
        assert t_mirror.labels == t_hub.labels
        assert t.source_kind(str(out), split, lang) == "parquet"
        fam = family(t.family)
        a, b = fam.load(t_mirror, split, lang, str(out)), fam.load(t_hub, split, lang, "hub")
        assert a == b and a, (t.key, split, lang)
        labels = [getattr(e, "label", None) for e in a]
        if labels[0] is not None:
            assert set(labels) <= set(range(max(len(t_hub.labels), 5))), (t.key, split, sorted(set(labels)))


def test_medmcqa_reads_its_classlabel_letters_and_skips_the_hidden_test(hub, monkeypatch):
    from trainables.tasks.multiple_choice import choices_from_hub

    monkeypatch.setenv(D.HUB_DIR_ENV, str(hub))
    train = choices_from_hub(("openlifescienceai/medmcqa", None, "train"), "medmcqa")
    assert [e.label for e in train] == [i % 4 for i in range(48)]  # cop a..d -> choice 0..3
    assert all(e.choices[e.label].startswith("abcd"[e.label] + " ") for e in train)
    assert choices_from_hub(("openlifescienceai/medmcqa", None, "test"), "medmcqa") == []  # cop -1
    assert D.source_class_names("openlifescienceai/medmcqa", None, "train")["cop"] == ["a", "b", "c", "d"]


def test_socialiqa_comes_from_its_parquet_copy_with_string_labels(hub, monkeypatch):
    monkeypatch.setenv(D.HUB_DIR_ENV, str(hub))
    siqa = target_task("siqa")
    assert siqa.hub_source("train", "en") == ("lighteval/siqa", None, "train")
    examples = family("multiple_choice").load(siqa, "train", "en", "hub")
    assert [e.label for e in examples] == [i % 3 for i in range(48)]  # "1".."3" -> 0..2


def test_udpos_tags_map_by_name_from_the_hubs_alphabetical_classlabel(hub, monkeypatch):
    from trainables.tasks import UPOS

    monkeypatch.setenv(D.HUB_DIR_ENV, str(hub))
    (first, *_) = family("tagging").load(target_task("udpos"), "test", "de", "hub")
    assert [UPOS[i] for i in first.tags] == ["DET", "NOUN", "VERB", "ADV", "PUNCT"]


def test_a_target_mirror_holds_its_training_data_too_and_says_what_a_sweep_reads(hub, tmp_path, capsys):
    """XQuAD trains on SQuAD (plain_text train and validation), XCOPA on COPA after SocialIQA:
    the mirror writes them, and the summary names each source; nothing falls back silently."""
    out = tmp_path / "m"
    assert xlt_data(["mirror", "--tasks", "xquad,xcopa", "--languages", "de,it", "--out", str(out),
                     "--hub-dir", str(hub)]) == 0
    files = sorted(str(p.relative_to(out / "hub")) for p in out.rglob("*.parquet"))
    assert files == ["aps/super_glue/copa/train.parquet", "aps/super_glue/copa/validation.parquet",
                     "cambridgeltl/xcopa/it/test.parquet", "google/xquad/xquad.de/validation.parquet",
                     "lighteval/siqa/default/train.parquet", "rajpurkar/squad/plain_text/train.parquet",
                     "rajpurkar/squad/plain_text/validation.parquet"]
    printed = capsys.readouterr().out
    assert "xquad  squad  train  en         parquet copy of rajpurkar/squad[plain_text] train" in printed
    assert "xcopa  siqa   train  en         parquet copy of lighteval/siqa[default] train" in printed
    squad = target_task("squad")
    assert [squad.source_kind(str(out), s, "en") for s in ("train", "dev")] == ["parquet", "parquet"]


def test_pawsx_prefers_the_benchmarks_raw_files_and_says_which_it_reads(hub, tmp_path, capsys):
    from orchestrator import preflight
    from orchestrator.spec import parse_spec

    out = tmp_path / "m"
    assert xlt_data(["mirror", "--tasks", "pawsx", "--languages", "en", "--out", str(out), "--hub-dir", str(hub)]) == 0
    pawsx = target_task("pawsx")
    assert pawsx.source_kind(str(out), "train", "en") == "parquet"
    spec = parse_spec({"name": "p", "target": {"task": "pawsx", "languages": ["en"], "data_dir": str(out)}})
    (note,) = preflight.data_notes(spec)
    assert note.startswith("pawsx reads the hub's copy for train en, dev en, test en: ") and "49,401" in note
    raw = out / "pawsx" / "en" / "train.tsv"
    raw.parent.mkdir(parents=True)
    raw.write_text("id\tsentence1\tsentence2\tlabel\n" + "".join(
        f'{i}\t"Quoted" start {i}\tend {i}\t{i % 2}\n' for i in range(5)))
    assert pawsx.source_kind(str(out), "train", "en") == "raw"  # the x-final file wins
    examples = family("classification").load(pawsx, "train", "en", str(out))
    assert [e.premise for e in examples][:2] == ['"Quoted" start 0', '"Quoted" start 1']  # kept, as XTREME reads it
    assert preflight.data_notes(spec) == ["pawsx reads the hub's copy for dev en, test en: " + pawsx.raw_first]
    assert xlt_data(["sources", "--tasks", "pawsx", "--languages", "en", "--data-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "raw files pawsx/en/train.tsv" in printed and "* pawsx: google/xtreme's PAWS-X" in printed


def test_udpos_languages_the_hub_lacks_are_refused_at_validation_with_where_to_get_them(hub, tmp_path, capsys):
    from orchestrator.spec import SpecError, parse_spec

    with pytest.raises(SpecError) as e:
        parse_spec({"name": "u", "target": {"task": "udpos", "data_dir": "hub"}})
    (problem,) = e.value.problems
    assert problem.startswith("target.languages: udpos test data for lt, pl, uk, wo, ro is not on the hub: ")
    assert "UD 2.7" in problem and "11234/1-3424" in problem and "allowed from the hub: af, ar" in problem
    assert parse_spec({"name": "u", "target": {"task": "udpos", "data_dir": "hub", "languages": ["en", "de"]}})
    with pytest.raises(SpecError, match=r"target.data_dir: tatoeba \(test\) has no hub source"):
        parse_spec({"name": "t", "target": {"task": "tatoeba", "data_dir": "hub"}})
    out = tmp_path / "m"
    assert xlt_data(["mirror", "--tasks", "udpos", "--languages", "en,lt", "--out", str(out),
                     "--hub-dir", str(hub)]) == 1
    captured = capsys.readouterr()
    assert "udpos test lt: google/xtreme's udpos configs are XTREME's 33 languages from UD 2.5" in captured.err
    assert "udpos  udpos  test   lt         raw files udpos/lt/*-ud-test.conllu (MISSING)" in captured.out


@pytest.mark.integration
def test_a_sweep_reads_the_hub_schemas_in_its_trials(hub, tmp_path):
    """A sweep with ``data_dir: hub`` (the test hub through XLT_HUB_DIR): MedMCQA (ClassLabel
    a-d) and PubMedQA (nested contexts) as the medical domain, then XCOPA's recipe from
    lighteval/siqa, English COPA from aps/super_glue and XCOPA's test from cambridgeltl/xcopa."""
    import os
    import subprocess
    import sys

    import yaml
    from mlflow.tracking import MlflowClient

    from tests.conftest import ROOT

    space = tmp_path / "hub.yaml"
    space.write_text(yaml.safe_dump({
        "name": "hub", "target": {"task": "xcopa", "languages": ["et", "it"], "data_dir": "hub",
                                  "recipe": {"epochs": 1}},
        "intermediate": {"domains": ["medical"], "tasks": {"medical": ["medmcqa", "pubmedqa"]},
                         "max_examples": 40, "learning_rate": 1e-3},
        "training": {"epochs": 1, "learning_rate": 1e-3, "max_length": 64},
        "resources": {"workers": 1, "cpus_per_worker": 1}}))
    storage = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "--space", str(space), "--storage",
                           str(storage)], cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, D.HUB_DIR_ENV: str(hub)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{storage}/mlflow.db")
    exp = client.get_experiment_by_name("hub")
    (run,) = client.search_runs([exp.experiment_id], "tags.`xlt.role` = 'trial'")
    m = run.data.metrics
    assert run.info.status == "FINISHED"
    assert m["intermediate/train/medmcqa/loss"] > 0 and m["intermediate/train/pubmedqa/loss"] > 0
    assert m["recipe/siqa/train/loss"] > 0  # SocialIQA trained from lighteval/siqa
    assert {"xcopa/et/accuracy", "xcopa/it/accuracy"} <= set(m), sorted(m)
