"""What a user does wrong, or what happens to them, run for real (real local Ray, real MLflow
store, the real ``xlt-sweep`` process): Ctrl-C mid-sweep and ``--resume``; a second launch on
the same storage; a data error found at run time; a full disk (a 3 MB tmpfs) and ``--resume``
after freeing space. Each checks the MLflow runs left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.sweep_runs import sweep_runs as _runs

pytestmark = pytest.mark.integration


def _space(tmp: Path, name: str, methods=("none", "adversarial", "rs_rp"), epochs=6, **over) -> Path:
    """Three cells of the built-in data (domain none), one trial each, small and quick."""
    spec = yaml.safe_load((ROOT / "search_spaces" / "nli_demo.yaml").read_text())
    spec.update(name=name, seeds=[0])
    spec["intermediate"] = {"domains": ["none"]}
    spec["robust"]["methods"] = list(methods)
    spec["robust"]["noise_magnitude"] = {m: v for m, v in spec["robust"]["noise_magnitude"].items() if m in methods}
    spec["robust"]["options"] = {m: v for m, v in spec["robust"]["options"].items() if m in methods}
    if not spec["robust"]["noise_magnitude"]:
        del spec["robust"]["noise_magnitude"]
    spec["training"].update(epochs=epochs, max_examples=200)
    spec["target"].update(languages=["en", "de"], generalized=False)
    spec["search"]["max_concurrent_trials"] = 2
    for section, values in over.items():
        spec.setdefault(section, {}).update(values)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _cmd(space: Path, storage: Path, tracking: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator.cli", "--space", str(space), "--storage", str(storage),
            "--tracking-uri", f"sqlite:///{tracking}", *extra]


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT,
                          env={**os.environ, "XLT_TRACKING_FLUSH_S": "20"})
    print(proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


def _epochs(client, run) -> list[int]:
    return sorted(int(m.value) for m in client.get_metric_history(run.info.run_id, "epoch"))


EPOCHS = 30
"""Long enough that the Ctrl-C sent after a trial's second epoch lands while trials still run:
a reused trial process starts its epochs at once (resources.reuse_processes)."""


def test_ctrl_c_stops_gracefully_a_second_launch_is_refused_and_resume_loses_no_epoch(tmp_path):
    space, storage, tracking = _space(tmp_path, "intr", epochs=EPOCHS), tmp_path / "runs", tmp_path / "mlflow.db"
    # its own process group, as a terminal's foreground job: Ctrl-C reaches the group, not one pid
    proc = subprocess.Popen(_cmd(space, storage, tracking), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "XLT_TRACKING_FLUSH_S": "20"},
                            start_new_session=True)
    results, lock = storage / "intr", storage / ".xlt-sweep.lock"
    deadline = time.monotonic() + 600
    while not (lock.is_file() and lock.read_text()) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.2)
    second = _run(_cmd(space, storage, tracking, "--resume"))  # while the first holds the storage
    assert second.returncode == 2
    assert "in use by another xlt-sweep: host " in second.stderr and f"pid {proc.pid}" in second.stderr
    while time.monotonic() < deadline:  # wait for a trial to report its second epoch
        reports = [p.read_text() for p in results.glob("trial_*/result.json")] if results.is_dir() else []
        if any('"epoch": 2' in r for r in reports):
            break
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.2)
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    stop_s = time.monotonic() - t0
    print(out[-4000:], f"\nCtrl-C to exit: {stop_s:.1f} s")
    assert proc.returncode == 130, out[-3000:]
    assert "left (interrupted)" in out and "continue with the same command and --resume" in out
    client, parents, children = _runs(tracking, "intr")
    assert [p.info.status for p in parents] == ["KILLED"]
    assert "interrupted" in parents[0].data.tags["xlt.error"]
    stopped = [c for c in children if c.info.status == "KILLED"]
    assert stopped and all(c.data.tags["xlt.error"].startswith("interrupted") for c in stopped)
    assert not [c for c in children if c.info.status == "RUNNING"]
    assert client.get_experiment_by_name("intr").tags["mlflow.experimentKind"] == "custom_model_development"

    resumed = _run(_cmd(space, storage, tracking, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "3/3 trials finished, 0 failed" in resumed.stdout
    client, parents, children = _runs(tracking, "intr")
    assert [p.info.status for p in parents] == ["FINISHED"] and len(children) == 3
    for c in children:  # every epoch exactly once, the interrupted ones' included
        assert c.info.status == "FINISHED" and _epochs(client, c) == list(range(1, EPOCHS + 1)), c.info.run_name
    # what the sweep left: predictions and manifests, no checkpoint (storage.keep_weights: none)
    assert not [p for p in (results.parent / "_xlt" / "intr" / "train").rglob("*") if p.is_file()]
    assert len(list((results.parent / "_xlt" / "intr" / "predictions").iterdir())) == 3


@pytest.mark.parametrize("executor", ["trial", "train"])
def test_a_data_error_at_run_time_fails_once_with_its_reason(tmp_path, executor):
    """The preflight reads the first lines; line 120 of the German test file is bad: the trial
    fails when its stage loads the test sets, is retried neither by Tune nor (``executor:
    train``) by Ray Train, and says which file and line."""
    from trainables.demo_data import write_demo_data

    data = write_demo_data(tmp_path / "data")
    test = data / "xnli" / "test-de.tsv"
    lines = test.read_text().splitlines(keepends=True)
    test.write_text("".join(lines[:119] + ["broken line without tabs\n"] + lines[119:]))
    space = _space(tmp_path, "bad", methods=("none",), epochs=1, target={"data_dir": str(data)},
                   search={"max_failures": 3, "worker_failures": 2}, resources={"executor": executor})
    proc = _run(_cmd(space, tmp_path / "runs", tmp_path / "mlflow.db"))
    assert proc.returncode == 1
    assert "Training failed due to worker errors" not in proc.stdout + proc.stderr  # no worker-group restart
    client, parents, (child,) = _runs(tmp_path / "mlflow.db", "bad")
    assert child.info.status == "FAILED" and "xlt.retries" not in child.data.tags
    reason = child.data.tags["xlt.error"]
    assert reason.startswith("DataError: ") and f"{test}:120:" in reason and "\n" not in reason
    assert "read_pair_tsv" in Path(client.download_artifacts(child.info.run_id, "error.txt", str(tmp_path))).read_text()


def _tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)


def test_a_full_disk_fails_the_trial_the_driver_survives_and_resume_finishes(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("this test mounts a 3 MB tmpfs and needs root (CI runs as root)")
    storage = tmp_path / "small"
    _tmpfs(storage, "3m")
    try:
        space, tracking = _space(tmp_path, "full", methods=("none",), epochs=2), tmp_path / "mlflow.db"
        refused = _run(_cmd(space, storage, tracking))
        assert refused.returncode == 2 and "the sweep needs about" in refused.stderr  # the estimate refuses it
        proc = _run(_cmd(space, storage, tracking, "--no-storage-check"))
        assert proc.returncode == 1, proc.stderr[-3000:]
        assert "the storage is full" in proc.stderr and "--resume" in proc.stderr
        assert 'File "' + str(ROOT / "orchestrator") not in proc.stderr  # the driver itself never crashed
        assert proc.stderr.rstrip().splitlines()[-1].endswith("the failed trials run again")
        _, _, children = _runs(tracking, "full")
        reasons = [c.data.tags.get("xlt.error", "") for c in children]
        assert any(r.startswith(f"storage full at {storage}") and r.endswith("bytes free)") for r in reasons), reasons
        subprocess.run(["mount", "-o", "remount,size=400m", str(storage)], check=True)  # space freed
        resumed = _run(_cmd(space, storage, tracking, "--resume"))
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert "1/1 trials finished, 0 failed" in resumed.stdout
    finally:
        subprocess.run(["umount", "-l", str(storage)], check=False)
