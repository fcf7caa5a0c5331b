"""A real multi-node Ray cluster on loopback, a real ``mlflow server``, and the faults a sweep on
spot nodes meets: each injected for real, each checked for nothing lost and nothing duplicated.

The cluster (``tests/loopback_cluster.py``: ``ray.cluster_utils.Cluster`` in a process of its
own): a head with no CPUs and the ``driver_slot`` resource (as ``cluster.yaml``'s on-demand
head: trial drivers only) and two worker nodes with 2 CPUs each, all on 127.0.0.1, token auth on
(``RAY_AUTH_MODE=token``, one random token; a client with another token is refused). Fast
node-death detection (1 s health checks).

MLflow: ``mlflow server --host 127.0.0.1`` with a sqlite backend and an artifact destination,
started as a process; every sweep logs to it over HTTP (``--tracking-uri http://...``).

Faults (each a real kill, no mocks): a Train worker process (SIGKILL, mid-training), a whole
worker node (its raylet and workers), the sweep driver (SIGKILL, then ``--resume``), a trial
that diverges, and the tracking server stopped for a while mid-trial. The recovery times are
printed (``-s`` shows them).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import ROOT

pytestmark = pytest.mark.integration
LANGS = ["en", "de", "zh"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, predicate, timeout: float = 240, every: float = 0.2):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class MlflowServer:
    """A real tracking server process (sqlite backend on disk), stoppable and restartable."""

    def __init__(self, root: Path):
        self.root, self.port, self.proc = root, _free_port(), None
        self.uri = f"http://127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "1", "--backend-store-uri", f"sqlite:///{self.root}/mlflow.db",
             "--artifacts-destination", str(self.root / "artifacts")],
            stdout=open(self.root / "server.log", "a"), stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})  # as cluster.yaml starts it
        _wait("the MLflow server", self.healthy, timeout=120)

    def healthy(self) -> bool:
        try:
            return urllib.request.urlopen(f"{self.uri}/health", timeout=2).status == 200
        except OSError:
            return False

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


class LoopbackCluster:
    """``tests/loopback_cluster.py`` in its own process (see there), driven over its stdin."""

    def __init__(self, env: dict):
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "loopback_cluster.py")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                                     env={**os.environ, **env})
        self.state = self._read()
        self.address = self.state["address"]

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the loopback cluster exited with code {self.proc.wait()}")
        return json.loads(line)

    def send(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        self.state = self._read()
        return self.state

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=120)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    token = secrets.token_hex(16)
    # Token auth for the nodes and for every client (the sweep driver); drivers use 127.0.0.1.
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    c = LoopbackCluster(env)
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    try:
        server.start()
        yield {"cluster": c, "address": c.address, "mlflow": server, "token": token, "env": env}
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.stop()
        c.close()


def _space(tmp: Path, name: str, epochs: int, examples: int, resources: dict, **over) -> Path:
    spec = {"name": name, "model": {"name": "builtin:tiny-bert"},
            "target": {"task": "xnli", "languages": LANGS, "data_dir": "builtin"},
            "intermediate": {"domains": ["none"]}, "robust": {"methods": ["none"]},
            "training": {"learning_rate": 2.0e-3, "epochs": epochs, "batch_size": 32,
                         "eval_batch_size": 256, "max_length": 64, "max_examples": examples},
            "seeds": [0], "search": {"max_failures": 1, "worker_failures": 1}, "resources": resources}
    for section, values in over.items():
        spec[section] = {**spec[section], **values} if isinstance(values, dict) else values
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _start(cluster, space: Path, storage: Path, *extra: str, env: dict | None = None,
           uri: str | None = None, job: bool = False) -> subprocess.Popen:
    """``xlt-sweep`` as a driver process joining the cluster, or (``job``) submitted as the
    README shows: ``ray job submit -- xlt-sweep --address auto ...`` (the driver runs on the head)."""
    log = open(storage.parent / f"{space.stem}-{time.monotonic_ns()}.log", "w+")
    sweep = [sys.executable, "-m", "orchestrator.cli", "--space", str(space), "--storage", str(storage),
             "--address", "auto" if job else cluster["address"], "--tracking-uri", uri or cluster["mlflow"].uri,
             *extra]
    if job:
        ray_cli = Path(sys.executable).with_name("ray")
        sweep = [str(ray_cli), "job", "submit", "--address", f"http://{cluster['cluster'].state['dashboard']}",
                 "--", *sweep]
    proc = subprocess.Popen(
        sweep,
        stdout=log, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        env={**os.environ, **cluster["env"], **(env or {})})
    proc.log = log
    return proc


def _finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    proc.wait(timeout=timeout)
    proc.log.seek(0)
    out = proc.log.read()
    print(out[-4000:])
    return out


def _children(cluster, name: str):
    client = MlflowClient(cluster["mlflow"].uri)
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return client, [], []
    runs = client.search_runs([exp.experiment_id])
    return (client, [r for r in runs if r.data.tags.get("xlt.role") == "sweep"],
            [r for r in runs if r.data.tags.get("xlt.role") == "trial"])


def _epoch_logged(cluster, name: str) -> bool:
    _, _, children = _children(cluster, name)
    return any("epoch" in c.data.metrics for c in children)


def _history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def _checkpoints(storage: Path) -> set[str]:
    """The fine-tuning stages' checkpoints now (Train keeps only the latest of each run)."""
    return {str(p) for p in storage.glob("_xlt/*/train/finetune-*/checkpoint_*")}


