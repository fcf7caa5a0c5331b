"""The private-API adapters (``orchestrator.adapters``) against the pinned versions, for real:
a restored Tune experiment reports to the callbacks put in, and ``xlt-sweep``'s exit runs every
exit handler and keeps the exit code. A pin that moves fails here first."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import tomllib

import ray
from ray import tune

from orchestrator import adapters
from tests.conftest import ROOT


def _pins() -> dict:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = dict(re.match(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(.+)", d).groups() for d in project["dependencies"]
                if "==" in d)
    return {**pins, "python": project["requires-python"]}


def test_the_adapters_were_checked_with_the_pinned_versions():
    pins = _pins()
    assert pins["ray"] == adapters.CHECKED["ray"] == ray.__version__, (
        "ray's pin moved: check orchestrator.adapters.replace_restored_callbacks and update CHECKED")
    assert pins["python"] == f">={adapters.CHECKED['python']},<3.12", (
        "requires-python moved: check orchestrator.adapters.exit_now and update CHECKED")
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == adapters.CHECKED["python"]


class _Seen(tune.Callback):
    def __init__(self, log: str):
        self.log = log

    def setup(self, **info):
        with open(self.log, "a") as f:
            f.write("setup\n")

    def on_trial_complete(self, iteration, trials, trial, **info):
        with open(self.log, "a") as f:
            f.write(f"complete {trial.config['x']}\n")

    def on_trial_error(self, iteration, trials, trial, **info):
        with open(self.log, "a") as f:
            f.write(f"error {trial.config['x']}\n")


def _trial(config):
    if config["x"] == 1 and not (config["marker"]).exists():
        config["marker"].write_text("failed once")
        raise RuntimeError("first attempt fails")
    tune.report({"y": config["x"]})


def test_a_restored_tuner_reports_to_the_callbacks_put_in(tmp_path):
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"}})
    try:
        first, second = tmp_path / "first.log", tmp_path / "second.log"
        space = {"x": tune.grid_search([0, 1]), "marker": tmp_path / "marker"}
        tune.Tuner(_trial, param_space=space, run_config=tune.RunConfig(
            name="e", storage_path=str(tmp_path / "runs"), callbacks=[_Seen(str(first))])).fit()
        restored = tune.Tuner.restore(str(tmp_path / "runs" / "e"), trainable=_trial, resume_errored=True)
        adapters.replace_restored_callbacks(restored, [_Seen(str(second))])
        restored.fit()  # reruns the errored trial only
    finally:
        ray.shutdown()
    assert first.read_text().splitlines() == ["setup", "complete 0", "error 1"]
    assert second.read_text().splitlines() == ["setup", "complete 1"]  # the new callback, not the pickled one


def test_exit_now_runs_every_exit_handler_and_keeps_the_code(tmp_path):
    out = tmp_path / "ran"
    script = textwrap.dedent(f"""
        import atexit
        from orchestrator.adapters import exit_now
        atexit.register(lambda: open({str(out)!r}, "w").write("handler ran"))
        print("before", flush=False)
        exit_now(7)
        print("never")
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 7 and proc.stdout == "before\n", proc.stderr
    assert out.read_text() == "handler ran"
