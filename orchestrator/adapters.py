"""Every use of a dependency's private API, each in one function, each checked by
``tests/test_adapters.py`` against the version pinned in ``pyproject.toml``.

There are two, each because the supported API has no way to do what the sweep needs:

- ``replace_restored_callbacks``: ``ray.tune.Tuner.restore`` takes no ``callbacks`` argument
  and brings back the run config pickled by the first run, whose MLflow callback holds that
  run's tracking URI and counters; a resumed sweep must report through its own.
- ``exit_now``: the ``xlt-sweep`` process ends once its exit handlers ran, without the
  interpreter tearing down Ray, Tune, MLflow, SQLAlchemy and Optuna module by module, with
  every result already written. ``atexit`` has no public way to run its handlers early.

``CHECKED`` names the versions each was verified with; the test fails when a pin moves, so
whoever moves it checks the adapter again.
"""

from __future__ import annotations

import atexit
import os
import sys

CHECKED = {"ray": "2.60.0", "python": "3.11"}
"""The exact versions each adapter was verified with (ray: ``replace_restored_callbacks``;
python, as ``requires-python`` pins it: ``exit_now``)."""


class AdapterBroken(RuntimeError):
    """A private API an adapter relies on is not there (a dependency changed)."""


def replace_restored_callbacks(tuner, callbacks: list) -> None:
    """Make a ``Tuner.restore``-d tuner report to ``callbacks`` instead of the pickled ones."""
    from ray import tune

    run_config = getattr(getattr(tuner, "_local_tuner", None), "_run_config", None)
    if not isinstance(run_config, tune.RunConfig):
        import ray

        raise AdapterBroken(
            f"ray {ray.__version__}: Tuner._local_tuner._run_config is not a RunConfig (verified "
            f"with ray {CHECKED['ray']}); orchestrator.adapters.replace_restored_callbacks needs updating")
    run_config.callbacks = list(callbacks)


def exit_now(code: int) -> None:
    """Run every ``atexit`` handler (logging, Ray, MLflow), flush, and end the process with
    ``code`` at once."""
    run = getattr(atexit, "_run_exitfuncs", None)
    if run is None:  # no private hook: a normal exit, slower but the same outcome
        sys.exit(code)
    run()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
