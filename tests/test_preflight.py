"""Bad input refused before Ray starts: space-file positions and duplicates, model names,
shipped spaces by name, the data preflight, the storage estimate, the storage lock, and the
one-line reasons of failures."""

from __future__ import annotations

import errno
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.preflight import check_data, check_space, estimate_storage
from orchestrator.spec import SpecError, load_spec, load_sweeps
from orchestrator.storage_lock import StorageLock, StorageLocked
from tests.conftest import ROOT
from trainables.data import DataError
from trainables.failures import TrainingDiverged, deterministic, one_line


def _write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_duplicate_keys_at_any_depth_name_both_lines_with_the_other_problems(tmp_path):
    space = _write(tmp_path, """\
        name: t
        robust:
          methods: [none, rs_rp]
          noise_magnitude: 0.1
        training:
          learning_rate: -1
          epochs: 2
          epochs: 3
        robust:
          methods: [none]
        """)
    with pytest.raises(SpecError) as e:
        load_spec(space)
    text = str(e.value)
    assert "8:3: training.epochs: duplicate key, written on line 7 and again on line 8" in text
    assert "9:1: robust: duplicate key, written on line 2 and again on line 9" in text
    assert "6:3: training.learning_rate: must be > 0 (got -1.0)" in text  # all problems at once


def test_every_located_problem_carries_line_and_column(tmp_path):
    space = _write(tmp_path, """\
        name: t
        target:
          languages: [en, xx]
        intermediate:
          learning_rate: 0
        target_typo: 1
        """)
    with pytest.raises(SpecError) as e:
        load_spec(space)
    assert {p: e.value.where.get(p) for p in e.value.problems} == {
        p: e.value.where[p] for p in e.value.problems}  # every problem has a position
    lines = str(e.value).splitlines()[1:]
    assert any(ln.startswith("  - 2:1: target: ") and "['xx']" in ln for ln in lines)
    assert any(ln.startswith("  - 5:3: intermediate.learning_rate: Input should be greater than 0") for ln in lines)
    assert any(ln.startswith("  - 6:1: target_typo: unknown key") for ln in lines)


@pytest.mark.parametrize("stage", ["training", "intermediate", "target.recipe"])
def test_a_learning_rate_at_or_below_zero_is_refused_in_every_stage(tmp_path, stage):
    section, _, sub = stage.partition(".")
    body = f"{section}:\n  {sub}:\n    learning_rate: 0\n" if sub else f"{section}:\n  learning_rate: 0\n"
    with pytest.raises(SpecError) as e:
        load_spec(_write(tmp_path, "name: t\n" + body))
    assert any(p.startswith(f"{stage}.learning_rate: ") for p in e.value.problems), e.value.problems


@pytest.mark.parametrize("name, ok", [
    ("./no/such/dir", False), ("/no/such/dir", False), ("a/b/c", False), ("bad id!", False),
    ("builtin:huge-bert", False), ("xlm-roberta-base", True), ("FacebookAI/xlm-roberta-base", True),
    ("builtin:tiny-bert", True)])
def test_model_name_is_an_existing_directory_or_a_well_formed_hub_id(tmp_path, name, ok):
    space = _write(tmp_path, f"name: t\nmodel:\n  name: '{name}'\n")
    if ok:
        load_spec(space)
        return
    with pytest.raises(SpecError) as e:
        load_spec(space)
    (problem,) = e.value.problems
    assert problem.startswith("model.name: ") and e.value.where[problem] == (3, 3)


def test_an_existing_model_directory_is_accepted_and_its_positions_bound_max_length(tmp_path):
    model = tmp_path / "enc"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "xlm-roberta", "max_position_embeddings": 130, '
                                       '"num_hidden_layers": 2}')
    load_spec(_write(tmp_path, f"name: t\nmodel: {{name: {model}}}\ntraining: {{max_length: 128}}\n"))
    with pytest.raises(SpecError) as e:
        load_spec(_write(tmp_path, f"name: t\nmodel: {{name: {model}}}\ntraining: {{max_length: 256}}\n"))
    assert e.value.problems == [f"training.max_length: 256 exceeds the 128 positions of {model} (allowed: 8..128)"]
    with pytest.raises(SpecError, match="exceeds the 512 positions of xlm-roberta-base"):
        load_spec(_write(tmp_path, "name: t\nmodel: {name: xlm-roberta-base}\ntraining: {max_length: 1024}\n"))