def _pids(title: str) -> list[int]:
    return [p.pid for p in psutil.process_iter(["cmdline"])
            if any(title in part for part in (p.info["cmdline"] or []))]


def _train_worker_pids() -> list[int]:
    return _pids("RayTrainWorker")


def test_a_client_with_another_token_is_refused(cluster):
    code = f"import ray; ray.init(address='{cluster['address']}')"
    good = subprocess.run([sys.executable, "-c", code + "; print(len(ray.nodes()))"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **cluster["env"]})
    assert good.returncode == 0 and good.stdout.split()[-1] == "3", good.stderr[-2000:]
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **cluster["env"], "RAY_AUTH_TOKEN": "0" * 32})
    assert bad.returncode != 0 and "token" in (bad.stdout + bad.stderr).lower()


def test_sweep_spreads_workers_over_nodes_logs_over_http_survives_an_outage_and_a_divergence(
        cluster, tmp_path):
    """Two cells on 2 Train workers placed STRICT_SPREAD (one per worker node), logging to the
    server over HTTP. Cell 1 diverges (learning rate 1e30: non-finite gradients at its first
    step); cell 2 trains 3 epochs while the server is down for part of the trial. Secrets
    planted in the environment and the tracking URI appear nowhere in MLflow, Tune's storage or
    the driver's output."""
    secret = "xltSECRET" + secrets.token_hex(8)
    server = cluster["mlflow"]
    space = _space(tmp_path, "mnode", epochs=3, examples=1500,
                   resources={"workers": 2, "cpus_per_worker": 1, "placement_strategy": "STRICT_SPREAD"},
                   training={"learning_rate": {"choice": [1.0e30, 2.0e-3]}},
                   search={"max_failures": 1, "max_concurrent_trials": 1})
    storage = tmp_path / "runs"
    uri = server.uri.replace("http://", f"http://xlt:{secret}@")
    proc = _start(cluster, space, storage, uri=uri,
                  env={"HF_TOKEN": secret, "AWS_SECRET_ACCESS_KEY": secret, "MLFLOW_TRACKING_TOKEN": secret,
                       "XLT_TRACKING_FLUSH_S": "120"})

    def good_run_started():
        _, _, children = _children(cluster, "mnode")
        return [c for c in children if c.data.params.get("learning_rate", "").startswith("0.002")]

    _wait("the healthy trial's MLflow run", good_run_started, timeout=400, every=0.1)
    before = _checkpoints(storage)
    server.stop()  # before its first report (its Train workers are still starting)
    t_down = time.monotonic()
    _wait("a report while MLflow is down", lambda: _checkpoints(storage) - before, timeout=300, every=0.05)
    time.sleep(1)
    server.start()
    print(f"MLflow down for {time.monotonic() - t_down:.1f} s")
    out = _finish(proc)
    assert proc.returncode == 1, "one trial failed (diverged), the sweep finished the other"
    assert "1/2 trials finished, 1 failed" in out
    assert "buffered and delivered late, none lost" in out

    client, parents, children = _children(cluster, "mnode")
    assert len(parents) == 1 and len(children) == 2
    by_lr = {float(c.data.params["learning_rate"]): c for c in children}
    bad, good = by_lr[1e30], by_lr[2e-3]
    assert bad.info.status == "FAILED"
    assert re.search(r"training diverged in stage 'finetune' at step \d+ \(epoch 1\): loss nan",
                     bad.data.tags["xlt.error"])
    assert "lower the noise magnitude or the learning rate" in bad.data.tags["xlt.error"]
    assert good.info.status == "FINISHED"
    # Nothing lost, nothing duplicated: one point per epoch, final metrics, workers on 2 nodes.
    assert [v for _, v in _history(client, good.info.run_id, "epoch")] == [1.0, 2.0, 3.0]
    assert len(_history(client, good.info.run_id, "objective")) == 3
    assert all(f"xnli/{lang}/accuracy" in good.data.metrics for lang in LANGS)
    assert good.data.metrics["train/nodes"] == 2.0
    assert parents[0].info.status == "FAILED" and parents[0].data.metrics["tracking/delivered_late"] >= 1
    assert any(a.path == "predictions" for a in client.list_artifacts(good.info.run_id))

    # No credential anywhere: MLflow params/tags/metric names/artifacts, Tune storage, driver output.
    planted = [secret, cluster["token"]]
    for run in [*parents, *children]:
        text = json.dumps([run.data.params, run.data.tags, list(run.data.metrics)])
        local = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "dl" / run.info.run_id)))
        text += "".join(p.read_text(errors="replace") for p in local.rglob("*") if p.is_file())
        assert not any(s in text for s in planted), f"a credential leaked into run {run.info.run_id}"
    for p in storage.rglob("*"):
        if p.is_file() and p.stat().st_size < 5_000_000:
            assert not any(s.encode() in p.read_bytes() for s in planted), f"a credential leaked into {p}"
    assert not any(s in out for s in planted)
    assert f"MLflow tracking URI: {server.uri}" in out  # the credentials went to the environment


