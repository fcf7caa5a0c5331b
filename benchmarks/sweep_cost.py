"""Benchmarks around the stages: what a one-trial sweep adds (Ray, Tune, MLflow) and what
tracking costs (see ``run.py`` for the table of goals)."""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, Setup, median_of, row

# ---- trial_overhead ----------------------------------------------------------------------------

ONE_TRIAL = """\
name: bench-one
model: {name: "builtin:tiny-bert"}
target: {task: xnli, languages: [en, de, ru, ar, hi, zh], data_dir: builtin}
intermediate: {domains: [none]}
robust: {methods: [none]}
training: {learning_rate: 2.0e-3, epochs: 2, batch_size: 32, eval_batch_size: 256, max_length: 64}
seeds: [0]
resources: {workers: 1, cpus_per_worker: 1}
"""


def bench_trial_overhead(s: Setup, repeats: int) -> dict:
    """``trial_overhead``: the default executor for one worker (the stage trains in the trial's
    process); ``trial_overhead_train``: the same sweep with ``resources.executor: train`` (a
    TorchTrainer per stage, what several workers need), for the record (once in --quick)."""
    from orchestrator.space import Cell, run_config, trial_choices
    from orchestrator.spec import load_spec
    from trainables.executors import LocalExecutor
    from trainables.trial import run_stages

    space = s.work / "one_trial.yaml"
    space.write_text(ONE_TRIAL)
    on_train = s.work / "one_trial_train.yaml"
    on_train.write_text(ONE_TRIAL.replace("cpus_per_worker: 1}", "cpus_per_worker: 1, executor: train}"))
    spec = load_spec(space)
    assert spec.resources.in_trial and not load_spec(on_train).resources.in_trial

    def direct() -> float:
        storage = Path(tempfile.mkdtemp(dir=s.work))
        t0 = time.perf_counter()
        run = run_config(spec, str(storage))
        choices = trial_choices(run, "none", "none", 0.0, 2e-3, 0, [], Cell("none", "none", None, None))
        run_stages(run, choices, "direct", LocalExecutor())
        wall = time.perf_counter() - t0
        shutil.rmtree(storage, ignore_errors=True)
        return wall

    ours, base, train = [], [], []
    for i in range(min(repeats, 2) + 1 if s.quick else repeats + 1):  # the first round warms up
        o, b = _sweep_wall(s, space), direct()
        if i:
            ours.append(o)
            base.append(b)
            if not s.quick or i == 1:  # a TorchTrainer sweep is ~30 s on 2 cores
                train.append(_sweep_wall(s, on_train))
    o, b, t = statistics.median(ours), statistics.median(base), statistics.median(train)
    what = (f"the one-trial sweep: tiny BERT, XNLI-style 6 languages, 2 epochs (each run on fresh "
            f"storage: the model, data and features are built in both); {os.cpu_count()} CPUs")
    return {
        "trial_overhead": row(o, b, o / b, "s", f"fixed overhead {o - b:.1f} s: process start and imports, local "
                              f"Ray start, Tune, the trial's process (imports torch and transformers), MLflow; "
                              f"one worker, so the stage trains in the trial's process (resources.executor "
                              f"auto); {what}", "ours - baseline <= 15 s (CPU)", (o - b) <= 15),
        "trial_overhead_train": row(t, b, t / b, "s", f"fixed overhead {t - b:.1f} s with resources.executor: "
                                    f"train (a Train controller and worker group per stage: multi-worker "
                                    f"trials; {len(train)} run(s)); {what}", "- (for the record)", None),
    }


# ---- trial_reuse -------------------------------------------------------------------------------

REUSE_TRIALS = 6


