"""``launchers/slurm/xlt-sweep.sbatch`` on a real single-host Slurm (``tests/slurm_cluster.py``):
a sweep submitted with ``sbatch`` finishes; a sweep cancelled mid-way with ``scancel`` and
submitted again with ``XLT_RESUME=1`` finishes every seed and keeps the runs finished before."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.slurm_cluster import free_port, slurm_cluster, wait_for
from tests.sweep_runs import sweep_runs

pytestmark = [pytest.mark.integration, pytest.mark.launchers]
SBATCH = ROOT / "launchers" / "slurm" / "xlt-sweep.sbatch"
DONE = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"}


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    with slurm_cluster(tmp_path_factory.mktemp("slurm")) as env:
        yield env


def _space(tmp: Path, name: str, seeds: int, epochs: int) -> Path:
    spec = yaml.safe_load((ROOT / "search_spaces" / "nli_demo.yaml").read_text())
    spec.update(name=name, seeds=list(range(seeds)))
    spec["intermediate"] = {"domains": ["none"]}
    spec["robust"] = {"methods": ["none"]}
    spec["training"].update(epochs=epochs, max_examples=200, learning_rate=2e-3)
    spec["target"].update(languages=["en", "de"], generalized=False)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _submit(env: dict, tmp: Path, space: Path, storage: Path, resume: bool = False) -> str:
    job_env = {**env, "XLT_STORAGE": str(storage), "XLT_SPACE": str(space),
               "XLT_VENV": sys.prefix, "XLT_RAY_PORT": str(free_port()), "XLT_MLFLOW_PORT": str(free_port()),
               "XLT_DASHBOARD_PORT": str(free_port())}
    if resume:
        job_env["XLT_RESUME"] = "1"
    out = subprocess.run(["sbatch", "--parsable", "--nodes=1", "--exclusive", f"--chdir={ROOT}",
                          f"--output={tmp}/job-%j.out", str(SBATCH)],
                         env=job_env, capture_output=True, text=True, check=True)
    return out.stdout.strip().split(";")[0]


def _log(tmp: Path, job: str) -> str:
    path = tmp / f"job-{job}.out"
    return path.read_text() if path.is_file() else ""


def _finished_trials(db: Path) -> set[str]:
    """Finished trial runs, read-only and raw: the job's MLflow server owns the database (a
    client here would run MLflow's schema migrations against it while the server does)."""
    if not db.is_file():
        return set()
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            rows = con.execute("SELECT r.run_uuid FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                               "WHERE t.key = 'xlt.role' AND t.value = 'trial' AND r.status = 'FINISHED'")
            return {r[0] for r in rows}
    except sqlite3.Error:  # not created yet
        return set()


def test_a_sweep_runs_as_a_batch_job(slurm, tmp_path):
    space, storage = _space(tmp_path, "slurm-one", seeds=2, epochs=1), tmp_path / "runs"
    job = _submit(slurm, tmp_path, space, storage)
    state = wait_for(slurm, job, DONE, timeout=600)
    log = _log(tmp_path, job)
    print(log[-4000:])
    assert state == "COMPLETED", log[-3000:]
    assert "2/2 trials finished, 0 failed" in log and "xlt-sweep exited with 0" in log
    assert "Ray head on " in log
    _, parents, trials = sweep_runs(storage / "mlflow.db", "slurm-one")
    assert len(parents) == 1 and sorted(t.info.status for t in trials) == ["FINISHED"] * 2


def test_a_cancelled_sweep_finishes_when_resubmitted_with_resume(slurm, tmp_path):
    seeds = 6
    space, storage = _space(tmp_path, "slurm-cancel", seeds=seeds, epochs=4), tmp_path / "runs"
    job = _submit(slurm, tmp_path, space, storage)
    wait_for(slurm, job, {"RUNNING"}, timeout=120)
    deadline = time.monotonic() + 600
    finished_before: set[str] = set()
    while time.monotonic() < deadline and len(finished_before) < 2:
        time.sleep(2)
        finished_before = _finished_trials(storage / "mlflow.db")
    assert len(finished_before) >= 2, _log(tmp_path, job)[-3000:]
    subprocess.run(["scancel", job], env=slurm, check=True)
    assert wait_for(slurm, job, DONE, timeout=120) == "CANCELLED"
    _, _, trials = sweep_runs(storage / "mlflow.db", "slurm-cancel")
    assert len({t.info.run_id for t in trials if t.info.status == "FINISHED"}) < seeds  # it was cut short

    again = _submit(slurm, tmp_path, space, storage, resume=True)
    state = wait_for(slurm, again, DONE, timeout=900)
    log = _log(tmp_path, again)
    print(log[-4000:])
    assert state == "COMPLETED", log[-3000:]
    _, parents, trials = sweep_runs(storage / "mlflow.db", "slurm-cancel")
    finished = [t for t in trials if t.info.status == "FINISHED"]
    assert len(parents) == 1
    assert sorted({int(t.data.params["seed"]) for t in finished}) == list(range(seeds))  # every seed
    assert finished_before <= {t.info.run_id for t in finished}  # the runs of before are kept, not redone
    # A trial that finished in the seconds between Tune's last state save and the kill runs again
    # on --resume (a second FINISHED run of its seed; xlt-report --select resolves them): at most
    # the trials that were running when the job was cancelled.
    assert len(finished) - seeds <= 2