def test_a_killed_train_worker_resumes_from_its_last_checkpoint(cluster, tmp_path):
    space = _space(tmp_path, "wkill", epochs=3, examples=600,
                   resources={"workers": 1, "cpus_per_worker": 1, "executor": "train"},
                   training={"batch_size": 4})  # epochs of a few seconds: the kill lands mid-epoch
    storage = tmp_path / "runs"
    proc = _start(cluster, space, storage, job=True)  # through the Jobs API, as the README shows
    _wait("epoch 1 in MLflow (its checkpoint registered)", lambda: _epoch_logged(cluster, "wkill"), timeout=400,
          every=0.05)
    victims = _train_worker_pids()
    assert victims, "no Train worker process found"
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    t_kill, before = time.monotonic(), _checkpoints(storage)
    _wait("a checkpoint after the kill", lambda: (_checkpoints(storage) - before) or proc.poll() is not None,
          timeout=400, every=0.1)
    print(f"worker killed: next checkpoint {time.monotonic() - t_kill:.1f} s later")
    out = _finish(proc)
    assert proc.returncode == 0, out[-3000:]
    client, _, children = _children(cluster, "wkill")
    assert len(children) == 1 and children[0].info.status == "FINISHED"
    run = children[0].info.run_id
    assert [v for _, v in _history(client, run, "epoch")] == [1.0, 2.0, 3.0]
    resumed = [v for _, v in _history(client, run, "train/resumed_at_epoch")]
    assert resumed[0] == 0.0 and max(resumed) >= 1.0, resumed  # restarted from a checkpoint, not from 0


