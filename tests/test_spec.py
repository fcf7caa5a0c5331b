"""Space files: every repo YAML validates and dry-runs; bad files list every problem at once."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from orchestrator.cli import main
from orchestrator.space import run_config
from orchestrator.spec import SpecError, load_spec, load_sweeps, parse_spec
from tests.conftest import ROOT
from trainables.tasks import TASKS

SPACES = sorted((ROOT / "search_spaces").glob("*.yaml"))


SYNONYMS = "/mnt/shared/xlt_data/counterfitted_neighbors.json"


def test_repo_has_the_spaces():
    assert {p.name for p in SPACES} >= {"smoke.yaml", "domains.yaml", "robust_xlt.yaml"}


def _with_local_table(path, tmp_path):
    """The space file as shipped, except that the cluster-side synonym table (which must exist
    at validation time) points at a small local table."""
    table = tmp_path / "neighbours.json"
    table.write_text('{"good": ["fine", "nice"]}')
    copy = tmp_path / path.name
    copy.write_text(path.read_text().replace(SYNONYMS, str(table)))
    return copy


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.name)
def test_every_space_file_validates_and_dry_runs(path, capsys, tmp_path):
    specs = load_sweeps(_with_local_table(path, tmp_path))
    assert main(["--space", str(_with_local_table(path, tmp_path)), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert all(f"sweep {spec.name}:" in out for spec in specs)
    first = path.read_text().splitlines()[:8]
    assert any("xlt-sweep --space" in line for line in first), "space files start with their command"


def test_robust_xlt_sets_up_the_papers_comparison(tmp_path, capsys):
    shipped = ROOT / "search_spaces" / "robust_xlt.yaml"
    from orchestrator.preflight import check_data

    # as shipped it validates (a plan can be made anywhere); the preflight before Ray starts
    # names the cluster-side table it cannot find
    for spec in load_sweeps(shipped):
        assert check_data(spec) == [f"{SYNONYMS}: synonym table not found (robust.options.rs_da.synonyms: a "
                                    "JSON file {word: [neighbours]}, or 'builtin')"]
    specs = {s.name: s for s in load_sweeps(_with_local_table(shipped, tmp_path))}
    grid = {(s.model.name, s.target.task) for s in specs.values()}
    assert grid == {(m, t) for m in ("bert-base-multilingual-cased", "xlm-roberta-base") for t in ("pawsx", "xnli")}
    for s in specs.values():
        task = s.target.task
        assert s.languages == list(TASKS[task].languages) and len(s.languages) == {"pawsx": 7, "xnli": 15}[task]
        assert s.robust.methods == ["none", "adversarial", "rs_rp", "rs_da"] and s.target.generalized
        t = s.training
        assert (t.learning_rate, t.batch_size, t.max_length, t.select) == (2e-5, 32, 128, "best")
        assert t.epochs == {"pawsx": 3, "xnli": 1}[task]
        assert s.robust.options["rs_da"]["copies"] == {"pawsx": 10, "xnli": 3}[task]
        assert s.robust.magnitude("rs_da") == 1.0 and len(s.seeds) >= 3
    table = str(_with_local_table(shipped, tmp_path))
    assert main(["--space", table, "--dry-run", "--json"]) == 0
    plans = json.loads(capsys.readouterr().out)
    assert [p["sweep"] for p in plans] == list(specs) and all(p["trials"] == 8 * 3 for p in plans)
    assert main(["--space", table, "--dry-run", "--json", "--study", "mbert-xnli"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["sweep"] == "robust_xlt-mbert-xnli" and len(one["languages"]) == 15


def test_study_problems_name_their_study_and_shared_ones_appear_once(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({
        "name": "s", "training": {"epochs": 0},
        "studies": {"a": {"target": {"task": "xnlii"}}, "b": {"model": {"name": "x"}}, "c d": {}}}))
    with pytest.raises(SpecError) as e:
        load_sweeps(path)
    assert e.value.problems == ["studies.c d: a study key must match [A-Za-z0-9][A-Za-z0-9_.-]*"]
    path.write_text(yaml.safe_dump({
        "name": "s", "training": {"epochs": 0},
        "studies": {"a": {"target": {"task": "xnlii"}}, "b": {"model": {"name": "x"}}}}))
    with pytest.raises(SpecError) as e:
        load_sweeps(path)
    assert "training.epochs: Input should be greater than or equal to 1" in e.value.problems  # shared: once
    assert any(p.startswith("[studies a] target.task: unknown target task 'xnlii' (did you mean 'xnli'?)")
               for p in e.value.problems)
    assert main(["--space", str(path), "--dry-run", "--study", "zz"]) == 2
    assert "--study zz: no such study; allowed: a, b" in capsys.readouterr().err
    with pytest.raises(SpecError, match="studies: this file holds several sweeps"):
        load_spec(path)


def test_domains_space_is_the_research_space():
    spec = load_spec(ROOT / "search_spaces" / "domains.yaml")
    assert spec.model.name == "xlm-roberta-base"
    assert len(spec.languages) == 15
    assert {"none", "general", "legal", "medical"} <= set(spec.intermediate.domains)
    assert all(len(spec.intermediate.tasks_of(d)) == 3 for d in ("general", "legal", "medical"))
    i = spec.intermediate
    assert i.max_examples and i.max_steps and i.mixing == "proportional"  # the same cap and budget for all
    assert len(spec.seeds) >= 3


def _problems(data) -> list[str]:
    with pytest.raises(SpecError) as e:
        parse_spec(data, "bad.yaml")
    return e.value.problems


def test_malformed_file_lists_every_problem_with_path_and_allowed_values():
    problems = _problems({
        "name": "bad",
        "model": {"nmae": "x"},                                   # unknown key
        "training": {"epochs": "three", "learning_rate": {"choice": []}},  # bad type, empty choice
        "intermediate": {"domains": ["general", "legl"]},         # unknown registry key
        "robust": {"methods": ["none", "rs_rp"]},                 # method without its parameter
        "search": {"sampler": "cmaes"},
    })
    text = "\n".join(problems)
    assert len(problems) == 6, text
    assert "model.nmae: unknown key (did you mean 'name'?); allowed keys: name, tokenizer" in text
    assert "training.epochs: Input should be a valid integer" in text
    assert "training.learning_rate.choice: List should have at least 1 item" in text
    assert "intermediate.domains: unknown domain 'legl' (did you mean 'legal'?); allowed:" in text
    assert "robust: noise_magnitude is required: method(s) rs_rp use noise" in text
    assert "search.sampler: Input should be 'tpe', 'random', 'qmc' or 'gp'" in text


@pytest.mark.parametrize("data, expected", [
    ({"name": "x", "robust": {"methods": ["none"], "noise_magnitude": 0.1}}, "uses noise; remove it"),
    ({"name": "x", "robust": {"methods": ["rs_rp"], "noise_magnitude": -1}}, "must be >= 0"),
    ({"name": "x", "robust": {"methods": ["rs_rp"], "noise_magnitude": {"lo": 1}}},
     "expected a number, {choice: [v1, v2, ...]} or {low: x, high: y, log: true|false}"),
    ({"name": "x", "training": {"learning_rate": {"low": 1e-3, "high": 1e-5}}},
     "low (0.001) must be below high (1e-05)"),
    ({"name": "x", "training": {"learning_rate": {"low": 0, "high": 1, "log": True}}},
     "log scale needs low > 0"),
    ({"name": "x", "seeds": [1, 1]}, "duplicate seeds [1]"),
    ({"name": "x", "seeds": []}, "seeds: List should have at least 1 item"),
    ({"name": "x", "robust": {"methods": []}}, "robust.methods: List should have at least 1 item"),
    ({"name": "x", "target": {"languages": ["en", "xx"]}}, "languages ['xx'] are not in"),
    ({"name": "x", "search": {"samples_per_cell": 3}}, "needs a continuous knob"),
    ({"name": "x", "intermediate": {"domains": ["science"]}}, "has no built-in demo data"),
    ({"name": "x", "intermediate": {"domains": ["medical"], "data_dir": "hub"},
      "target": {"data_dir": "hub"}}, "cannot come from the hub"),
    ({"name": "x", "intermediate": {"domains": ["none"], "tasks": {"legal": ["mnli"]}}},
     "only domains listed in domains"),
    ({"name": "bad name!"}, "name: String should match pattern"),
    ({"name": "x", "target": {"task": "xnly"}}, "unknown target task 'xnly' (did you mean 'xnli'?)"),
    ({"name": "x", "resources": {"placement_strategy": "SPRED"}},
     "resources.placement_strategy: Input should be 'PACK', 'SPREAD', 'STRICT_PACK' or 'STRICT_SPREAD'"),
    ({"name": "x", "resources": {"worker_resources": {"GPU": 1}}},
     "resources.worker_resources: ['GPU'] are set by cpus_per_worker/gpus_per_worker"),
    ({"name": "x", "resources": {"workers": 2, "executor": "trial"}},
     "resources.executor: 'trial' runs one worker in the trial's own process, but resources.workers is 2"),
    ({"name": "x", "resources": {"executor": "inproc"}},
     "resources.executor: Input should be 'auto', 'train' or 'trial'"),
    ({"name": "x", "model": {"trust_remote_code": "yes please"}},
     "model.trust_remote_code: Input should be a valid boolean"),
    ({"name": "x", "training": {"max_grad_norm": 0}}, "training.max_grad_norm: Input should be greater than 0"),
])
def test_each_kind_of_problem_is_named(data, expected):
    assert expected in "\n".join(_problems(data))


def test_cli_exits_2_with_all_problems_before_ray_starts(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "robust": {"methods": ["rs_rp", "adverserial"]},
                                   "training": {"batch_size": 0}}))
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "--space", str(bad),
                           "--storage", str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "2 problems" in proc.stderr
    assert "robust.methods: unknown robust method 'adverserial'" in proc.stderr
    assert "training.batch_size: Input should be greater than or equal to 1" in proc.stderr
    assert not (tmp_path / "runs").exists(), "nothing may be started or written"


def test_yaml_syntax_error_is_a_spec_error(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: x\nrobust: {methods: [none\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)


def test_dry_run_json_plan(capsys):
    import json

    assert main(["--space", str(ROOT / "search_spaces" / "smoke.yaml"), "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    # 60 fine-tuning stages + one intermediate model per domain (general, legal) and seed (5):
    # the stage cache shares each among the 4 robust methods
    assert plan["trials"] == 60 and len(plan["cells"]) == 12 and plan["training_stages"] == 70
    assert plan["intermediate_models"] == 10
    assert plan["per_trial"] == {"train_workers": 1, "executor": "trial", "cpus": 1.0, "gpus": 0.0}


def test_where_stages_train_and_what_tune_reserves_per_trial():
    from orchestrator.tuner import trial_resources

    pin = {"driver_slot": 0.001}
    one = parse_spec({"name": "x", "resources": {"cpus_per_worker": 4}})
    assert one.resources.in_trial and trial_resources(one, pin) == {"CPU": 4}  # auto: the trial is the worker
    gpu = parse_spec({"name": "x", "resources": {"gpus_per_worker": 1, "worker_resources": {"a100": 1}}})
    assert trial_resources(gpu, pin) == {"CPU": 1, "GPU": 1, "a100": 1}
    two = parse_spec({"name": "x", "resources": {"workers": 2, "gpus_per_worker": 1}})
    assert not two.resources.in_trial and trial_resources(two, pin) == pin  # Train reserves the workers
    train = parse_spec({"name": "x", "resources": {"executor": "train"}})
    assert not train.resources.in_trial and trial_resources(train, {}) == {"CPU": 0}
    assert run_config(one, "/s").resources.in_trial and not run_config(two, "/s").resources.in_trial


def test_a_resumed_sweep_keeps_the_executor_it_started_with(tmp_path, capsys):
    from orchestrator.tuner import executor_of

    one = parse_spec({"name": "x"})
    train = parse_spec({"name": "x", "resources": {"executor": "train"}})
    assert executor_of(tmp_path / "new", one, resume=False) is True
    assert executor_of(tmp_path / "new", train, resume=True) is True  # the restored run block's
    assert "keeps it" in capsys.readouterr().err
    assert executor_of(tmp_path / "old", one, resume=True) is False  # started before the executor existed


def test_a_sweep_saved_with_another_config_format_is_refused_before_ray_starts(tmp_path, capsys):
    """Tune restores each trial's config as it was saved: a sweep started before the typed
    configurations (no ``config_format`` in its record) cannot be resumed by this version."""
    import json

    from orchestrator.tuner import config_format_problem, executor_of

    space = tmp_path / "s.yaml"
    space.write_text("name: old\n")
    storage = tmp_path / "runs"
    (storage / "old").mkdir(parents=True)
    (storage / "old" / "tuner.pkl").write_bytes(b"")
    record = storage / "_xlt" / "old" / "executor.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"in_trial": True}))  # as the previous version wrote it
    assert main(["--space", str(space), "--storage", str(storage), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "trial configs have format 1, this one reads format 3" in err and "the version that started it" in err
    record.write_text(json.dumps({"in_trial": True, "config_format": 2}))  # before warmup_steps / negatives_pool
    assert "trial configs have format 2, this one reads format 3" in config_format_problem(storage, "old")
    executor_of(storage, parse_spec({"name": "old"}), resume=False)  # a sweep this version starts
    assert config_format_problem(storage, "old") is None


def test_target_task_problems_name_the_allowed_values():
    problems = "\n".join(_problems({"name": "x", "target": {"task": "xquda"}}))
    assert "target.task: unknown target task 'xquda' (did you mean 'xquad'?)" in problems
    assert "squad" not in problems.split("allowed:")[1]  # training-only entries are not targets
    problems = "\n".join(_problems({"name": "x", "target": {"task": "udpos"}}))
    assert "task 'udpos' has no built-in demo data" in problems and "'hub'" in problems
    problems = "\n".join(_problems({"name": "x", "target": {"task": "udpos", "data_dir": "/m",
                                                            "languages": ["en", "xx"]}}))
    assert "languages ['xx'] are not in udpos; allowed: af, ar" in problems


def test_every_target_task_plans_with_its_stages():
    from orchestrator.space import plan
    from trainables.tasks import TASKS

    for key, task in TASKS.items():
        spec = parse_spec({"name": "x", "target": {"task": key, "data_dir": "/mirror"},
                           "intermediate": {"domains": ["none", "general"]}}, "x.yaml")  # a mirror
        p = plan(spec)
        assert p["languages"] == list(task.languages)
        assert p["training_stages"] == 1 + 2 + 2 * len(task.recipe)  # 1 shared intermediate model


def test_yaml_tags_that_would_run_code_are_refused(tmp_path):
    evil = tmp_path / "evil.yaml"
    marker = tmp_path / "ran"
    evil.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(evil)
    assert not marker.exists()


def test_remote_code_is_off_unless_the_space_file_turns_it_on():
    assert run_config(parse_spec({"name": "x"}), "/s", "/c").model.trust_remote_code is False
    on = parse_spec({"name": "x", "model": {"trust_remote_code": True}})
    assert run_config(on, "/s", "/c").model.trust_remote_code is True


@pytest.mark.parametrize("tamper, reason", [
    (lambda d: d.chmod(0o777), "is writable by others"),
    (lambda d: (d / "tuner.pkl").chmod(0o646), "is writable by others"),
    (lambda d: (d / "experiment_state.json").symlink_to("/etc/hostname"), "is a symbolic link"),
])
def test_resume_reads_only_the_users_own_unshared_state(tmp_path, capsys, tamper, reason):
    """--resume unpickles Tune's state: it refuses a sweep folder others could have written."""
    space = ROOT / "search_spaces" / "smoke.yaml"
    exp = tmp_path / "runs" / "smoke"
    exp.mkdir(parents=True, mode=0o755)
    (tmp_path / "runs").chmod(0o755)
    (exp / "tuner.pkl").write_bytes(b"not a pickle")
    (exp / "tuner.pkl").chmod(0o644)
    tamper(exp)
    assert main(["--space", str(space), "--storage", str(tmp_path / "runs"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "refusing to resume from" in err and reason in err


@pytest.mark.parametrize("task, expected", [
    ("xnli", {"epochs": 5, "learning_rate": 2e-5, "max_length": 128, "weight_decay": 0.0, "warmup_ratio": 0.0}),
    ("udpos", {"epochs": 10, "learning_rate": 2e-5, "max_length": 128}),
    ("xquad", {"epochs": 3, "learning_rate": 3e-5, "max_length": 384, "doc_stride": 128,
               "max_query_length": 64, "weight_decay": 0.0001, "warmup_steps": 500}),
    ("mewslix", {"epochs": 2, "max_length": 64, "batch_size": 256, "negatives_pool": 64}),
    ("lareqa", {"epochs": 3, "max_length": 256, "max_query_length": 96, "batch_size": 16, "negatives_pool": 4}),
    ("pawsx", {"batch_size": 32, "negatives_pool": None}),
])
def test_training_defaults_are_the_target_benchmark_scripts(task, expected):
    spec = parse_spec({"name": "t", "model": {"name": "xlm-roberta-base"},
                       "target": {"task": task, "data_dir": "/data/xtreme"}, "intermediate": {"data_dir": "hub"}})
    assert {k: getattr(spec.training, k) for k in expected} == expected
    assert spec.target.recipe.epochs == 5  # train_xcopa.sh: 5 epochs of SocialIQA


def test_a_training_key_the_file_sets_wins_and_a_default_length_fits_the_encoder():
    base = {"name": "t", "target": {"task": "xquad", "data_dir": "hub"}, "intermediate": {"data_dir": "hub"}}
    spec = parse_spec({**base, "training": {"epochs": 1, "learning_rate": 1e-4}})
    assert (spec.training.epochs, spec.training.learning_rate, spec.training.max_length) == (1, 1e-4, 256)
    with pytest.raises(SpecError, match="training.max_length: 384 exceeds the 256 positions"):
        parse_spec({**base, "training": {"max_length": 384}})  # set by the file: checked, not capped


def test_a_retrieval_layer_is_tatoebas_setting_only():
    base = {"name": "t", "model": {"name": "xlm-roberta-base"}, "intermediate": {"data_dir": "hub"}}
    spec = parse_spec({**base, "target": {"task": "tatoeba", "data_dir": "/data/xtreme", "retrieval_layer": 6}})
    assert spec.target.retrieval_layer == 6
    with pytest.raises(SpecError, match="a layer setting is Tatoeba's"):
        parse_spec({**base, "target": {"task": "lareqa", "data_dir": "/data", "retrieval_layer": 6}})


def test_a_qa_doc_stride_longer_than_a_window_is_refused_before_ray():
    base = {"name": "t", "target": {"task": "xquad", "data_dir": "hub"}, "intermediate": {"data_dir": "hub"}}
    with pytest.raises(SpecError, match=r"training.doc_stride: 128 exceeds the context a QA window holds"):
        parse_spec({**base, "training": {"max_length": 128}})  # 128 - 64 - 4 = 60 context tokens
    assert parse_spec({**base, "training": {"max_length": 128, "doc_stride": 60}}).training.doc_stride == 60


def test_negatives_pool_is_refused_where_the_target_has_no_in_batch_negatives():
    base = {"name": "t", "target": {"task": "xnli", "data_dir": "hub"}, "intermediate": {"data_dir": "hub"}}
    with pytest.raises(ValueError, match=r"training.negatives_pool: .* xnli has none \(allowed: null, or a target "
                                         r"in lareqa, mewslix\)"):
        parse_spec({**base, "training": {"negatives_pool": 4}})
    with pytest.raises(ValueError, match=r"negatives_pool"):
        parse_spec({**base, "target": {"task": "lareqa", "data_dir": "/data/xtreme"},
                    "training": {"negatives_pool": 0}})
    spec = parse_spec({**base, "target": {"task": "lareqa", "data_dir": "/data/xtreme"},
                       "training": {"batch_size": 32, "negatives_pool": None}})
    assert (spec.training.batch_size, spec.training.negatives_pool) == (32, None)  # one pool: a documented option


def test_a_ctrl_c_after_the_trials_stopped_lets_the_summary_finish(capsys):
    """Once Tune has returned, the first Ctrl-C is noted (the summary and the MLflow runs' ends
    are still written); only a second one aborts."""
    import os
    import signal

    from orchestrator.cli import _interrupts

    before = signal.getsignal(signal.SIGINT)
    with _interrupts() as guard:
        guard.finishing()
        os.kill(os.getpid(), signal.SIGINT)  # handled synchronously at the next bytecode
        assert "finishing the summary" in capsys.readouterr().err
        assert signal.getsignal(signal.SIGINT) == guard.abort  # the second one aborts
    assert signal.getsignal(signal.SIGINT) == before