def bench_trial_reuse(s: Setup, repeats: int) -> dict:
    """``trial_reuse``: a sweep of ``REUSE_TRIALS`` one-epoch trials, two at a time, with trial
    processes reused (``resources.reuse_processes: true``, the default: torch and transformers
    are imported once per process) against a fresh process per trial (``false``)."""
    spec = ONE_TRIAL.replace("name: bench-one", "name: bench-reuse").replace("epochs: 2", "epochs: 1")
    spec = spec.replace("seeds: [0]", f"seeds: {list(range(REUSE_TRIALS))}")
    spec += "search: {max_concurrent_trials: 2}\n"
    ours_path, base_path = s.work / "reuse.yaml", s.work / "no_reuse.yaml"
    ours_path.write_text(spec)
    base_path.write_text(spec.replace("cpus_per_worker: 1}", "cpus_per_worker: 1, reuse_processes: false}"))
    ours, base = [], []
    for _ in range(1 if s.quick else max(2, repeats // 2)):
        base.append(_sweep_wall(s, base_path))
        ours.append(_sweep_wall(s, ours_path))
    o, b = statistics.median(ours), statistics.median(base)
    return {"trial_reuse": row(o, b, b / o, "s", f"{REUSE_TRIALS} trials, 2 at a time (tiny BERT, XNLI-style 6 "
                               f"languages, 1 epoch; {len(ours)} run(s) each): {o / REUSE_TRIALS:.1f} s per trial with "
                               f"reused processes, {b / REUSE_TRIALS:.1f} s with a fresh process per trial "
                               f"(Ray start and shutdown included in both)", "speed-up >= 1.2", b / o >= 1.2)}


def _sweep_wall(s: Setup, space: Path) -> float:
    """Wall time of ``xlt-sweep --space space`` on fresh storage (a subprocess, as a user runs it)."""
    exe = Path(sys.executable).with_name("xlt-sweep")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "orchestrator.cli"]
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    storage = Path(tempfile.mkdtemp(dir=s.work))
    t0 = time.perf_counter()
    out = subprocess.run([*cmd, "--space", str(space), "--storage", str(storage)], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"xlt-sweep failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    shutil.rmtree(storage, ignore_errors=True)
    return wall


# ---- tracking_cost ----------------------------------------------------------------------------

def trial_reports(languages: int = 15, epochs: int = 3) -> list[dict]:
    """What an XNLI trial with generalized evaluation reports to Tune, epoch by epoch."""
    langs = [f"l{i:02d}" for i in range(languages)]
    reports = []
    for e in range(1, epochs + 1):
        r = {"epoch": e, "global_step": 100 * e, "train/loss": 1.0 / e, "train/epoch_s": 10.0,
             "train/examples_per_s": 300.0, "train/padding_fraction": 0.05, "train/nodes": 1,
             "train/resumed_at_epoch": 0, "perf/bf16": 1.0, "perf/sdpa": 1.0, "perf/cuda": 1.0,
             "objective": 50.0 + e, "dev/xnli/en/accuracy": 50.0 + e,
             **{f"robust/{k}": 0.1 for k in ("adv_loss", "delta_norm", "delta_norm_max", "clean_loss")}}
        if e == epochs:
            r.update({f"xnli/{x}/accuracy": 40.0 for x in langs})
            r.update({f"xnli/{a}-{b}/accuracy": 35.0 for a in langs for b in langs if a != b})
            r.update({f"xnli/generalized/{a}/accuracy": 35.0 for a in langs})
            r.update({"xnli/avg/accuracy": 40.0, "xnli/score": 40.0, "xnli/generalized/avg/accuracy": 35.0})
        reports.append(r)
    return reports


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mlflow_server(work: Path) -> tuple[subprocess.Popen, str]:
    import urllib.request

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{work}/server.db",
                             "--default-artifact-root", str(work / "server-artifacts"), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})  # as cluster.yaml
    uri = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            urllib.request.urlopen(uri + "/health", timeout=1)
            return proc, uri
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("mlflow server exited")
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("mlflow server did not answer in 120 s")


def bench_tracking(s: Setup, repeats: int, uri: str, label: str) -> dict:
    from orchestrator.tracking import SweepTracker, loggable_metrics

    reports = trial_reports(15)
    tracker = SweepTracker(uri, f"bench-{label}-{os.getpid()}", "bench")
    client = tracker.client
    exp = tracker.experiment_id()

    def ours() -> float:
        run = client.create_run(exp).info.run_id
        t0 = time.perf_counter()
        for r in reports:
            tracker.log_result(run, r)
        return time.perf_counter() - t0

    def per_metric() -> float:
        run = client.create_run(exp).info.run_id
        t0 = time.perf_counter()
        for r in reports:
            m = loggable_metrics(r)
            for k, v in m.items():
                client.log_metric(run, k, v, step=int(m["global_step"]))
        return time.perf_counter() - t0

    o, _ = median_of(ours, repeats)
    b, _ = median_of(per_metric, repeats)
    n = sum(len(loggable_metrics(r)) for r in reports)
    note = f"{n} metric values in {len(reports)} reports (an XNLI trial, generalized evaluation); {label}"
    return row(o, b, b / o, "s", note, "ratio = baseline / ours >= 10", b / o >= 10)
