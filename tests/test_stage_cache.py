"""The stage cache on a real local Ray: one builder per key under contention, a killed builder
does not leave waiters hanging, keys change exactly when the inputs do."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest
import ray
from configs import trial

from tests.conftest import ROOT
from trainables.stage_cache import StageCache, data_identity, intermediate_inputs, intermediate_key

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"}})
    yield
    ray.shutdown()


def _fake_encoder(out: Path, tag: str) -> str:
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({"built_by": tag}))
    return str(out)


@ray.remote(num_cpus=0)
def _use(root: str, key: str, owner: str, log: str, build_s: float, lease_s: float):
    cache = StageCache(root, lease_s=lease_s, poll_s=0.2)

    def build():
        with open(log, "a") as f:
            f.write(f"{owner} start {time.time()}\n")
        time.sleep(build_s)
        path = _fake_encoder(Path(log).parent / f"build-{owner}", owner)
        with open(log, "a") as f:
            f.write(f"{owner} done {time.time()}\n")
        return path, {"train/loss": 0.5}

    path, hit, record = cache.get_or_build(key, {"k": key}, owner, build)
    return json.loads((Path(path) / "config.json").read_text())["built_by"], hit, record["built_by"], os.getpid()


def test_concurrent_trials_train_each_key_exactly_once(local_ray, tmp_path):
    root, log = str(tmp_path / "cache"), str(tmp_path / "builds.log")
    refs = [_use.remote(root, key, f"t{i}-{key}", log, 1.5, 10.0) for i in range(4) for key in ("ka", "kb")]
    results = ray.get(refs, timeout=120)
    starts = [line.split()[0] for line in Path(log).read_text().splitlines() if " start " in line]
    assert len(starts) == 2 and {s.split("-")[1] for s in starts} == {"ka", "kb"}  # one build per key
    for key in ("ka", "kb"):
        mine = [r for r, ref_key in zip(results, [k for _ in range(4) for k in ("ka", "kb")]) if ref_key == key]
        assert sum(not hit for _, hit, _, _ in mine) == 1  # one builder, three hits
        assert len({built_by for built_by, _, _, _ in mine}) == 1  # everyone got the builder's encoder
    again = ray.get(_use.remote(root, "ka", "later", log, 0.0, 10.0))  # a later sweep: a hit
    assert again[1] is True and len(Path(log).read_text().splitlines()) == 4


def test_a_killed_builder_does_not_leave_waiters_hanging(local_ray, tmp_path):
    root, log = str(tmp_path / "cache"), str(tmp_path / "builds.log")
    lease = 2.0
    builder = _use.remote(root, "k", "crasher", log, 3600.0, lease)  # would build for an hour
    deadline = time.time() + 60
    while not (Path(log).is_file() and "crasher start" in Path(log).read_text()):
        assert time.time() < deadline, "the builder never started"
        time.sleep(0.1)
    waiter = _use.remote(root, "k", "waiter", log, 0.5, lease)
    time.sleep(1.0)
    assert "waiter start" not in Path(log).read_text()  # it waits while the builder's lease is renewed
    ray.cancel(builder, force=True)  # kills the builder's worker process mid-build
    t0 = time.time()
    built_by, hit, record_by, _ = ray.get(waiter, timeout=60)
    assert (built_by, hit, record_by) == ("waiter", False, "waiter")
    assert time.time() - t0 < lease + 10  # taken over about one lease after the crash
    assert StageCache(root).lookup("k")["built_by"] == "waiter"


def test_a_failing_builder_releases_its_claim_at_once(local_ray, tmp_path):
    root = str(tmp_path / "cache")

    @ray.remote(num_cpus=0)
    def fail():
        def build():
            raise RuntimeError("diverged")
        StageCache(root, lease_s=600).get_or_build("k", {}, "bad", build)

    with pytest.raises(ray.exceptions.RayTaskError, match="diverged"):
        ray.get(fail.remote())
    t0 = time.time()
    _, hit, _, _ = ray.get(_use.remote(root, "k", "next", str(tmp_path / "log"), 0.0, 600.0), timeout=30)
    assert hit is False and time.time() - t0 < 20  # no lease to wait out


def test_key_changes_exactly_with_the_inputs(tmp_path):
    space = {"model": {"name": "builtin:tiny-bert"}, "training": {"batch_size": 32, "max_length": 128},
             "intermediate": {"domains": ["general"], "tasks": {"general": ["mnli"]}, "epochs": 1,
                              "learning_rate": 5e-5, "max_examples": 100, "data_dir": str(tmp_path)}}
    run, _ = trial(space)
    f = tmp_path / "intermediate" / "mnli" / "train.tsv"
    f.parent.mkdir(parents=True)
    f.write_text("a\tb\tentailment\n")
    base = intermediate_key(intermediate_inputs(run, ["mnli"], 0))
    assert base == intermediate_key(intermediate_inputs(run, ["mnli"], 0))
    workers = replace(run, resources=replace(run.resources, workers=8))
    assert base == intermediate_key(intermediate_inputs(workers, ["mnli"], 0))  # not hardware
    assert base != intermediate_key(intermediate_inputs(run, ["mnli"], 1))
    assert base != intermediate_key(intermediate_inputs(replace(run, model=replace(run.model, name="m2")), ["mnli"], 0))
    other = replace(run, intermediate=replace(run.intermediate, schedule=replace(
        run.intermediate.schedule, max_examples=200)))
    assert base != intermediate_key(intermediate_inputs(other, ["mnli"], 0))
    f.write_text("a\tb\tentailment\nc\td\tneutral\n")  # the data changed
    assert base != intermediate_key(intermediate_inputs(run, ["mnli"], 0))
    assert data_identity("builtin", ["mnli"]) == "builtin"


def test_gradient_clipping_reaches_every_stage_and_the_key_only_when_changed():
    """``training.max_grad_norm``: every stage clips with it; the intermediate key of the default
    (1.0, what every cached model was trained with) is the key it had before the setting existed."""
    from trainables.trial import stage_configs

    space = {"intermediate": {"domains": ["none", "general"], "tasks": {"general": ["mnli"]}}}
    default, _ = trial(space, domain="general")
    inputs = intermediate_inputs(default, ["mnli"], 0)
    assert "max_grad_norm" not in inputs  # the key of every existing cache entry is unchanged
    run, choices = trial({**space, "training": {"max_grad_norm": 0.5}}, domain="general")
    stages = stage_configs(run, choices, "t")
    assert {name: cfg.training.optimiser.max_grad_norm for name, cfg in stages.items()} == {
        "intermediate": 0.5, "finetune": 0.5}
    assert intermediate_key(intermediate_inputs(run, ["mnli"], 0)) != intermediate_key(inputs)