def test_a_killed_sweep_driver_resumes_only_the_missing_cells(cluster, tmp_path):
    space = _space(tmp_path, "dkill", epochs=2, examples=600, resources={"workers": 1, "cpus_per_worker": 1},
                   robust={"methods": ["none", "rs_rp", "adversarial"],
                           "noise_magnitude": {"rs_rp": 0.05, "adversarial": 0.1}},
                   search={"max_failures": 1, "max_concurrent_trials": 1})
    storage = tmp_path / "runs"
    proc = _start(cluster, space, storage)

    def one_finished():
        _, _, children = _children(cluster, "dkill")
        return [c for c in children if c.info.status == "FINISHED"]

    done = _wait("a finished trial", one_finished, timeout=400)
    manifests = {p: p.stat().st_mtime_ns for p in storage.glob("_xlt/dkill/stages/*/finetune.json")}
    proc.send_signal(signal.SIGKILL)
    _finish(proc)
    _, _, children = _children(cluster, "dkill")
    assert len(children) < 3 or any(c.info.status == "RUNNING" for c in children), "killed mid-sweep"
    t0 = time.monotonic()
    again = _start(cluster, space, storage, "--resume")
    out = _finish(again)
    print(f"driver killed: --resume finished the sweep in {time.monotonic() - t0:.1f} s")
    assert again.returncode == 0, out[-3000:]
    client, parents, children = _children(cluster, "dkill")
    finished = [c for c in children if c.info.status == "FINISHED"]
    cells = sorted(c.data.tags["xlt.cell"] for c in finished)
    assert len(cells) == 3 and len(set(cells)) == 3, "exactly one FINISHED run per cell"
    assert not [c for c in children if c.info.status == "RUNNING"], "no run left RUNNING"
    assert all(c.info.status in ("FINISHED", "KILLED") for c in children)
    assert parents[0].info.status == "FINISHED"
    for p, mtime in manifests.items():  # cells finished before the kill were not trained again
        assert p.stat().st_mtime_ns == mtime
    assert {c.info.run_id for c in done} <= {c.info.run_id for c in finished}


def test_a_removed_worker_node_is_survived_elsewhere(cluster, tmp_path):
    """Last in this module: it takes a node away (and puts a fresh one back afterwards). One
    worker, so the stage trains in the trial's own process (``executor: auto``): the trial dies
    with the node, Tune retries it elsewhere and the stage resumes from its last epoch."""
    c = cluster["cluster"]
    space = _space(tmp_path, "nodeloss", epochs=3, examples=600, resources={"workers": 1, "cpus_per_worker": 1},
                   training={"batch_size": 4})
    storage = tmp_path / "runs"
    proc = _start(cluster, space, storage)
    _wait("epoch 1 in MLflow (its checkpoint registered)", lambda: _epoch_logged(cluster, "nodeloss"),
          timeout=400, every=0.05)
    pid = _wait("the trial's process", lambda: _pids("ray::ImplicitFunc"))[0]
    ancestors = {p.pid for p in psutil.Process(pid).parents()}
    raylet = next(w["raylet_pid"] for w in c.state["workers"] if w["raylet_pid"] in ancestors)
    assert len(c.send(op="remove", raylet_pid=raylet)["workers"]) == 1
    t_kill = time.monotonic()
    out = _finish(proc)
    print(f"node removed: the trial finished {time.monotonic() - t_kill:.1f} s later")
    c.send(op="add")
    assert proc.returncode == 0, out[-3000:]
    client, _, children = _children(cluster, "nodeloss")
    assert len(children) == 1 and children[0].info.status == "FINISHED"
    run = children[0].info.run_id
    assert [v for _, v in _history(client, run, "epoch")] == [1.0, 2.0, 3.0]
    assert max(v for _, v in _history(client, run, "train/resumed_at_epoch")) >= 1.0