def test_shipped_spaces_are_found_by_name_from_any_directory(tmp_path):
    for name in ("domains.yaml", "domains", "search_spaces/domains.yaml"):
        out = subprocess.run([sys.executable, "-m", "orchestrator.cli", "--space", name, "--dry-run"],
                             capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "sweep domains: 84 trials" in out.stdout and "storage needed at peak" in out.stdout
    out = subprocess.run([sys.executable, "-m", "orchestrator.cli", "--space", "nope.yaml", "--dry-run"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 2 and "shipped spaces, usable by name from any directory:" in out.stderr
    assert "domains.yaml" in out.stderr and "smoke.yaml" in out.stderr


def test_domains_sweeps_all_four_methods_each_with_its_own_magnitude_axis():
    (spec,) = load_sweeps("domains")
    assert spec.robust.methods == ["none", "adversarial", "rs_rp", "rs_da"]
    from orchestrator.space import cells

    axes = {m: sorted({c.noise_magnitude for c in cells(spec) if c.robust_method == m}) for m in spec.robust.methods}
    assert axes["none"] == [None] and all(len(axes[m]) == 2 for m in ("adversarial", "rs_rp", "rs_da"))
    assert axes["adversarial"] != axes["rs_rp"] != axes["rs_da"]


@pytest.fixture(scope="module")
def pawsx_mirror(tmp_path_factory) -> Path:
    from mirror import build_mirror

    return build_mirror(tmp_path_factory.mktemp("pf-mirror"))


def _pawsx(tmp_path: Path, mirror: Path) -> Path:
    return _write(tmp_path, f"name: pf\ntarget: {{task: pawsx, data_dir: {mirror}, languages: [en, de, fr]}}\n")


def test_preflight_lists_every_missing_or_broken_file_at_once(tmp_path, pawsx_mirror, capsys):
    import shutil

    mirror = tmp_path / "m"
    shutil.copytree(pawsx_mirror / "pawsx", mirror / "pawsx")
    (mirror / "pawsx" / "fr" / "test_2k.tsv").unlink()
    bad = mirror / "pawsx" / "de" / "test_2k.tsv"
    lines = bad.read_text().splitlines(keepends=True)
    bad.write_text("".join(lines[:3] + ["only two\tcolumns\n"] + lines[3:]))
    space = _pawsx(tmp_path, mirror)
    problems = check_data(load_spec(space))
    assert any(p.startswith(f"{mirror}/pawsx/fr/test_2k.tsv: file not found") for p in problems), problems
    assert any(p.startswith(f"{bad}:4:") for p in problems), problems
    assert len(problems) == 2
    assert main(["--space", str(space), "--storage", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "2 data problems (nothing was started)" in err and "test_2k.tsv: file not found" in err
    assert not (tmp_path / "runs" / "pf").exists()  # no sweep state was written


def test_a_ud27_language_missing_from_a_mirror_says_where_to_get_it(tmp_path, pawsx_mirror):
    space = _write(tmp_path, f"name: ud\ntarget: {{task: udpos, data_dir: {pawsx_mirror}, languages: [en, wo, lt]}}\n")
    (problem,) = check_data(load_spec(space))  # wo's UD 2.7 treebank is there, lt's is not
    assert problem.startswith(f"{pawsx_mirror}/udpos/lt/*-ud-test.conllu: no file matches (udpos test, language lt): ")
    assert "from UD 2.7 (https://lindat.mff.cuni.cz/repository/xmlui/handle/11234/1-3424)" in problem


def test_storage_estimate_refuses_with_the_numbers(tmp_path):
    spec = load_spec(_write(tmp_path, "name: t\nmodel: {name: xlm-roberta-base}\n"))
    est = estimate_storage(spec, trials=84, concurrent=8)
    w = 4 * 278_043_648
    assert est["encoder_bytes"] == w and est["terms"]["training"] == 2 * 3 * w * 8
    assert est["terms"]["kept_weights"] == 0  # keep_weights: none by default
    kept = estimate_storage(load_spec(_write(tmp_path, "name: t\nmodel: {name: xlm-roberta-base}\n"
                                                       "storage: {keep_weights: last}\n")), 84, 8)
    assert kept["terms"]["kept_weights"] == 84 * w
    why = check_space(tmp_path, {**est, "bytes": 1 << 60})
    assert why and "free" in why and str(1 << 60) in why and "keep_weights" in why
    assert check_space(tmp_path, {**est, "bytes": 1}) is None


def test_one_sweep_per_storage_and_the_lock_goes_with_its_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from orchestrator.storage_lock import StorageLock; "
                               f"StorageLock(Path({str(tmp_path)!r})).acquire(); print('held', flush=True); "
                               "time.sleep(60)"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StorageLocked, match=rf"in use by another xlt-sweep: host .+, pid {holder.pid}, started"):
            StorageLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    StorageLock(tmp_path).acquire().release()  # freed by the kernel when its holder died


def test_failures_are_classified_and_reduced_to_one_line(tmp_path):
    assert deterministic(DataError("x.tsv:3: expected 3 columns")) == "DataError: x.tsv:3: expected 3 columns"
    assert deterministic(TrainingDiverged("loss nan")) == "TrainingDiverged: loss nan"
    wrapped = RuntimeError("Training failed due to worker errors")
    wrapped.worker_failures = {0: DataError("y.conllu:9: bad tag")}
    assert deterministic(wrapped) == "DataError: y.conllu:9: bad tag"
    full = deterministic(OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "ckpt")))
    assert full.startswith(f"storage full at {tmp_path / 'ckpt'} (") and full.endswith(" bytes free)")
    assert deterministic(ConnectionError("node died")) is None
    tb = ("Failure # 1 (occurred at 2026)\nTraceback (most recent call last):\n  File \"a.py\", line 1\n"
          "ray.exceptions.RayTaskError(DataError): ray::run()\nTraceback (most recent call last):\n"
          "  File \"b.py\", line 2\ntrainables.data.DataError: pawsx/zh/test_2k.tsv:12: expected 4 columns\n")
    assert one_line(tb) == "trainables.data.DataError: pawsx/zh/test_2k.tsv:12: expected 4 columns"
